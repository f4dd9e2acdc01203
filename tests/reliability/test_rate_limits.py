"""Fifty concurrent waits per vendor under a low rate limit: every wait finishes, none fails.

The vendors' limits are scaled down (Cloudflare 1,200 per 5 min becomes 40 per 2 s, SailPoint
100 per 10 s becomes 20 per 1 s, Datadog 30 per 1 s) and executions last about 2 s, so that
fifty waits polling side by side really hit the limit: the emulator must have answered 429s,
and the retry policy (waiting what the vendor asks in ``Retry-After`` / ``X-RateLimit-Reset``)
must carry every wait to the end.

All three do with the default settings. (SailPoint did not while every SailPoint hook fetched its own
OAuth token: the burst was twice as large, 50 token requests then 50 gets, throttled clients came back
in lockstep, and in most runs some waits ended in ``RateLimitedError`` after five attempts; the token
is now shared per process and client, which the last test here checks.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import RateLimitedError
from airflow_workflow_provider.core.http import close_shared_async_session
from airflow_workflow_provider.core.ratelimit import RateLimit
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook
from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.conftest import VENDORS, WORKFLOW_IDS

HOOKS = {"datadog": DatadogWorkflowsHook, "cloudflare": CloudflareWorkflowsHook, "sailpoint": SailPointWorkflowsHook}
LIMITS: dict[str, tuple[int, float]] = {"cloudflare": (40, 2.0), "sailpoint": (20, 1.0), "datadog": (30, 1.0)}
WAITS = 50
DURATION = 2.0
# Fifty waits polling every 2.5 s ask for 20 requests a second, about what the limits allow, as fifty real
# waits polling every 10 s stay within SailPoint's 10 a second; the first polls all go at once (and each
# SailPoint client fetches its token first), so the limit is hit in the burst.
POLL_INTERVAL = 2.5
WAIT_TIMEOUT = 45.0


def _prepare(emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor: str) -> tuple[str, list[str]]:
    limit, period = LIMITS[vendor]
    # The connection claims ten times the limit the vendor enforces (a quota that was lowered, or other
    # processes sharing the credential): the budget starts far too fast, meets 429s and must adapt.
    conn_id = set_connection(vendor, rate_limit_requests=limit * 10, rate_limit_period=period)
    workflow = WORKFLOW_IDS[vendor]
    emulator.script(vendor, workflow, WorkflowScript(duration=DURATION, queued_for=0.2))
    # Created directly in the emulator, all at once: the waits are what is under test, not the starts.
    ids = emulator.create_executions(vendor, workflow, WAITS, finished=False)
    emulator.set_rate_limit(vendor, limit, period)
    return conn_id, ids


def _throttled(emulator: WorkflowEmulator, vendor: str) -> int:
    return len([r for r in emulator.requests if r.vendor == vendor and r.status == 429])


def _check(emulator: WorkflowEmulator, vendor: str, results: list[Any], started: float) -> None:
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {WAITS} waits failed, e.g. {failures[0]!r}"
    assert len(results) == WAITS
    assert all(r.state is ExecutionState.SUCCEEDED for r in results)
    if vendor == "datadog":
        # Datadog announces its limit on every answer: the budget adopts it from the first answer on,
        # whatever the connection claimed, and so needs no 429 to slow down.
        budget = HOOKS[vendor](f"{vendor}_workflows_default").api.rate_budget
        assert budget.limit == RateLimit(*LIMITS[vendor])
    else:
        assert _throttled(emulator, vendor) > 0, "the rate limit was never hit: the test proves nothing"
    assert time.monotonic() - started < WAIT_TIMEOUT


@pytest.mark.timeout(60)
@pytest.mark.parametrize("vendor", VENDORS)
def test_fifty_threaded_waits_under_a_rate_limit(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor: str
) -> None:
    conn_id, ids = _prepare(emulator, set_connection, vendor)
    workflow = WORKFLOW_IDS[vendor]
    go = threading.Barrier(WAITS)

    def wait(execution_id: str) -> Any:
        hook = HOOKS[vendor](conn_id)  # one hook per wait, as fifty tasks in fifty workers would have
        try:
            go.wait()
            deadline = time.monotonic() + WAIT_TIMEOUT
            while time.monotonic() < deadline:
                execution = hook.get_execution(workflow, execution_id)
                if execution.is_terminal:
                    return execution
                time.sleep(POLL_INTERVAL)
            raise AssertionError(f"{execution_id} not terminal after {WAIT_TIMEOUT} s")
        except Exception as exc:
            return exc
        finally:
            hook.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WAITS) as pool:
        results = list(pool.map(wait, ids))

    _check(emulator, vendor, results, started)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("vendor", VENDORS)
def test_fifty_async_waits_under_a_rate_limit(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor: str
) -> None:
    conn_id, ids = _prepare(emulator, set_connection, vendor)
    workflow = WORKFLOW_IDS[vendor]

    async def wait(execution_id: str) -> Any:
        hook = HOOKS[vendor](conn_id)  # one hook per wait, as fifty triggers in one triggerer would have
        deadline = time.monotonic() + WAIT_TIMEOUT
        while time.monotonic() < deadline:
            execution = await hook.aget_execution(workflow, execution_id)
            if execution.is_terminal:
                return execution
            await asyncio.sleep(POLL_INTERVAL)
        raise AssertionError(f"{execution_id} not terminal after {WAIT_TIMEOUT} s")

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(wait(i) for i in ids), return_exceptions=True)
        finally:
            await close_shared_async_session()

    started = time.monotonic()
    results = asyncio.run(main())

    _check(emulator, vendor, results, started)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("threads", [1, 10])
def test_sailpoint_hooks_on_one_connection_share_their_token(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], threads: int
) -> None:
    """Fifty polls, each through its own hook (fifty triggers in one triggerer): one token, not fifty."""
    conn_id = set_connection("sailpoint")
    workflow = WORKFLOW_IDS["sailpoint"]
    ids = emulator.create_executions("sailpoint", workflow, WAITS, finished=False)

    def poll(execution_id: str) -> None:
        hook = SailPointWorkflowsHook(conn_id)
        try:
            hook.get_execution(workflow, execution_id)
        finally:
            hook.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(poll, ids))

    tokens = [r for r in emulator.requests if r.operation == "token"]
    assert_each_execution_read_once(emulator)
    # Polls that start together share the one token request in flight (single flight).
    assert len(tokens) == 1, f"{len(tokens)} token requests for {WAITS} polls on one connection"


@pytest.mark.timeout(60)
def test_sailpoint_triggers_starting_together_fetch_one_token(
    emulator: WorkflowEmulator, set_connection: Callable[..., str]
) -> None:
    """Fifty coroutines (fifty triggers just started in one triggerer), each with its own hook: one token."""
    conn_id = set_connection("sailpoint")
    workflow = WORKFLOW_IDS["sailpoint"]
    ids = emulator.create_executions("sailpoint", workflow, WAITS, finished=False)

    async def main() -> None:
        try:
            await asyncio.gather(*(SailPointWorkflowsHook(conn_id).aget_execution(workflow, i) for i in ids))
        finally:
            await close_shared_async_session()

    asyncio.run(main())

    assert_each_execution_read_once(emulator)
    assert len([r for r in emulator.requests if r.operation == "token"]) == 1


def assert_each_execution_read_once(emulator: WorkflowEmulator) -> None:
    """Every poll answered once; a 401 for a token that an earlier test's emulator issued (the process-wide
    cache outlives emulators on a reused port) is refreshed and resent, which is not a second read."""
    gets = [r for r in emulator.requests if r.operation == "get"]
    assert len([r for r in gets if r.status == 200]) == WAITS
    assert all(r.status in (200, 401) for r in gets), [r.status for r in gets]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("vendor", VENDORS)
def test_throttling_slows_a_wait_but_never_fails_it_while_a_start_keeps_its_bounded_retries(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor: str
) -> None:
    """Twice the retry policy's attempts of 429 in a row: the wait goes on; the start gives up as before."""
    conn_id = set_connection(vendor, max_attempts=3)
    workflow = WORKFLOW_IDS[vendor]
    hook = HOOKS[vendor](conn_id)
    execution_id = hook.start_execution(workflow)

    emulator.inject_fault(vendor, "get", "429", times=6, retry_after=0)
    assert hook.get_execution(workflow, execution_id, patient=True).id == execution_id

    emulator.inject_fault(vendor, "get", "429", times=6, retry_after=0)

    async def wait() -> Any:
        try:
            return await HOOKS[vendor](conn_id).aget_execution(workflow, execution_id, patient=True)
        finally:
            await close_shared_async_session()

    assert asyncio.run(wait()).id == execution_id

    emulator.reset()
    emulator.inject_fault(vendor, "start", "429", times=6, retry_after=0)
    with pytest.raises(RateLimitedError):
        hook.start_execution(workflow)
    assert len([r for r in emulator.requests if r.operation == "start" and r.status == 429]) == 3
