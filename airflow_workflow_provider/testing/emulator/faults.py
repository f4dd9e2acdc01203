"""Fault injection and rate limits, applied the same way to every vendor; the vendor module words the answer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_workflow_provider.testing.emulator.common import seconds_header

if TYPE_CHECKING:
    from aiohttp import web

    from airflow_workflow_provider.testing.emulator.common import Call, VendorApi

OPERATIONS: tuple[str, ...] = (
    "token",
    "start",
    "get",
    "cancel",
    "list",
    "history",
    "status",
    "event",
    "list_workflows",  # beyond the spec: the cheap call hooks use for test_connection
    "any",
)
FAULTS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "401",
    "403",
    "404",
    "reset_before",
    "reset_after",
    "slow",
    "malformed_json",
    "unknown_status",
)
STATUS_FAULTS = frozenset({"429", "500", "502", "503", "504", "401", "403", "404"})


@dataclass
class Fault:
    vendor: str
    operation: str
    fault: str
    remaining: int
    params: dict[str, Any]


@dataclass
class Window:
    """One credential's current window of a rate limit."""

    start: float
    count: int = 0
    blocked_until: float = 0.0


@dataclass
class RateLimit:
    """``limit`` requests per fixed window of ``period`` seconds, counted per credential, as the vendors do.

    ``blocks_for_a_period``: crossing the limit refuses the credential for a whole period from then on
    (Cloudflare: "blocked for the next five minutes"), rather than until the window ends.
    """

    limit: int
    period: float
    blocks_for_a_period: bool = False
    windows: dict[str, Window] = field(default_factory=dict)

    def window(self, credential: str, now: float) -> Window:
        window = self.windows.get(credential)
        if window is None or (now - window.start >= self.period and now >= window.blocked_until):
            window = self.windows[credential] = Window(now)
        return window

    def reset_in(self, credential: str, now: float) -> float:
        window = self.window(credential, now)
        return max(0.0, window.blocked_until - now, window.start + self.period - now)

    def remaining(self, credential: str, now: float) -> int:
        return max(0, self.limit - self.window(credential, now).count)


class FaultBook:
    """Queued faults (FIFO) and the rate limit per vendor; the caller holds the emulator's lock."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.rate_limits: dict[str, RateLimit] = {}

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take(self, vendor: str, operation: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.vendor == vendor and fault.operation in (operation, "any"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[index]
                return fault
        return None

    def set_rate_limit(self, vendor: str, limit: int, period: float, blocks_for_a_period: bool = False) -> None:
        if limit <= 0:
            self.rate_limits.pop(vendor, None)
        else:
            if period <= 0:
                raise ValueError("period must be > 0")
            self.rate_limits[vendor] = RateLimit(limit, period, blocks_for_a_period)

    def check_rate_limit(self, vendor: str, credential: str, now: float) -> RateLimit | None:
        """Count this request against its credential's window; return the limit when it is exceeded."""
        limit = self.rate_limits.get(vendor)
        if limit is None:
            return None
        window = limit.window(credential, now)
        if now < window.blocked_until:
            return limit
        if window.count >= limit.limit:
            if limit.blocks_for_a_period:
                window.blocked_until = now + limit.period
            return limit
        window.count += 1
        return None

    def clear(self) -> None:
        self.faults.clear()
        self.rate_limits.clear()


def rate_limit_headers(limit: int, period: float, remaining: int, reset: float) -> dict[str, str]:
    """Datadog's X-RateLimit-* set; a 429 fault of any vendor can carry it too (``header="reset"``)."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Period": seconds_header(period),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": seconds_header(reset),
        "X-RateLimit-Name": "workflows",
    }


def rate_limited(api: VendorApi, limit: RateLimit, credential: str, now: float) -> web.Response:
    # Retry-After must be whole seconds; round up so a client honouring it lands in the next window.
    wait = max(1, math.ceil(limit.reset_in(credential, now)))
    headers = {"Retry-After": str(wait)}
    headers.update(api.rate_headers(limit.limit, limit.period, 0, wait))
    return api.too_many_requests(headers)


def status_fault_response(api: VendorApi, call: Call, fault: Fault) -> web.Response:
    """The answer of an injected status fault ("429", "500", ...)."""
    status = int(fault.fault)
    if status != 429:
        return api.status_fault(call, status)
    retry = fault.params.get("retry_after", 1)
    style = fault.params.get("header", api.FAULT_429_HEADERS)
    headers: dict[str, str] = {}
    if style in ("both", "retry-after"):
        headers["Retry-After"] = seconds_header(retry)
    if style in ("both", "reset"):
        headers.update(rate_limit_headers(1, 60, 0, float(retry)))
    return api.too_many_requests(headers)
