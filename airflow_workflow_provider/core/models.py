"""Response models shared by the three vendors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pendulum
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from airflow_workflow_provider.core.security import MAX_SUMMARY_TEXT, bound_output
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.core.validation import DEFAULT_MAX_OUTPUT_BYTES


def to_pendulum(value: Any) -> pendulum.DateTime | None:
    """Parse the vendors' timestamp shapes: ISO 8601 strings, epoch seconds or milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, pendulum.DateTime):
        return value
    if isinstance(value, datetime):
        return pendulum.instance(value)
    if isinstance(value, (int, float)):
        # Datadog and others sometimes send epoch milliseconds; no plausible seconds value is that large.
        seconds = value / 1000 if value > 10**11 else value
        return pendulum.from_timestamp(seconds, tz="UTC")
    parsed = pendulum.parse(str(value), tz="UTC")
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"not a date-time: {value!r}")
    return parsed


Timestamp = Annotated[pendulum.DateTime | None, BeforeValidator(to_pendulum)]


class WorkflowExecution(BaseModel):
    """One run of a vendor workflow, normalised.

    ``raw`` keeps the vendor's own payload so that nothing the vendor said is lost.
    """

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True, frozen=True)

    vendor: str
    workflow: str
    id: str
    state: ExecutionState = ExecutionState.UNKNOWN
    vendor_status: str | None = None
    started_at: Timestamp = None
    ended_at: Timestamp = None
    output: Any = None
    error_message: str | None = None
    failing_step: str | None = None
    url: str | None = None
    #: Set when the state was inferred rather than read (e.g. an end time with a status no one documents).
    state_note: str | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def succeeded(self) -> bool:
        return self.state is ExecutionState.SUCCEEDED

    def summary(
        self, *, max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES, include_output: bool = True
    ) -> dict[str, Any]:
        """A small JSON-serialisable view, for XCom, trigger events and logs (no raw payload, no steps).

        The vendor's ``output`` is kept up to ``max_output_bytes`` of JSON (None: whole), else left out
        with ``output_truncated: true``; ``include_output=False`` leaves it out always (list summaries).
        """
        summary = self.model_dump(mode="json", exclude={"raw", "steps", "output"})
        if summary.get("error_message") and len(summary["error_message"]) > MAX_SUMMARY_TEXT:
            summary["error_message"] = summary["error_message"][: MAX_SUMMARY_TEXT - 1] + "…"
        if not include_output:
            return summary
        return bound_output({**summary, "output": self.output}, max_output_bytes)

    def describe_failure(self) -> str:
        """The vendor's reason for a failed or canceled execution, in one line."""
        reason = (
            self.error_message or self.state_note or f"the execution ended as {self.vendor_status or self.state.value}"
        )
        where = f" at step {self.failing_step!r}" if self.failing_step else ""
        return f"{reason}{where}"


class Page(BaseModel):
    """One page of a list call: its executions and how to ask for the next page (None at the end)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    executions: list[WorkflowExecution]
    next_page: Any = None
