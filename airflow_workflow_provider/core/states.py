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

    def normalize(self, vendor_status: str | None) -> ExecutionState:
        if vendor_status is None or vendor_status == "":
            return self._missing
        state = self._mapping.get(self._key(str(vendor_status)))
        if state is not None:
            return state
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
