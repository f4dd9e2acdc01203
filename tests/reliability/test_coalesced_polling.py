"""Hundreds of deferred waits on one credential at a (scaled-down) vendor limit: all succeed, coalesced.

The same load polled the way the provider did before (one GET per execution per interval, throttled
answers retried a bounded number of times, no shared budget) fails waits: that is what makes the
first test prove something. Limits are scaled down (SailPoint's 100 per 10 s becomes 10 per 1 s) and
so are durations and intervals, so that each test takes seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import RateLimitedError
from airflow_workflow_provider.core.http import close_shared_async_session
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook
from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from airflow_workflow_provider.triggers.datadog import DatadogWorkflowTrigger
from airflow_workflow_provider.triggers.sailpoint import SailPointWorkflowTrigger
from tests.conftest import WORKFLOW_IDS

WAITS = 300
LIMIT, PERIOD = 10, 1.0  # SailPoint's 100 per 10 s, scaled down tenfold in time
POLL_INTERVAL = 1.0
DURATION = 3.0
DEADLINE = 40.0


def _prepare(emulator: WorkflowEmulator, set_connection: Callable[..., str], **extra: Any) -> tuple[str, list[str]]:
    conn_id = set_connection("sailpoint", **extra)
    workflow = WORKFLOW_IDS["sailpoint"]
    emulator.script("sailpoint", workflow, WorkflowScript(duration=DURATION, queued_for=0.2))
    ids = emulator.create_executions("sailpoint", workflow, WAITS, finished=False)
    emulator.set_rate_limit("sailpoint", LIMIT, PERIOD)
    return conn_id, ids


def _counts(emulator: WorkflowEmulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in emulator.requests:
        key = "throttled" if record.status == 429 else record.operation
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.timeout(90)
def test_three_hundred_deferred_waits_at_the_limit_all_succeed(
    emulator: WorkflowEmulator, set_connection: Callable[..., str]
) -> None:
    conn_id, ids = _prepare(emulator, set_connection, rate_limit_requests=LIMIT, rate_limit_period=PERIOD)
    workflow = WORKFLOW_IDS["sailpoint"]

    async def follow(execution_id: str) -> dict[str, Any]:
        trigger = SailPointWorkflowTrigger(
            sailpoint_conn_id=conn_id,
            workflow=workflow,
            execution_id=execution_id,
            poll_interval=POLL_INTERVAL,
            deadline=time.time() + DEADLINE,
        )
        events = [event.payload async for event in trigger.run()]
        assert len(events) == 1
        return events[0]

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(follow(i) for i in ids), return_exceptions=True)
        finally:
            await close_shared_async_session()

    started = time.monotonic()
    events = asyncio.run(main())
    took = time.monotonic() - started

    assert [e for e in events if isinstance(e, BaseException)] == []
    statuses = [e["status"] for e in events]
    assert statuses.count("success") == WAITS, {s: statuses.count(s) for s in set(statuses)}
    counts = _counts(emulator)
    # Three hundred executions at 10 requests a second: per-execution polling would need 300 a second.
    # Lists learn 250 statuses a request; each execution costs about its one final GET.
    assert counts.get("list", 0) > 0
    assert sum(counts.values()) <= WAITS, counts  # fewer than one request per execution for the whole wait
    assert counts.get("throttled", 0) <= 0.02 * sum(counts.values()), counts
    assert took < DEADLINE


@pytest.mark.timeout(90)
def test_the_same_load_polled_per_execution_fails_waits(
    emulator: WorkflowEmulator, set_connection: Callable[..., str]
) -> None:
    """Before the rate budget and coalescing: a GET per execution per interval, 429s retried 5 times, then failed."""
    conn_id, ids = _prepare(emulator, set_connection, rate_limit_requests=1_000_000, rate_limit_period=1)
    workflow = WORKFLOW_IDS["sailpoint"]
    deadline = time.monotonic() + DEADLINE

    async def poll(execution_id: str) -> Any:
        hook = SailPointWorkflowsHook(conn_id)
        while time.monotonic() < deadline:
            execution = await hook.aget_execution(workflow, execution_id)  # not patient: as before
            if execution.is_terminal:
                return execution
            await asyncio.sleep(POLL_INTERVAL)
        return TimeoutError(execution_id)

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(poll(i) for i in ids), return_exceptions=True)
        finally:
            await close_shared_async_session()

    results = asyncio.run(main())

    failed = [r for r in results if isinstance(r, RateLimitedError)]
    assert failed, "per-execution polling survived this load: the test above proves nothing"


@pytest.mark.timeout(60)
def test_a_lone_trigger_polls_as_it_always_did(emulator: WorkflowEmulator, set_connection: Callable[..., str]) -> None:
    """One wait: one GET per interval on its own grid, no listing."""
    conn_id = set_connection("datadog")
    workflow = WORKFLOW_IDS["datadog"]
    emulator.script("datadog", workflow, WorkflowScript(duration=2.0))
    [execution_id] = emulator.create_executions("datadog", workflow, 1, finished=False)
    trigger = DatadogWorkflowTrigger(
        datadog_conn_id=conn_id, workflow=workflow, execution_id=execution_id, poll_interval=0.3
    )

    async def main() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_session()

    [event] = asyncio.run(main())

    assert event["status"] == "success"
    operations = [r.operation for r in emulator.requests]
    # Only GETs, on the grid: at most one per interval over the 2 s it runs (the first may come late on a
    # loaded machine, never more often).
    assert set(operations) == {"get"} and 1 <= len(operations) <= 2.0 / 0.3 + 2, operations


LONE_WAITS = 60
LONE_INTERVAL = 1.0
LONE_DURATION = 4.5  # half an interval off the grid: checks at 0, 1, ..., 5 s, the last one the first after the end


def _lone_waits_gets(emulator: WorkflowEmulator, conn_id: str) -> list[int]:
    """GETs each execution got when every wait follows its own workflow (nothing to coalesce), in one loop."""
    executions = {}
    for index in range(LONE_WAITS):
        workflow = f"5d1e8a3c-0000-4000-8000-{index:012d}"
        emulator.script("datadog", workflow, WorkflowScript(duration=LONE_DURATION))
        [executions[workflow]] = emulator.create_executions("datadog", workflow, 1, finished=False)

    async def follow(workflow: str, execution_id: str) -> str:
        trigger = DatadogWorkflowTrigger(
            datadog_conn_id=conn_id,
            workflow=workflow,
            execution_id=execution_id,
            poll_interval=LONE_INTERVAL,
            deadline=time.time() + DEADLINE,
        )
        [event] = [event.payload async for event in trigger.run()]
        return str(event["status"])

    async def main() -> list[str]:
        try:
            return await asyncio.gather(*(follow(w, i) for w, i in executions.items()))
        finally:
            await close_shared_async_session()

    assert asyncio.run(main()) == ["success"] * LONE_WAITS
    operations = {r.operation for r in emulator.requests}
    assert operations == {"get"}, operations
    return [sum(1 for r in emulator.requests if r.path.endswith(f"/{i}")) for i in executions.values()]


@pytest.mark.timeout(90)
def test_lone_waits_make_one_get_per_slot(emulator: WorkflowEmulator, set_connection: Callable[..., str]) -> None:
    """Lone waits whose answers come in time skip no slot of their grid: ceil(duration / interval) + 1 checks each.

    The triggerer benchmark once saw half of these checks missing: its connections kept the vendor's
    documented limit, and one rate budget per credential paced 1,000 lone waits at it.
    """
    gets = _lone_waits_gets(emulator, set_connection("datadog"))  # the test connections lift the budget
    ideal = math.ceil(LONE_DURATION / LONE_INTERVAL) + 1
    # Never more than one check per slot; one slot may be lost to a stall of a loaded machine, never more.
    assert all(ideal - 1 <= count <= ideal for count in gets), sorted(gets)


@pytest.mark.timeout(90)
def test_paced_lone_waits_skip_slots(emulator: WorkflowEmulator, set_connection: Callable[..., str]) -> None:
    """The same waits through a budget of 10 requests a second (they want 60): paced, they skip most slots."""
    gets = _lone_waits_gets(emulator, set_connection("datadog", rate_limit_requests=10, rate_limit_period=1))
    ideal = math.ceil(LONE_DURATION / LONE_INTERVAL) + 1
    assert sum(1 for count in gets if count < ideal - 1) > LONE_WAITS / 2, sorted(gets)


@pytest.mark.timeout(60)
def test_a_slow_hook_load_delays_the_first_check_not_the_grid(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A triggerer starting a thousand triggers loads hooks and connections slowly: the grid starts at the build."""
    from airflow_workflow_provider.triggers import base, poller

    conn_id = set_connection("datadog")
    workflow = WORKFLOW_IDS["datadog"]
    emulator.script("datadog", workflow, WorkflowScript(duration=0.5))
    [execution_id] = emulator.create_executions("datadog", workflow, 1, finished=False)
    anchors: list[float] = []
    subscribe, load_hook = poller.subscribe, base._load_hook

    def recording_subscribe(*args: Any, first_check_at: float, **kwargs: Any) -> Any:
        anchors.append(first_check_at)
        return subscribe(*args, first_check_at=first_check_at, **kwargs)

    async def slow_load_hook(*args: Any) -> Any:
        await asyncio.sleep(1.0)
        return await load_hook(*args)

    monkeypatch.setattr(poller, "subscribe", recording_subscribe)
    monkeypatch.setattr(base, "_load_hook", slow_load_hook)

    async def main() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_session()

    before = time.time()
    trigger = DatadogWorkflowTrigger(
        datadog_conn_id=conn_id, workflow=workflow, execution_id=execution_id, poll_interval=10.0
    )
    after = time.time()
    [event] = asyncio.run(main())

    assert event["status"] == "success"
    assert len(anchors) == 1 and before <= anchors[0] <= after
