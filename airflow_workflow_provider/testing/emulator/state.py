"""What the emulator knows: the accepted credentials, workflow scripts, executions and their clock, the request log.

Executions live in vendor-neutral phases (:data:`QUEUED` ... :data:`CANCELED`); each vendor's API module names
them in its own vocabulary (its ``STATUSES``), which the execution carries to render its status.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_workflow_provider.testing.emulator.faults import FaultBook

VENDORS: tuple[str, ...] = ("datadog", "cloudflare", "sailpoint")
MYSTERY_STATUS = "MYSTERY_STATUS"

# Vendor-neutral lifecycle phases; each vendor renders them with its own vocabulary.
QUEUED, RUNNING, PAUSED, WAITING = "queued", "running", "paused", "waiting"
SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})
PHASES = (QUEUED, RUNNING, PAUSED, WAITING, SUCCEEDED, FAILED, CANCELED)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class EmulatorCredentials:
    """The credentials the emulator accepts; anything else is rejected like the real APIs do."""

    # repr=False keeps the secrets out of logs and assertion messages that print the dataclass.
    datadog_api_key: str = field(default="dd-api-key-emulator", repr=False)
    datadog_application_key: str = field(default="dd-app-key-emulator", repr=False)
    cloudflare_account_id: str = "cf-account-emulator"
    cloudflare_api_token: str = field(default="cf-token-emulator", repr=False)
    cloudflare_email: str = "ops@example.com"
    cloudflare_global_api_key: str = field(default="cf-global-key-emulator", repr=False)
    sailpoint_client_id: str = "sp-client-emulator"
    sailpoint_client_secret: str = field(default="sp-secret-emulator", repr=False)
    sailpoint_token_ttl: float = 749.0  # expires_in seconds returned by /oauth/token
    # An external trigger's own OAuth client: its token may call execute/external and nothing else.
    sailpoint_trigger_client_id: str = "sp-trigger-client-emulator"
    sailpoint_trigger_client_secret: str = field(default="sp-trigger-secret-emulator", repr=False)


@dataclass
class WorkflowScript:
    """How executions of one workflow behave.

    ``duration`` is counted from creation and includes ``queued_for``: the execution is queued for
    ``queued_for`` seconds, running until ``duration`` seconds, then terminal.

    Cloudflare only: with ``wait_for_event`` (an event type) the instance models ``step.waitForEvent``.
    After ``wait_after`` seconds of running (so ``queued_for + wait_after`` seconds after creation, at most
    ``duration``) it turns ``waiting`` and its clock stops until ``POST .../events/{wait_for_event}``
    arrives; it then runs the rest of its duration (``duration - queued_for - wait_after``) and, on
    success, reports the event's payload as ``output["event"]``. An event sent before the wait begins is
    buffered, as Cloudflare does, so the instance then passes the wait without stopping.
    """

    duration: float = 1.0
    outcome: str = "success"  # "success" | "failure"
    output: Any = None  # None means {"result": "ok", "input": <payload>}
    steps: list[str] = field(default_factory=lambda: ["step_1", "step_2"])
    failing_step: str | None = None  # on failure; defaults to the last step
    error_message: str = "Simulated failure"
    # SailPoint only: None allows /test and external triggers, False only /test (a disabled workflow),
    # True only the external trigger (an enabled workflow).
    enabled: bool | None = None
    # SailPoint only: routine events after the start, so that a history is long enough to be paged.
    extra_history_events: int = 0
    queued_for: float = 0.1
    wait_for_event: str | None = None  # Cloudflare only: the event type step.waitForEvent waits for
    wait_after: float = 0.3  # seconds of running before the wait begins

    def validate(self) -> None:
        if self.outcome not in ("success", "failure"):
            raise ValueError(f"outcome must be 'success' or 'failure', not {self.outcome!r}")
        if self.duration < 0 or self.queued_for < 0:
            raise ValueError("duration and queued_for must be >= 0")
        if not isinstance(self.steps, list) or not all(isinstance(s, str) for s in self.steps):
            raise ValueError("steps must be a list of strings")
        if self.wait_for_event is not None and (not isinstance(self.wait_for_event, str) or not self.wait_for_event):
            raise ValueError("wait_for_event must be a non-empty string (an event type) or None")
        if isinstance(self.wait_after, bool) or not isinstance(self.wait_after, (int, float)) or self.wait_after < 0:
            raise ValueError("wait_after must be a number >= 0")
        # The tolerance forgives float sums: queued_for 0.05 + wait_after 0.1 is 0.15000000000000002.
        if self.wait_for_event is not None and self.queued_for + self.wait_after > self.duration + 1e-9:
            raise ValueError(
                f"wait_after ({self.wait_after}) must be <= duration - queued_for "
                f"({self.duration} - {self.queued_for}): the wait has to begin before the execution ends"
            )


@dataclass(frozen=True)
class RequestRecord:
    """One vendor request as seen by the emulator. ``path`` never carries the query string."""

    vendor: str
    operation: str
    method: str
    path: str
    status: int | None  # None: the connection was dropped without an answer (reset faults)
    # When the request arrived (epoch seconds): what benchmarks time a waiter's checks by. Not compared.
    at: float = field(default=0.0, compare=False)


@dataclass(eq=False)
class Execution:
    vendor: str
    workflow: str
    id: str
    seq: int
    payload: Any
    script: WorkflowScript
    created_mono: float
    created_wall: datetime
    # The vendor's names for the phases (its API module's STATUSES).
    statuses: Mapping[str, str] = field(repr=False)
    mode: str = "api"
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Closed or open (end None) pause intervals on the monotonic clock; the script clock stops while paused.
    pauses: list[tuple[float, float | None]] = field(default_factory=list)
    canceled_mono: float | None = None
    # Cloudflare events received ({"type", "payload"}), oldest first; a restart clears them.
    events: list[dict[str, Any]] = field(default_factory=list)
    # When the event the script waits for first arrived (monotonic), and its payload.
    awaited_mono: float | None = None
    awaited_payload: Any = None

    # -- clock -------------------------------------------------------------------------------------
    def _cut(self, now: float) -> float:
        return now if self.canceled_mono is None else min(now, self.canceled_mono)

    @property
    def wait_point(self) -> float | None:
        """Script time at which step.waitForEvent begins (None: the script does not wait)."""
        if self.script.wait_for_event is None:
            return None
        return min(self.run_start + self.script.wait_after, self.script.duration)

    def _hold(self) -> tuple[float, float | None] | None:
        """The wait for the event on the monotonic clock: (start, end or None while still waiting).

        None when the script does not wait or has not reached the wait yet (it is paused before it).
        An event that arrived before the wait began makes the interval empty.
        """
        point = self.wait_point
        if point is None:
            return None
        start = self._walk(self.created_mono, point, self.pauses)
        if start is None:
            return None
        if self.awaited_mono is None:
            return start, None
        return start, max(start, self.awaited_mono)

    def _frozen(self) -> list[tuple[float, float | None]]:
        """Merged, sorted intervals during which the script clock stands still (pauses and the wait)."""
        intervals = list(self.pauses)
        hold = self._hold()
        if hold is not None:
            intervals.append(hold)
        intervals.sort(key=lambda interval: interval[0])
        merged: list[tuple[float, float | None]] = []
        for start, end in intervals:
            if merged and (merged[-1][1] is None or start <= merged[-1][1]):
                last_start, last_end = merged[-1]
                merged[-1] = (last_start, None if last_end is None or end is None else max(last_end, end))
            else:
                merged.append((start, end))
        return merged

    def waiting(self, now: float) -> bool:
        """Whether the script stands in step.waitForEvent at ``now`` (paused or not): the event is missing."""
        hold = self._hold()
        return hold is not None and hold[1] is None and hold[0] <= self._cut(now)

    def elapsed(self, now: float) -> float:
        """Script time (seconds since creation minus time spent paused or waiting) at ``now``."""
        if self.waiting(now):
            point = self.wait_point
            assert point is not None
            return point  # exact, so step boundaries at the wait point compare cleanly
        t = self._cut(now)
        frozen = sum(max(0.0, min(end if end is not None else t, t) - start) for start, end in self._frozen())
        return t - self.created_mono - frozen

    @staticmethod
    def _walk(
        created_mono: float, script_time: float, frozen: list[tuple[float, float | None]], last: bool = False
    ) -> float | None:
        t = created_mono + script_time
        for start, end in frozen:
            if start < t or (last and start == t):
                if end is None:
                    return None
                t += end - start
        return t

    def instant(self, script_time: float, last: bool = False) -> float | None:
        """Monotonic instant at which the script clock reached ``script_time`` (None: not while stopped).

        The clock shows the same time all through a stop that starts there: ``last`` asks for the instant
        it moves on (a step after the wait starts when the event arrives, not when the wait began).
        """
        return self._walk(self.created_mono, script_time, self._frozen(), last)

    def wall(self, mono: float) -> datetime:
        return self.created_wall + timedelta(seconds=mono - self.created_mono)

    @property
    def run_start(self) -> float:
        return min(self.script.queued_for, self.script.duration)

    # -- state -------------------------------------------------------------------------------------
    def phase(self, now: float) -> str:
        # A cancel is only accepted before the end, so a canceled execution never reached its outcome.
        if self.canceled_mono is not None:
            return CANCELED
        waiting = self.waiting(now)
        elapsed = self.elapsed(now)
        if elapsed >= self.script.duration and not waiting:
            return SUCCEEDED if self.script.outcome == "success" else FAILED
        if self.pauses and self.pauses[-1][1] is None:
            return PAUSED
        if waiting:
            return WAITING
        return QUEUED if elapsed < self.script.queued_for else RUNNING

    def started_at(self, now: float) -> datetime | None:
        if self.elapsed(now) < self.run_start:
            return None
        mono = self.instant(self.run_start)
        return self.wall(mono if mono is not None else self._cut(now))

    def ended_at(self, now: float) -> datetime | None:
        if self.canceled_mono is not None:
            return self.wall(self.canceled_mono)
        if self.phase(now) not in (SUCCEEDED, FAILED):
            return None
        mono = self.instant(self.script.duration)
        return self.wall(mono if mono is not None else now)

    def modified_at(self, now: float) -> datetime:
        marks = [self.created_mono]
        marks += [m for start, end in self.pauses for m in (start, end) if m is not None and m <= now]
        hold = self._hold()
        if hold is not None:
            marks += [m for m in hold if m is not None and m <= self._cut(now)]
        for at in (self.started_at(now), self.ended_at(now)):
            if at is not None:
                marks.append(self.created_mono + (at - self.created_wall).total_seconds())
        return self.wall(max(marks))

    def step_names(self) -> list[str]:
        steps = list(self.script.steps)
        if self.script.outcome == "failure":
            failing = self.script.failing_step
            if failing is None:
                return steps
            # A failure stops the workflow, so the steps after the failing one are never reached.
            return steps[: steps.index(failing) + 1] if failing in steps else [*steps, failing]
        return steps

    def steps_before_wait(self) -> int:
        """How many steps run before step.waitForEvent: in proportion to the time, the last one always after."""
        names = self.step_names()
        point = self.wait_point
        if point is None or not names:
            return len(names)
        span = self.script.duration - self.run_start
        share = (point - self.run_start) / span if span > 0 else 1.0
        return max(0, min(len(names) - 1, round(len(names) * share)))

    def _step_spans(self) -> list[tuple[str, float, float]]:
        """(name, begin, finish) in script time: spread evenly over the running span, split at the wait."""
        names = self.step_names()
        point = self.wait_point
        if point is None:
            segments = [(names, self.run_start, self.script.duration)]
        else:
            before = self.steps_before_wait()
            segments = [(names[:before], self.run_start, point), (names[before:], point, self.script.duration)]
        spans: list[tuple[str, float, float]] = []
        for chunk, low, high in segments:
            for index, name in enumerate(chunk):
                begin = low + (high - low) * index / len(chunk)
                finish = high if index == len(chunk) - 1 else low + (high - low) * (index + 1) / len(chunk)
                spans.append((name, begin, finish))
        return spans

    def steps(self, now: float) -> list[tuple[str, str, datetime, datetime | None]]:
        """(name, phase, start, end) of every step reached so far (no step runs during the wait)."""
        spans = self._step_spans()
        if not spans:
            return []
        elapsed = self.elapsed(now)
        point = self.wait_point
        holding = self.waiting(now)
        failed_outcome = self.script.outcome == "failure"
        result: list[tuple[str, str, datetime, datetime | None]] = []
        for index, (name, begin, finish) in enumerate(spans):
            if elapsed < begin or (holding and point is not None and begin >= point):
                break
            begin_mono = self.instant(begin, last=point is not None and begin >= point)
            start = self.wall(begin_mono if begin_mono is not None else self._cut(now))
            if elapsed >= finish:
                finish_mono = self.instant(finish)
                end = self.wall(finish_mono if finish_mono is not None else self._cut(now))
                last = index == len(spans) - 1
                result.append((name, FAILED if failed_outcome and last else SUCCEEDED, start, end))
            elif self.canceled_mono is not None:
                result.append((name, CANCELED, start, self.wall(self.canceled_mono)))
            else:
                result.append((name, RUNNING, start, None))
        return result

    def wait_step(self, now: float) -> tuple[datetime, datetime | None, bool] | None:
        """(start, end, finished) of step.waitForEvent once reached, else None."""
        hold = self._hold()
        if hold is None or hold[0] > self._cut(now):
            return None
        start, end = hold
        if end is not None:
            return self.wall(start), self.wall(end), True
        if self.canceled_mono is not None:
            return self.wall(start), self.wall(self.canceled_mono), False
        return self.wall(start), None, False

    def receive_event(self, event_type: str, payload: Any, now: float) -> None:
        self.events.append({"type": event_type, "payload": payload})
        if event_type == self.script.wait_for_event and self.awaited_mono is None:
            self.awaited_mono, self.awaited_payload = now, payload

    def restart(self, now: float) -> None:
        """Start over from scratch: new creation time, no pauses, no cancel, no events."""
        self.created_mono, self.created_wall = now, datetime.now(timezone.utc)
        self.pauses, self.canceled_mono = [], None
        self.events, self.awaited_mono, self.awaited_payload = [], None, None

    def sort_key(self) -> tuple[int, int]:
        """Creation time in whole microseconds, then creation order: the listing order, exact for cursors."""
        return (self.created_wall - EPOCH) // timedelta(microseconds=1), self.seq

    def output(self) -> Any:
        output = self.script.output
        if output is None:
            output = {"result": "ok", "input": self.payload}
        if self.script.wait_for_event is None or self.awaited_mono is None:
            return output
        # The payload of the event step.waitForEvent returned, as a workflow would pass it on.
        if isinstance(output, dict):
            return {**output, "event": self.awaited_payload}
        return {"result": output, "event": self.awaited_payload}

    def status(self, now: float, mystery: bool = False) -> str:
        return MYSTERY_STATUS if mystery else self.statuses[self.phase(now)]


class EmulatorState:
    """Everything the server thread and the test's thread share, behind one ``threading.Lock``.

    Methods named without a lock in their docstring expect the caller to hold :attr:`lock`.
    """

    def __init__(self, credentials: EmulatorCredentials) -> None:
        self.credentials = credentials
        self.lock = threading.Lock()
        self.executions: dict[tuple[str, str, str], Execution] = {}
        self.scripts: dict[tuple[str, str], WorkflowScript] = {}
        self.faults = FaultBook()
        self.requests: list[RequestRecord] = []
        self._seq = 0

    def script_for(self, vendor: str, workflow: str) -> WorkflowScript:
        script = self.scripts.get((vendor, workflow))
        if script is not None:
            return copy.deepcopy(script)
        return WorkflowScript(outcome="failure" if "fail" in workflow.lower() else "success")

    def new_execution(
        self,
        vendor: str,
        workflow: str,
        payload: Any,
        statuses: Mapping[str, str],
        *,
        execution_id: str | None = None,
        script: WorkflowScript | None = None,
        created: tuple[float, datetime] | None = None,
        mode: str = "api",
    ) -> Execution:
        self._seq += 1
        mono, wall = created or (time.monotonic(), datetime.now(timezone.utc))
        ex = Execution(
            vendor=vendor,
            workflow=workflow,
            id=execution_id or str(uuid.uuid4()),
            seq=self._seq,
            payload=payload,
            script=script or self.script_for(vendor, workflow),
            created_mono=mono,
            created_wall=wall,
            statuses=statuses,
            mode=mode,
        )
        self.executions[self._key(vendor, workflow, ex.id)] = ex
        return ex

    @staticmethod
    def _key(vendor: str, workflow: str, execution_id: str) -> tuple[str, str, str]:
        # SailPoint addresses executions without their workflow, so its ids live in one flat namespace.
        return (vendor, "" if vendor == "sailpoint" else workflow, execution_id)

    def find(self, vendor: str, workflow: str, execution_id: str) -> Execution | None:
        return self.executions.get(self._key(vendor, workflow, execution_id))

    def listing(self, vendor: str, workflow: str) -> list[Execution]:
        """Executions of one workflow, newest first by creation time like the vendors sort them."""
        found = [ex for ex in self.executions.values() if ex.vendor == vendor and ex.workflow == workflow]
        found.sort(key=Execution.sort_key, reverse=True)
        return found

    def known_workflows(self, vendor: str) -> list[str]:
        """Workflows the emulator has heard of (scripted or executed), in first-seen order."""
        names = [workflow for v, workflow in self.scripts if v == vendor]
        names += [ex.workflow for ex in self.executions.values() if ex.vendor == vendor]
        return list(dict.fromkeys(names))
