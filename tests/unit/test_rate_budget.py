"""The rate budget (core.ratelimit), on a simulated clock: pacing, backing off, probing back up, fair shares."""

from __future__ import annotations

import heapq
import logging
import math

import pytest

from airflow_workflow_provider.core.errors import WorkflowInputError
from airflow_workflow_provider.core.ratelimit import (
    HEADROOM,
    PACED_WARNING,
    RateBudget,
    RateLimit,
    rate_limit_from_extra,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_budget_lets_a_tenth_of_the_window_go_at_once_then_spaces_the_rest() -> None:
    clock = Clock()
    budget = RateBudget("test", RateLimit(100, 10.0), clock=clock)
    waits = [budget.reserve() for _ in range(30)]
    burst = int(budget.burst)
    assert burst == 9  # a tenth of the window at 90 % of the documented rate
    assert all(w == 0 for w in waits[:burst])
    spacing = [b - a for a, b in zip(waits[burst:-1], waits[burst + 1 :], strict=True)]
    assert all(math.isclose(s, 1 / (10 * HEADROOM)) for s in spacing)


def test_a_429_halves_the_rate_once_and_holds_every_request_for_what_the_vendor_asked() -> None:
    clock = Clock()
    budget = RateBudget("test", RateLimit(100, 10.0), clock=clock)
    for _ in range(20):
        budget.reserve()
    before = budget.rate
    for _ in range(5):  # the requests in flight all come back 429: one decrease for the lot
        budget.throttled_answer(3.0)
    assert math.isclose(budget.rate, before / 2)
    first = budget.reserve()
    second = budget.reserve()
    assert first >= 3.0 and math.isclose(second - first, 1 / budget.rate)


def test_after_backing_off_the_rate_climbs_back_slowly_to_the_ceiling() -> None:
    clock = Clock()
    budget = RateBudget("test", RateLimit(100, 10.0), clock=clock)
    budget.throttled_answer(1.0)
    low = budget.rate
    rates = []
    for _ in range(200):
        clock.now += 1.0
        budget.answered(None, None, None)
        rates.append(budget.rate)
    assert rates == sorted(rates) and rates[2] > low
    assert rates[10] < budget.ceiling  # not back at once
    assert math.isclose(rates[-1], budget.ceiling)


def test_datadog_headers_teach_the_limit_and_an_empty_window_holds_until_its_reset() -> None:
    clock = Clock()
    budget = RateBudget("test", RateLimit(600, 60.0), clock=clock)
    budget.answered(remaining=29, reset=0.5, limit=RateLimit(30, 1.0))
    assert budget.limit == RateLimit(30, 1.0) and math.isclose(budget.ceiling, 30 * HEADROOM)
    budget.answered(remaining=0, reset=0.8, limit=RateLimit(30, 1.0))
    assert budget.reserve() >= 0.8


def test_rate_limit_extra_overrides_and_refuses_nonsense() -> None:
    documented = RateLimit(100, 10.0)
    assert rate_limit_from_extra({}, documented) == documented
    assert rate_limit_from_extra({"rate_limit_requests": "500"}, documented) == RateLimit(500, 10.0)
    assert rate_limit_from_extra({"rate_limit_period": 60}, documented) == RateLimit(100, 60.0)
    with pytest.raises(WorkflowInputError, match="rate_limit_requests"):
        rate_limit_from_extra({"rate_limit_requests": -1}, documented)
    with pytest.raises(WorkflowInputError, match="rate_limit_period"):
        rate_limit_from_extra({"rate_limit_period": "soon"}, documented)


def _simulate(processes: int, seconds: float, limit: RateLimit, believed: RateLimit) -> tuple[list[int], int, int]:
    """Processes with endless demand (20 waits each) sharing one fixed-window limit, on a simulated clock.

    Returns the successful requests of each process in the second half (after settling), all throttled
    answers, and all requests.
    """
    clock = Clock()
    start = clock.now
    budgets = [RateBudget(f"p{i}", believed, clock=clock) for i in range(processes)]
    window_start, window_count = start, 0
    ok = [0] * processes
    throttled = total = 0
    events: list[tuple[float, int, int]] = []  # (time its turn comes, sequence, process)
    sequence = 0
    for index, budget in enumerate(budgets):
        for _ in range(20):
            heapq.heappush(events, (clock.now + budget.reserve(), sequence, index))
            sequence += 1
    while events:
        at, _, index = heapq.heappop(events)
        if at > start + seconds:
            break
        clock.now = at
        budget = budgets[index]
        held = budget.recheck()
        if held > 0:  # throttled meanwhile: wait again, as core.http does
            heapq.heappush(events, (at + held, sequence, index))
            sequence += 1
            continue
        if at - window_start >= limit.period:
            window_start += limit.period * ((at - window_start) // limit.period)
            window_count = 0
        total += 1
        if window_count >= limit.requests:
            throttled += 1
            budget.throttled_answer(math.ceil(window_start + limit.period - at))
        else:
            window_count += 1
            if at >= start + seconds / 2:
                ok[index] += 1
            budget.answered(None, None, None)
        clock.now = at + 0.05  # the answer's round trip
        heapq.heappush(events, (clock.now + budget.reserve(), sequence, index))
        sequence += 1
    return ok, throttled, total


def test_a_lone_process_at_the_documented_limit_is_never_throttled() -> None:
    sailpoint = RateLimit(100, 10.0)
    ok, throttled, _ = _simulate(1, 600.0, sailpoint, sailpoint)
    assert throttled == 0
    assert ok[0] >= 0.85 * sailpoint.per_second * 300


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_sharing_one_limit_converge_to_fair_shares_with_few_429s(processes: int) -> None:
    """Triggerers side by side, each believing it has the whole limit: AIMD settles them on a share each."""
    sailpoint = RateLimit(100, 10.0)
    ok, throttled, total = _simulate(processes, 1200.0, sailpoint, sailpoint)
    assert throttled / total <= 0.02, f"{throttled} of {total} throttled"
    assert min(ok) >= 0.7 * max(ok), f"shares {ok}"
    assert sum(ok) >= 0.6 * sailpoint.per_second * 600  # and together they still use most of the limit


def test_a_budget_that_queues_requests_past_a_poll_interval_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """More waits than the budget's rate allows are paced without any 429: the log is the only one to tell."""
    budget = RateBudget("test (example)", RateLimit(10, 1.0), clock=Clock())  # 9 a second, a burst of 1
    with caplog.at_level(logging.WARNING, logger="airflow_workflow_provider.core.ratelimit"):
        waits = [budget.reserve() for _ in range(90)]
        assert waits[-1] < PACED_WARNING and caplog.records == []
        waits += [budget.reserve() for _ in range(200)]
    assert waits[-1] > 2 * PACED_WARNING  # still paced, never failed
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "test (example)" in record.getMessage() and "rate_limit_requests" in record.getMessage()
