"""One vocabulary of execution states for all vendors, and the per-vendor maps into it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from enum import Enum

log = logging.getLogger(__name__)


class ExecutionState(str, Enum):
    """Where a workflow execution stands, whatever the vendor calls it."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_failure(self) -> bool:
        return self in FAILURE_STATES

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES: frozenset[ExecutionState] = frozenset(
    {ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELED}
)
FAILURE_STATES: frozenset[ExecutionState] = frozenset({ExecutionState.FAILED, ExecutionState.CANCELED})


class StatusMap:
    """Maps one vendor's status strings onto :class:`ExecutionState`.

    Vendors add statuses without notice (Cloudflare added ``rollingBack``; Datadog does not
    document its terminal strings), so an unknown value becomes ``UNKNOWN`` and is logged
    once per process instead of failing a poll that may well succeed on the next call.
    """

    def __init__(
        self,
        vendor: str,
        mapping: Mapping[str, ExecutionState],
        *,
        case_sensitive: bool = False,
        missing: ExecutionState = ExecutionState.UNKNOWN,
    ) -> None:
        self.vendor = vendor
        self._case_sensitive = case_sensitive
        self._mapping = {self._key(k): v for k, v in mapping.items()}
        self._missing = missing
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def _key(self, value: str) -> str:
        return value if self._case_sensitive else value.casefold()

    def lookup(self, vendor_status: str | None) -> ExecutionState | None:
        """The state a known status stands for; None for an unknown one (nothing is logged)."""
        if vendor_status is None or vendor_status == "":
            return self._missing
        return self._mapping.get(self._key(str(vendor_status)))

    def normalize(self, vendor_status: str | None) -> ExecutionState:
        state = self.lookup(vendor_status)
        if state is not None:
            return state
        vendor_status = str(vendor_status)
        with self._lock:
            first_time = vendor_status not in self._reported
            self._reported.add(vendor_status)
        if first_time:
            log.warning(
                "%s returned the status %r, which this provider does not know; treating it as %s.",
                self.vendor,
                vendor_status,
                ExecutionState.UNKNOWN.value,
            )
        return ExecutionState.UNKNOWN


#: How long a wait goes on while the vendor reports a status this provider cannot read (one hour).
UNKNOWN_STATE_LIMIT = 3600.0


class UnknownStateClock:
    """Times how long an execution has stayed in ``UNKNOWN``, so that no unreadable status makes a wait endless.

    Vendors add statuses without notice; a wait with no timeout would poll such an execution for
    ever. Every wait loop (worker, triggerer) asks :meth:`expired` after each check and gives up,
    naming the status, once the execution has been unreadable for ``limit`` seconds in a row.
    """

    def __init__(self, limit: float = UNKNOWN_STATE_LIMIT) -> None:
        self.limit = limit
        self._since: float | None = None

    def expired(self, state: ExecutionState, now: float) -> bool:
        if state is not ExecutionState.UNKNOWN:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.limit


def unknown_state_message(
    vendor: str, execution_id: str, vendor_status: str | None, limit: float, url: str | None
) -> str:
    """Why a wait gave up on an execution whose status stayed unreadable."""
    return (
        f"{vendor} reported the status {vendor_status!r} for execution {execution_id} for {limit:.0f} s in a row; "
        f"this provider cannot tell whether that is running or over, so it stops waiting. The execution may "
        f"still be running: see {url or 'the vendor UI'}"
    )
