"""What the run operators and the sensors of all three vendors share.

The story of a run, as the dbt Cloud operator tells it: start, push the id to XCom, wait or
defer, turn the outcome into a result or a failure, cancel when killed. Retries are durable:
the execution id is kept in Airflow's ``task_state_store`` (3.3+), so a retry reattaches to a
live execution instead of starting a second one.

This module is imported while DAG files are parsed, in a fresh process each time: only what
declaring a task needs (Airflow's base classes, the links, the error tree, the states and the
argument checks) loads with it. The hooks, the HTTP stack, pydantic, redaction, the triggers and
OpenLineage are imported inside the methods that run a task (tests/unit/test_parse_cost.py).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, BaseOperator, conf

from airflow_workflow_provider._compat import ResumableJobMixin
from airflow_workflow_provider.core.errors import WorkflowExecutionFailed, WorkflowInputError, WorkflowWaitTimeout
from airflow_workflow_provider.core.states import (
    UNKNOWN_STATE_LIMIT,
    ExecutionState,
    UnknownStateClock,
    unknown_state_message,
)
from airflow_workflow_provider.core.validation import DEFAULT_MAX_OUTPUT_BYTES, require_positive_number
from airflow_workflow_provider.links import EXECUTION_URL_KEY

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_workflow_provider.core.hook import BaseWorkflowsHook
    from airflow_workflow_provider.core.models import WorkflowExecution

EXECUTION_ID_KEY = "execution_id"
NOT_FOUND = "not_found"
# Our own deadline fires this much before Airflow's execution_timeout, so that the remote
# execution can still be canceled (Airflow's own deferral timeout gives the operator no say).
TIMEOUT_MARGIN = 5.0


# The vendor's hook class, so that type checkers know ``self.hook`` has the vendor's own calls.
HookT = TypeVar("HookT", bound="BaseWorkflowsHook[Any]")


def _load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


class VendorConnection(Generic[HookT]):
    """The connection argument, named after the vendor as in Airflow's official providers.

    Each vendor class declares ``<vendor>_conn_id`` in its own signature (so that ``default_args``
    reach it, and a generic ``conn_id`` reaches none) and names it in ``conn_name_attr``.
    """

    hook_class_path: ClassVar[str]
    conn_name_attr: ClassVar[str]

    @property
    def connection_id(self) -> str:
        return str(getattr(self, self.conn_name_attr))

    @cached_property
    def hook(self) -> HookT:
        hook: HookT = _load(self.hook_class_path)(self.connection_id)
        return hook


class ExecutionFollower(VendorConnection["BaseWorkflowsHook[Any]"]):
    """Waiting, deferring and judging the outcome: shared by the run operators and the sensors."""

    trigger_class_path: ClassVar[str]
    #: Seconds a wait goes on while the vendor reports a status this provider cannot read; then the task fails.
    unknown_state_limit: ClassVar[float] = UNKNOWN_STATE_LIMIT

    workflow: str
    poll_interval: float
    # Seconds or None; BaseSensorOperator declares its own (a float), hence no narrower type here.
    timeout: Any
    cancel_on_kill: bool
    stop_states: tuple[str, ...]
    log: Any
    _execution_id: str | None
    _failure_message: str | None
    #: The most of a vendor's ``output`` that goes to XCom, as JSON bytes; a larger one is left out of the
    #: result (``output_truncated: true``). None: no limit.
    max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES

    def _publish(self, context: Context, execution_id: str) -> None:
        """The id and the UI link go to XCom as soon as they are known, before any wait."""
        self._execution_id = execution_id
        ti = context["ti"]
        ti.xcom_push(key=EXECUTION_ID_KEY, value=execution_id)
        ti.xcom_push(key=EXECUTION_URL_KEY, value=self.hook.execution_url(self.workflow, execution_id))

    def _deadline(self, context: Context) -> float | None:
        """Wall-clock end of the wait: our ``timeout``, or just before the task's ``execution_timeout``."""
        candidates = []
        if self.timeout is not None:
            candidates.append(time.time() + self.timeout)
        execution_timeout: timedelta | None = getattr(self, "execution_timeout", None)
        start_date = getattr(context.get("ti"), "start_date", None)
        if execution_timeout is not None and start_date is not None:
            candidates.append(start_date.timestamp() + execution_timeout.total_seconds() - TIMEOUT_MARGIN)
        return min(candidates) if candidates else None

    def _wait_here(self, context: Context, execution_id: str) -> dict[str, Any]:
        """Poll from the worker until the execution ends, logging every state change.

        Checks keep to a fixed grid, as the trigger's do: a slow answer (or one slowed by the
        vendor's rate limit) delays that check, not every later one.
        """
        from airflow_workflow_provider.core.events import next_slot

        deadline = self._deadline(context)
        started = next_check = time.monotonic()
        last: ExecutionState | None = None
        stop_at = {ExecutionState(s) for s in self.stop_states}
        unreadable = UnknownStateClock(self.unknown_state_limit)
        try:
            while True:
                execution = self.hook.get_execution(self.workflow, execution_id, patient=True)
                if execution.state is not last:
                    self.log.info(
                        "%s execution %s is %s (%s) after %.0f s",
                        self.hook.api.vendor,
                        execution_id,
                        execution.state.value,
                        execution.vendor_status,
                        time.monotonic() - started,
                    )
                    last = execution.state
                if execution.is_terminal or execution.state in stop_at:
                    return self._outcome(execution)
                if unreadable.expired(execution.state, time.time()):
                    raise WorkflowExecutionFailed(
                        unknown_state_message(
                            execution.vendor, execution_id, execution.vendor_status, unreadable.limit, execution.url
                        ),
                        execution.summary(),
                    )
                if deadline is not None and time.time() >= deadline:
                    self._cancel_after_timeout(execution_id)
                    raise self._timeout(
                        f"{self.hook.api.vendor} execution {execution_id} still {execution.state.value} "
                        f"after the wait timed out"
                        + ("; it was canceled" if self.cancel_on_kill else "; it goes on running")
                    )
                next_check = next_slot(next_check, self.poll_interval, time.monotonic())
                sleep_for = next_check - time.monotonic()
                if deadline is not None:
                    sleep_for = min(sleep_for, deadline - time.time())
                time.sleep(max(0.0, sleep_for))
        except AirflowTaskTimeout:
            # execution_timeout struck in the middle of the wait: do not leave the execution running.
            self._cancel_after_timeout(execution_id)
            raise

    def _defer(self, context: Context, execution_id: str) -> dict[str, Any]:
        """Check once (an execution that already ended needs no trigger), then hand the wait to the triggerer."""
        execution = self.hook.get_execution(self.workflow, execution_id, patient=True)
        if execution.is_terminal or execution.state.value in self.stop_states:
            return self._outcome(execution)
        deadline = self._deadline(context)
        trigger = _load(self.trigger_class_path)(
            **{self.conn_name_attr: self.connection_id},
            workflow=self.workflow,
            execution_id=execution_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            stop_states=list(self.stop_states),
            cancel_on_kill=self.cancel_on_kill,
            first_check_at=time.time() + self.poll_interval,  # it was checked just now
            unknown_state_limit=self.unknown_state_limit,
        )
        self.log.info(
            "%s execution %s is %s; deferring the wait", self.hook.api.vendor, execution_id, execution.state.value
        )
        self.defer(trigger=trigger, method_name="execute_complete")  # type: ignore[attr-defined]
        raise AssertionError("defer() raises TaskDeferred")  # pragma: no cover

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: turn its event into the task's result or failure."""
        status, execution_id = event.get("status"), event.get("execution_id", "")
        self._execution_id = execution_id
        if status in ("success", "reached"):
            self.log.info("%s", event.get("message"))
            self._say_if_inferred(event["execution"].get("state_note"))
            return self._bounded_event_summary(event["execution"], execution_id)
        if status == "failure":
            execution = self.hook.get_execution(self.workflow, execution_id)
            return self._outcome(execution)
        if status == "timeout":
            self._cancel_after_timeout(execution_id)
            raise self._timeout(f"{event.get('message')}" + ("; it was canceled" if self.cancel_on_kill else ""))
        raise self._failure(f"could not follow execution {execution_id}: {event.get('message')}", {})

    def _say_if_inferred(self, note: str | None) -> None:
        """The task log says when the outcome was inferred (an undocumented vendor status), not read."""
        if note:
            self.log.warning("The outcome was inferred, not read: %s", note)

    def _bounded_event_summary(self, summary: dict[str, Any], execution_id: str) -> dict[str, Any]:
        """The trigger's summary (cut at the default size) within this task's own ``max_output_bytes``."""
        from airflow_workflow_provider.core.security import bound_output

        allows_more = self.max_output_bytes is None or self.max_output_bytes > DEFAULT_MAX_OUTPUT_BYTES
        if summary.get("output_truncated") and allows_more:
            return self._summary(self.hook.get_execution(self.workflow, execution_id))
        return bound_output(summary, self.max_output_bytes)

    def _summary(self, execution: WorkflowExecution) -> dict[str, Any]:
        summary = execution.summary(max_output_bytes=self.max_output_bytes)
        if summary.get("output_truncated"):
            self.log.warning("%s", summary.get("output_note"))
        return summary

    def _outcome(self, execution: WorkflowExecution) -> dict[str, Any]:
        self._say_if_inferred(execution.state_note)
        if execution.state.is_failure:
            detailed = self.hook.explain_failure(execution)
            message = (
                f"{detailed.vendor} execution {detailed.id} of workflow {detailed.workflow} ended "
                f"{detailed.state.value}: {detailed.describe_failure()}. See {detailed.url}"
            )
            self.log.error("%s", message)
            raise self._failure(message, self._summary(detailed))
        self.log.info("%s execution %s is %s", execution.vendor, execution.id, execution.state.value)
        return self._summary(execution)

    def _failure(self, message: str, summary: dict[str, Any]) -> Exception:
        self._failure_message = message
        return WorkflowExecutionFailed(message, summary)

    def _timeout(self, message: str) -> Exception:
        self._failure_message = message
        return WorkflowWaitTimeout(message)

    def _cancel_after_timeout(self, execution_id: str) -> None:
        if self.cancel_on_kill:
            self._cancel_quietly(execution_id)

    def _cancel_quietly(self, execution_id: str) -> None:
        from airflow_workflow_provider.core.errors import WorkflowApiError

        try:
            self.hook.cancel_execution(self.workflow, execution_id)
        except WorkflowApiError as exc:
            self.log.warning("could not cancel execution %s: %s", execution_id, exc)


def checked_states(field: str, states: Sequence[str]) -> tuple[str, ...]:
    allowed = [s.value for s in ExecutionState if not s.is_terminal and s is not ExecutionState.UNKNOWN]
    if isinstance(states, str):
        raise WorkflowInputError(field, f"must be a list of states, e.g. [{allowed[-1]!r}]")
    for state in states:
        if state not in allowed:
            raise WorkflowInputError(field, f"{state!r} is not a state to stop at; allowed: {', '.join(allowed)}")
    return tuple(states)


def _deferrable_by_default() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def checked_output_limit(value: Any) -> int | None:
    if value is None:
        return None
    from airflow_workflow_provider.core.validation import require_int_in_range

    return require_int_in_range("max_output_bytes", value, 0, 2**31)


def checked_wait_settings(poll_interval: Any, timeout: Any) -> tuple[float, float | None]:
    interval = require_positive_number("poll_interval", poll_interval)
    assert interval is not None
    return interval, require_positive_number("timeout", timeout, allow_none=True)


class BaseRunWorkflowOperator(ExecutionFollower, ResumableJobMixin, BaseOperator):
    """Start a workflow execution and, by default, wait until it ends.

    :param workflow: the vendor's workflow id (Datadog, SailPoint) or name (Cloudflare). Templated.
    :param payload: the input of the execution, a JSON object. Templated.
    :param <vendor>_conn_id: the Airflow connection holding the credentials (``datadog_conn_id``,
        ``cloudflare_conn_id`` or ``sailpoint_conn_id``). Templated.
    :param wait_for_completion: wait until the execution ends (else return once it started).
    :param poll_interval: seconds between two status checks.
    :param timeout: seconds to wait at most; then the execution is canceled (``cancel_on_kill``) and the task fails.
    :param deferrable: wait in the triggerer rather than in a worker slot.
    :param cancel_on_kill: cancel the remote execution when the task is killed or times out.
    :param stop_states: also stop waiting, successfully, when the execution enters one of these states
        (e.g. ``["waiting"]`` for a Cloudflare instance waiting for an event).
    :param durable: on retry, reattach to the execution an earlier try started (Airflow 3.3+).
    :param max_output_bytes: the most of the vendor's output, as JSON bytes, that the result (XCom) carries;
        a larger output is left out with ``output_truncated: true`` (default 1 MiB; None: no limit).
    """

    template_fields: Sequence[str] = ("workflow", "payload")
    template_fields_renderers = {"payload": "json"}
    ui_color = "#e8f0fe"
    external_id_key = "workflow_execution_id"

    def __init__(
        self,
        *,
        workflow: str,
        payload: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = True,
        stop_states: Sequence[str] = (),
        max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow = workflow
        self.payload = payload
        self.max_output_bytes = checked_output_limit(max_output_bytes)
        self.wait_for_completion = wait_for_completion
        self.poll_interval, self.timeout = checked_wait_settings(poll_interval, timeout)
        self.deferrable = deferrable
        if deferrable and not wait_for_completion and not _deferrable_by_default():
            # As the dbt Cloud operator does: nothing is waited for, so nothing is deferred. Only when the DAG
            # asked for both; a deployment-wide default_deferrable is no mistake of the DAG's author.
            warnings.warn(
                f"{type(self).__name__} {kwargs.get('task_id', '')!r}: deferrable=True has no effect with "
                "wait_for_completion=False (the task returns once the execution started, without waiting)",
                UserWarning,
                stacklevel=2,
            )
        self.cancel_on_kill = cancel_on_kill
        self.stop_states = checked_states("stop_states", stop_states)
        self._execution_id: str | None = None
        self._result: dict[str, Any] | None = None
        self._failure_message: str | None = None

    # -- vendor hooks for subclasses -------------------------------------------------------------

    def start_options(self, context: Context) -> dict[str, Any]:
        """Vendor-specific arguments of ``start_execution`` (Cloudflare instance id, SailPoint mode)."""
        return {}

    # -- ResumableJobMixin ---------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        if self.payload is not None and not isinstance(self.payload, dict):
            raise WorkflowInputError(
                "payload", f"must render to a JSON object (dict), got {type(self.payload).__name__}"
            )
        return self.execute_resumable(context)

    def submit_job(self, context: Context) -> str:
        execution_id = self.hook.start_execution(self.workflow, self.payload, **self.start_options(context))
        self._publish(context, execution_id)
        return execution_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        from airflow_workflow_provider.core.errors import NotFoundError

        try:
            execution = self.hook.get_execution(self.workflow, str(external_id))
        except NotFoundError:
            return NOT_FOUND
        self.log.info("the execution %s started by an earlier try is %s", external_id, execution.state.value)
        return execution.state.value

    def is_job_active(self, status: str) -> bool:
        return status != NOT_FOUND and not ExecutionState(status).is_terminal

    def is_job_succeeded(self, status: str) -> bool:
        return status == ExecutionState.SUCCEEDED.value

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        # Declared to return None, but Airflow 3.3's execute_resumable returns this method's value as the
        # task's result when it reconnects to a running job (without calling get_job_result): so it returns it.
        execution_id = str(external_id)
        if self._execution_id != execution_id:  # reattached on a retry
            self._publish(context, execution_id)
        if not self.wait_for_completion:
            self._result = self._summary(self.hook.get_execution(self.workflow, execution_id))
        elif self.deferrable:
            self._result = self._defer(context, execution_id)
        else:
            self._result = self._wait_here(context, execution_id)
        return self._result

    def get_job_result(self, external_id: Any, context: Context) -> dict[str, Any]:
        if self._result is not None:
            return self._result
        # Succeeded in an earlier try: publish it again, return its result, start nothing.
        self._publish(context, str(external_id))
        return self._outcome(self.hook.get_execution(self.workflow, str(external_id)))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self._result = super().execute_complete(context, event)
        return self._result

    # -- OpenLineage (called by its listener, only where apache-airflow-providers-openlineage is installed) --

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The execution id (``externalQuery``) and the execution with its UI link (``workflowExecution``)."""
        return self._lineage(error=None)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """As on completion, plus the vendor's reason in ``errorMessage`` when the execution failed or timed out."""
        return self._lineage(error=self._failure_message)

    def _lineage(self, error: str | None) -> Any:
        from airflow_workflow_provider.openlineage import execution_lineage

        started = self._execution_id is not None
        return execution_lineage(
            vendor=self.hook.api.vendor if started else "",
            api_base_url=self.hook.api.base_url if started else "",
            workflow=self.workflow,
            execution_id=self._execution_id,
            url=self.hook.execution_url(self.workflow, self._execution_id) if self._execution_id else None,
            state=(self._result or {}).get("state"),
            error=error,
        )

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._execution_id and self._result is None:
            self.log.info("task killed: canceling execution %s", self._execution_id)
            self._cancel_quietly(self._execution_id)


class BaseListWorkflowExecutionsOperator(VendorConnection["BaseWorkflowsHook[Any]"], BaseOperator):
    """List a workflow's executions, newest first, and return a bounded JSON summary (for XCom).

    :param workflow: the workflow. Templated.
    :param filters: the vendor's list filters (see the hook's ``list_executions``). Templated.
    :param max_results: stop after this many executions, so that nobody pulls 100,000 into XCom by accident.
    """

    template_fields: Sequence[str] = ("workflow", "filters")
    template_fields_renderers = {"filters": "json"}
    MAX_RESULTS_LIMIT = 10_000

    def __init__(
        self,
        *,
        workflow: str,
        filters: dict[str, Any] | None = None,
        max_results: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_workflow_provider.core.validation import require_int_in_range

        self.workflow = workflow
        self.filters = filters or {}
        self.max_results = require_int_in_range("max_results", max_results, 1, self.MAX_RESULTS_LIMIT)

    def execute(self, context: Context) -> dict[str, Any]:
        from itertools import islice

        listing = self.hook.list_executions(self.workflow, **self.filters)
        # Outputs stay out: 10,000 executions with 50 KB outputs would make a 500 MB XCom row.
        executions = [e.summary(include_output=False) for e in islice(listing, self.max_results)]
        truncated = len(executions) == self.max_results and next(listing, None) is not None
        counts: dict[str, int] = {}
        for execution in executions:
            counts[execution["state"]] = counts.get(execution["state"], 0) + 1
        self.log.info(
            "%d executions of %s%s: %s",
            len(executions),
            self.workflow,
            f" (stopped at max_results={self.max_results})" if truncated else "",
            counts,
        )
        return {
            "workflow": self.workflow,
            "count": len(executions),
            "truncated": truncated,
            "states": counts,
            "executions": executions,
        }
