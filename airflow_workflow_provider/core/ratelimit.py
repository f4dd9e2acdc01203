"""One rate budget per vendor credential per process, shared by every hook and trigger using it.

A budget is a token bucket whose rate adapts to what the vendor says, the way TCP's congestion
control does (AIMD): it starts at the vendor's documented limit (or the one a connection extra
names), halves on a 429 and waits what the vendor asked (``Retry-After`` / ``X-RateLimit-Reset``),
slows to what ``X-RateLimit-Remaining`` leaves for the rest of the window, and probes back up by a
small fixed step per second while answers succeed. Several processes sharing one limit (triggerers
side by side for high availability) never talk to each other, yet each halving is taken by all of
them together and each increase is the same step per second: that is what makes additive-increase
multiplicative-decrease converge to a fair share of the limit.

No I/O here: :meth:`RateBudget.reserve` only says how long to wait before sending, so the same
budget serves the sync stack (``time.sleep``) and the async one (``asyncio.sleep``), across threads
and event loops; ``core.http`` does the waiting.

Why not a library: aiolimiter is async only, pyrate-limiter and limits enforce fixed rates that the
caller declares. None of them adapts the rate to the server's feedback, which is the point here;
what is left is a token bucket of a few lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Aim a little below the documented limit: the vendors count in fixed windows, and a bucket running
# exactly at the limit can still cross a window edge with a burst.
HEADROOM = 0.9
# After a decrease, the rate climbs back by this fraction of the ceiling per second (from half to the
# ceiling in about a minute and a half): slow enough that processes sharing one limit settle, fast
# enough that a lone process recovers within a few poll intervals.
INCREASE_PER_SECOND = 0.005
DECREASE_FACTOR = 0.5
# However throttled, a budget keeps this fraction of its ceiling (and at least one request a minute):
# a wait must go on, and a long throttled spell must not leave a budget that takes an hour to recover.
FLOOR_FRACTION = 0.01
SLOWEST_INTERVAL = 60.0
# A request queued this long behind the others of its credential (the operators' default poll interval) means
# the waits of this process ask more than the budget allows: they are checked less often than their interval.
PACED_WARNING = 10.0


@dataclass(frozen=True)
class RateLimit:
    """``requests`` per ``period`` seconds, as a vendor documents it."""

    requests: int
    period: float

    @property
    def per_second(self) -> float:
        return self.requests / self.period

    def __str__(self) -> str:
        return f"{self.requests} requests per {self.period:g} s"


def _now() -> float:
    return time.monotonic()


class RateBudget:
    """An adaptive token bucket; thread-safe, loop-agnostic, no I/O."""

    def __init__(self, name: str, limit: RateLimit, *, clock: Callable[[], float] = _now) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self.limit = limit
        self.ceiling = limit.per_second * HEADROOM
        self.rate = self.ceiling
        self._tokens = self.burst
        self._updated = now
        self._last_decrease = -math.inf
        self._blocked_until = 0.0
        self.sent = 0
        self.throttled = 0
        self._warned = False
        self._warned_paced = False

    @property
    def burst(self) -> float:
        """How many requests may go at once after a quiet spell: a tenth of the window at the current rate."""
        return max(1.0, self.rate * self.limit.period / 10)

    @property
    def floor(self) -> float:
        return max(1.0 / SLOWEST_INTERVAL, self.ceiling * FLOOR_FRACTION)

    def __repr__(self) -> str:
        return f"RateBudget({self.name}, {self.rate:.3g}/s of {self.ceiling:.3g}/s)"

    def _refill(self, now: float) -> None:
        # Nothing accrues while the vendor holds us back: requests queued during a block go after it, spaced.
        elapsed = max(0.0, now - max(self._updated, self._blocked_until))
        self._updated = max(self._updated, now)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        # Probe back up, but not while the vendor still asks us to hold back.
        if now >= self._blocked_until and now - self._last_decrease > 1.0:
            self.rate = min(self.ceiling, self.rate + self.ceiling * INCREASE_PER_SECOND * elapsed)

    def reserve(self) -> float:
        """Take one request's place in the budget; return the seconds to wait before sending it."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens -= 1.0
            self.sent += 1
            queued = max(0.0, -self._tokens) / self.rate
            paced = queued >= PACED_WARNING and not self._warned_paced
            self._warned_paced = self._warned_paced or paced
            rate = self.rate
        if paced:
            # Without a 429 nothing else would tell: a triggerer with more lone waits than the budget's rate
            # times their interval checks each of them less often, silently (issue 15's benchmark did).
            log.warning(
                "%s: requests now queue %.0f s for their turn in this credential's rate budget (%.3g requests a "
                "second), so waits are checked less often than their poll interval. Waits on executions of one "
                "workflow share their checks; if the vendor allows this credential more, set rate_limit_requests "
                "and rate_limit_period in the connection extra",
                self.name,
                queued,
                rate,
            )
        return max(0.0, self._blocked_until - now) + queued

    def recheck(self) -> float:
        """Called when a reserved turn comes: further seconds to wait if the vendor said "stop" meanwhile.

        A 429 (or an empty window) that arrives while requests wait for their turn must hold them too,
        or every request already queued would still go and be throttled; held ones queue up again.
        """
        with self._lock:
            now = self._clock()
            if now >= self._blocked_until:
                return 0.0
            self._refill(now)
            self._tokens -= 1.0
            return (self._blocked_until - now) + max(0.0, -self._tokens) / self.rate

    async def await_turn(self) -> None:
        """Wait for this request's turn, on an event loop."""
        import asyncio

        wait = self.reserve()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.recheck()

    def wait_turn(self) -> None:
        """Wait for this request's turn, in a thread."""
        wait = self.reserve()
        while wait > 0:
            time.sleep(wait)
            wait = self.recheck()

    def _block(self, now: float, seconds: float) -> None:
        """Send nothing for ``seconds``; requests already reserved queue up behind the block."""
        until = now + seconds
        if until > self._blocked_until:
            self._blocked_until = until
            self._tokens = min(self._tokens, 0.0)

    def _decrease(self, now: float, hold: float) -> None:
        # The requests in flight when the limit was crossed all come back 429: one decrease for all of them.
        if now - self._last_decrease > max(1.0, hold):
            self.rate = max(self.floor, self.rate * DECREASE_FACTOR)
            self._last_decrease = now
        self._block(now, hold)

    def throttled_answer(self, retry_after: float | None) -> None:
        """The vendor answered 429: halve the rate (once per burst of 429s) and wait what it asked."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self.throttled += 1
            hold = retry_after if retry_after is not None else 1.0 / self.rate
            self._decrease(now, hold)
            first = not self._warned
            self._warned = True
        (log.warning if first else log.debug)(
            "%s: the vendor's rate limit was reached; waiting %.1f s, then sending at most %.3g requests a second "
            "(this budget is shared by every task and trigger using this credential in this process)",
            self.name,
            hold,
            self.rate,
        )

    def answered(self, remaining: int | None, reset: float | None, limit: RateLimit | None) -> None:
        """A successful answer; ``X-RateLimit-*`` headers, where the vendor sends them, tune the budget."""
        with self._lock:
            now = self._clock()
            if limit is not None and limit.requests > 0 and limit.period > 0 and limit != self.limit:
                self.limit = limit
                self.ceiling = limit.per_second * HEADROOM
                self.rate = min(self.rate, self.ceiling)
            self._refill(now)
            if remaining is None:
                return
            # Never burst beyond what is left of the window (others may be using the same credential).
            self._tokens = min(self._tokens, float(remaining))
            if remaining <= 0 and reset is not None:
                # The window is used up: the same signal as a 429, without one having to happen.
                self._decrease(now, reset)


class _Budgets:
    """The process's budgets, one per vendor credential."""

    def __init__(self) -> None:
        self._budgets: dict[str, RateBudget] = {}
        self._lock = threading.Lock()

    def get(self, vendor: str, endpoint: str, credentials: Iterable[str], limit: RateLimit) -> RateBudget:
        digest = hashlib.sha256("\0".join((vendor, endpoint, *credentials)).encode()).hexdigest()
        with self._lock:
            budget = self._budgets.get(digest)
            if budget is None:
                budget = self._budgets[digest] = RateBudget(f"{vendor} ({endpoint})", limit)
            return budget

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()


BUDGETS = _Budgets()


def budget_for(vendor: str, endpoint: str, credentials: Iterable[str], limit: RateLimit) -> RateBudget:
    """The budget of this credential at this endpoint in this process (created on first use)."""
    return BUDGETS.get(vendor, endpoint, credentials, limit)


def rate_limit_from_extra(extra: Mapping[str, object], default: RateLimit) -> RateLimit:
    """``rate_limit_requests`` per ``rate_limit_period`` seconds from a connection extra, else ``default``."""
    from airflow_workflow_provider.core.validation import require_int_in_range, require_positive_number

    requests, period = extra.get("rate_limit_requests"), extra.get("rate_limit_period")
    if isinstance(requests, str) and requests.strip().isdigit():
        requests = int(requests)
    if isinstance(period, str):
        with contextlib.suppress(ValueError):
            period = float(period)
    if requests is not None:
        requests = require_int_in_range("extra.rate_limit_requests", requests, 1, 1_000_000)
    if period is not None:
        period = require_positive_number("extra.rate_limit_period", period)
    return RateLimit(
        int(requests) if requests is not None else default.requests,
        float(period) if period is not None else default.period,
    )
