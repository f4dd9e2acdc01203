"""The fault matrix: every fault, injected once, into every operation of every vendor.

Each cell ends in exactly one of two ways: success after bounded retries, or a typed error
(a :class:`WorkflowProviderError`) whose message names the vendor, the operation and the cause.
The expected outcome of each cell follows from ``RetryPolicy.is_retryable``:

- 429 is retried for every call, a start included (the rate limiter turned it away);
- 5xx, a reset connection, a read timeout and unreadable JSON are retried only for idempotent
  calls (get, cancel, list, and a Cloudflare start with a caller-chosen instance id); a plain
  start is never resent after them, because it may have reached the vendor;
- 401/403/404 are not retried, except that SailPoint fetches a new token once on a 401.

Every cell's outcome goes into ``reports/fault-matrix.md`` (see ``conftest.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    WorkflowApiError,
    WorkflowProviderError,
    WorkflowTransportError,
)
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.conftest import WORKFLOW_IDS, _hook_class
from tests.reliability.conftest import Cell, FaultMatrix

READ_TIMEOUT = 0.5
SLOW_DELAY = 1.5
RESET_WAIT = 1  # seconds the "429_reset" column asks the client to wait

VENDOR_NAMES = {"datadog": "Datadog", "cloudflare": "Cloudflare", "sailpoint": "SailPoint"}
# The hook's operation name (in errors) and the emulator's (in its request log) for each matrix operation.
OPERATIONS = {
    "start": ("start_execution", "start"),
    "start_with_id": ("start_execution", "start"),  # Cloudflare only: a caller-chosen instance id
    "get": ("get_execution", "get"),
    "cancel": ("cancel_execution", "cancel"),
    "list": ("list_executions", "list"),
}
FAULTS = (
    "429",  # Retry-After: 0 (Datadog: Retry-After only, no X-RateLimit-* headers)
    "429_reset",  # Datadog: X-RateLimit-Reset only; the others: Retry-After. 1 s either way
    "500",
    "502",
    "503",
    "reset_before",  # the connection drops before any answer (the emulator did not act on the request)
    "reset_after",  # beyond the brief: the emulator acted on the request, then the answer was lost
    "slow",  # the answer comes after SLOW_DELAY, beyond the connection's read_timeout
    "malformed_json",
    "unknown_status",
    "401",
    "403",
    "404",
    "archived",  # SailPoint only: the execution was archived (90 days), so the API answers 404
)
STATUS_FAULTS = {"500", "502", "503", "401", "403", "404"}
NOT_RESENT_ON_START = {"500", "502", "503", "reset_before", "reset_after", "slow", "malformed_json"}


def _operations(vendor: str) -> tuple[str, ...]:
    base = ("start", "get", "cancel", "list")
    return (*base, "start_with_id") if vendor == "cloudflare" else base


CELLS = [
    (vendor, operation, fault)
    for vendor in VENDOR_NAMES
    for operation in _operations(vendor)
    for fault in FAULTS
    if fault != "archived" or vendor == "sailpoint"
]


@dataclass(frozen=True)
class Expected:
    error: type[WorkflowProviderError] | None  # None: success
    attempts: int
    executions: int = 0  # executions the operation itself creates
    xfail: str | None = None


def expected(vendor: str, operation: str, fault: str) -> Expected:
    starts = 1 if operation.startswith("start") else 0
    plain_start = operation == "start"
    if fault in ("429", "429_reset"):
        return Expected(None, 2, starts)
    if fault == "unknown_status":
        return Expected(None, 1, starts)
    if fault == "401":
        if vendor == "sailpoint":  # one token refresh, then the same request again
            return Expected(None, 2, starts)
        return Expected(AuthenticationError, 1)
    if fault == "403":
        return Expected(PermissionDeniedError, 1)
    if vendor == "sailpoint" and operation in ("get", "cancel") and fault in ("404", "archived"):
        # The cell's first call to /workflow-executions/v1: until that service has answered once, a 404 may
        # mean "this tenant lacks the per-service path", so the versioned path is asked too. It answers the
        # archived execution with its own 404, and the one-off injected 404 with the execution.
        return Expected(NotFoundError if fault == "archived" else None, 2)
    if fault == "404":
        return Expected(NotFoundError, 1)
    if fault == "archived":
        if operation in ("get", "cancel"):
            return Expected(NotFoundError, 1)
        return Expected(None, 1, starts)  # nothing to apply to: a start or a listing simply works
    if plain_start and fault in NOT_RESENT_ON_START:
        error = {
            "500": ServerError,
            "502": ServerError,
            "503": ServerError,
            "malformed_json": InvalidResponseError,
        }.get(fault, WorkflowTransportError)
        # reset_after and slow: the request did reach the emulator, which created the execution once.
        return Expected(error, 1, 1 if fault in ("reset_after", "slow") else 0)
    if fault == "malformed_json" and operation == "cancel" and vendor != "cloudflare":
        # Datadog and SailPoint cancels are judged by their status alone (the body is ignored): a 200 is a success.
        return Expected(None, 1)
    if fault == "reset_after" and operation == "cancel":
        # The first cancel was applied and its answer lost; the resent one meets "already canceled", which the
        # hook counts as done (it reads the execution back: canceled).
        return Expected(None, 2)
    return Expected(None, 2, starts)


def _cause(fault: str) -> str:
    if fault in STATUS_FAULTS:
        return f"HTTP {fault}"
    return {
        "slow": f"read timeout of {READ_TIMEOUT:g} s",
        "reset_before": "connection failed before an answer arrived",
        "reset_after": "connection failed before an answer arrived",
        "malformed_json": "not valid JSON",
        "archived": "HTTP 404",
    }[fault]


def _inject(emulator: WorkflowEmulator, vendor: str, operation: str, fault: str) -> None:
    op = OPERATIONS[operation][1]
    if fault == "429":
        header = "retry-after"
        emulator.inject_fault(vendor, op, "429", times=1, retry_after=0, header=header)
    elif fault == "429_reset":
        header = "reset" if vendor == "datadog" else "retry-after"
        emulator.inject_fault(vendor, op, "429", times=1, retry_after=RESET_WAIT, header=header)
    elif fault == "slow":
        emulator.inject_fault(vendor, op, "slow", times=1, delay=SLOW_DELAY)
    elif fault != "archived":
        emulator.inject_fault(vendor, op, fault, times=1)


def _prepare(emulator: WorkflowEmulator, hook: Any, vendor: str, operation: str, fault: str) -> dict[str, Any]:
    """What the operation acts on, made before the fault is injected."""
    workflow = WORKFLOW_IDS[vendor]
    context: dict[str, Any] = {}
    if vendor == "sailpoint":
        # Fetch the OAuth token now, so that the cell counts only its own operation's requests (a token
        # cached in the process by an earlier test could be one this emulator never issued).
        assert hook.test_connection()[0]
    if operation == "get":
        context["execution_id"] = hook.start_execution(workflow)
    elif operation == "cancel":
        emulator.script(vendor, workflow, WorkflowScript(duration=30))
        context["execution_id"] = hook.start_execution(workflow)
    elif operation == "list":
        context["listed"] = set(emulator.create_executions(vendor, workflow, 3))
    if fault == "archived":
        archived = context.get("execution_id") or hook.start_execution(workflow)
        emulator.archive_execution(vendor, archived)
        context["archived"] = archived
    return context


def _run(hook: Any, vendor: str, operation: str, context: dict[str, Any]) -> Any:
    workflow = WORKFLOW_IDS[vendor]
    if operation == "start":
        return hook.start_execution(workflow, {"cell": "start"})
    if operation == "start_with_id":
        return hook.start_execution(workflow, {"cell": "start"}, instance_id="matrix-run-1")
    if operation == "get":
        return hook.get_execution(workflow, context["execution_id"])
    if operation == "cancel":
        return hook.cancel_execution(workflow, context["execution_id"])
    return list(hook.list_executions(workflow))


def _param(vendor: str, operation: str, fault: str) -> Any:
    reason = expected(vendor, operation, fault).xfail
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(vendor, operation, fault, marks=marks, id=f"{vendor}-{operation}-{fault}")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("vendor", "operation", "fault"), [_param(*cell) for cell in CELLS])
def test_fault_cell(
    emulator: WorkflowEmulator, set_connection: Any, fault_matrix: FaultMatrix, vendor: str, operation: str, fault: str
) -> None:
    want = expected(vendor, operation, fault)
    fault_matrix.expected_cells = len(CELLS)
    hook = _hook_class(vendor)(set_connection(vendor, read_timeout=READ_TIMEOUT))
    workflow = WORKFLOW_IDS[vendor]
    hook_operation, emulator_operation = OPERATIONS[operation]
    try:
        context = _prepare(emulator, hook, vendor, operation, fault)
        requests_before = len(emulator.requests)
        executions_before = len(emulator.executions(vendor, workflow))
        _inject(emulator, vendor, operation, fault)

        started = time.monotonic()
        result: Any = None
        error: WorkflowProviderError | None = None
        try:
            result = _run(hook, vendor, operation, context)
        except WorkflowProviderError as exc:
            error = exc
        elapsed = time.monotonic() - started

        def attempts_seen() -> int:
            return len([r for r in emulator.requests[requests_before:] if r.operation == emulator_operation])

        if fault == "slow":
            # The slow request is answered (and logged, and acted on) only after its delay, later still on a
            # loaded machine: wait until the expected requests are logged, bounded, then count what is there.
            settle_by = time.monotonic() + SLOW_DELAY + 8
            wanted = expected(vendor, operation, fault).attempts
            while attempts_seen() < wanted and time.monotonic() < settle_by:
                time.sleep(0.05)
            time.sleep(0.2)  # and nothing more arrives after it

        attempts = attempts_seen()
        executions = len(emulator.executions(vendor, workflow)) - executions_before
        outcome = f"error: {type(error).__name__}" if error else f"ok after {attempts} attempt{'s' * (attempts > 1)}"
        note = ""
        if error is not None:
            note = str(error).replace("|", "/")
        elif operation == "cancel":
            state = hook.get_execution(workflow, context["execution_id"]).state
            note = f"execution {state.value}"
            if fault == "malformed_json" and vendor != "cloudflare":
                note += " (the hook ignores a cancel's body; the emulator's malformed answer did not apply the cancel)"
        fault_matrix.record(Cell(vendor, operation, fault, outcome, attempts, executions, note))
    finally:
        hook.close()

    # exactly one of the two endings, as the policy says
    if want.error is None:
        assert error is None, f"expected success, got {error!r}"
    else:
        assert isinstance(error, want.error), f"expected {want.error.__name__}, got {error!r} / result {result!r}"
    assert attempts == want.attempts, outcome
    # never two executions for one start, and exactly the ones expected
    assert executions == want.executions
    assert executions <= 1

    if error is not None:
        assert isinstance(error, WorkflowApiError)
        message = str(error)
        assert error.vendor == VENDOR_NAMES[vendor] and error.operation == hook_operation
        assert message.startswith(f"{VENDOR_NAMES[vendor]} {hook_operation} failed:"), message
        assert _cause(fault) in message, message
        if fault == "archived":
            assert "not found" in message.lower() and error.tracking_id
        if isinstance(error, WorkflowTransportError):
            assert error.request_sent is True
        return

    if fault == "429_reset":
        assert elapsed >= RESET_WAIT - 0.1, "the wait the vendor asked for was not honoured"
    if operation == "get":
        assert result.id == context["execution_id"]
        if fault == "unknown_status":
            assert result.state is ExecutionState.UNKNOWN and result.vendor_status == "MYSTERY_STATUS"
        else:
            assert result.state is not ExecutionState.UNKNOWN
    elif operation == "list":
        assert {e.id for e in result} == context["listed"]
        if fault == "unknown_status":
            # An execution with an end time is over whatever its unreadable status says: failed, and said so.
            for e in result:
                assert (e.state, e.state_note is not None) == (
                    (ExecutionState.UNKNOWN, False) if e.ended_at is None else (ExecutionState.FAILED, True)
                )
    elif operation == "start_with_id":
        assert result == "matrix-run-1"
        assert [e["id"] for e in emulator.executions(vendor, workflow)] == ["matrix-run-1"]
    elif operation == "start":
        assert [e["id"] for e in emulator.executions(vendor, workflow)][-1:] == [result]
    elif operation == "cancel" and not (fault == "malformed_json" and vendor != "cloudflare"):
        assert note == "execution canceled"
    elif operation == "cancel":
        assert note.startswith(("execution queued", "execution running"))


def test_every_cell_has_an_expectation() -> None:
    assert len(CELLS) == 3 * 4 * 13 + 4 + 13  # 13 faults x 4 operations x 3 vendors, SailPoint archive, CF ids
    for cell in CELLS:
        want = expected(*cell)
        assert want.error is None or issubclass(want.error, WorkflowApiError)
