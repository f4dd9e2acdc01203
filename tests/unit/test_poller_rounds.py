"""The coalesced poller's rounds, against a scripted stand-in for a hook (no network, no clock races).

What is checked: news of an execution that a list page shows ended goes out (GET included) while the
listing is still under way, and pollers sharing one event loop spread their rounds over the period
while a lone trigger keeps its own grid.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from airflow_workflow_provider.core.models import ExecutionState, Page, WorkflowExecution
from airflow_workflow_provider.triggers.poller import GOLDEN_RATIO, Poller, Subscription, poller_for, subscribe

WORKFLOW = "wf"
# How long a scripted call waits for what it expects before the test fails (never reached when it passes).
PATIENCE = 10.0


def _execution(execution_id: str, status: str) -> WorkflowExecution:
    state = ExecutionState.SUCCEEDED if status == "done" else ExecutionState.RUNNING
    return WorkflowExecution(vendor="test", workflow=WORKFLOW, id=execution_id, state=state, vendor_status=status)


class _Api:
    list_items_are_complete: ClassVar[bool] = False  # an ended execution costs a GET, as on Datadog and Cloudflare

    def status_listing(self, vendor_status: str | None) -> dict[str, Any]:
        return {"page_size": 2}


class _ScriptedHook:
    """Lists ``pages`` in order; the last page is only answered once the GET of ``ended`` was sent."""

    connection_id = "scripted"

    def __init__(self, pages: list[list[WorkflowExecution]], ended: str) -> None:
        self.pages, self.ended = pages, ended
        self.calls: list[str] = []
        self.get_sent = asyncio.Event()

    async def get_async_api(self) -> _Api:
        return _Api()

    async def alist_executions_page(
        self, workflow: str, filters: dict[str, Any], page: Any, *, patient: bool = False
    ) -> Page:
        number = page or 0
        self.calls.append(f"list {number}")
        if number == len(self.pages) - 1:
            await asyncio.wait_for(self.get_sent.wait(), PATIENCE)
        return Page(executions=self.pages[number], next_page=number + 1 if number + 1 < len(self.pages) else None)

    async def aget_execution(self, workflow: str, execution_id: str, *, patient: bool = False) -> WorkflowExecution:
        self.calls.append(f"get {execution_id}")
        if execution_id == self.ended:
            self.get_sent.set()
            return _execution(execution_id, "done")
        return _execution(execution_id, "running")


@pytest.mark.timeout(60)
def test_an_execution_a_page_shows_ended_is_fetched_and_told_before_the_listing_ends() -> None:
    """Its GET goes out while the next page is asked (the last page waits for it), and its news comes first."""
    pages = [
        [_execution("a", "done"), _execution("b", "running")],
        [_execution("c", "running"), _execution("d", "running")],
    ]
    hook = _ScriptedHook(pages, ended="a")

    async def main() -> list[tuple[str, Any]]:
        async with subscribe(hook, WORKFLOW, ["a", "b", "c", "d"], poll_interval=3600.0, first_check_at=0.0) as sub:
            return [await asyncio.wait_for(sub.next(), PATIENCE) for _ in range(4)]

    observations = asyncio.run(main())
    told = [execution_id for execution_id, _ in observations]

    assert hook.calls[:2] == ["list 0", "get a"] or hook.calls[:3] == ["list 0", "list 1", "get a"], hook.calls
    assert hook.calls.count("get a") == 1 and not any(c.startswith("get ") and c != "get a" for c in hook.calls)
    assert all(isinstance(outcome, WorkflowExecution) for _, outcome in observations), observations
    assert dict(observations)["a"].state is ExecutionState.SUCCEEDED
    # "b" was told straight from the first page, "a" once its GET answered: both before the last page's items.
    assert set(told[:2]) == {"a", "b"} and set(told[2:]) == {"c", "d"}, told


def _poller(phase: float, executions: int, anchor: float = 1000.0, period: float = 10.0) -> Poller:
    poller = Poller(hook=None, workflow=WORKFLOW, anchor=anchor, period=period, phase=phase)  # type: ignore[arg-type]
    ids = tuple(f"e{n}" for n in range(executions))
    due = dict.fromkeys(ids, 1020.0)
    poller.subscriptions.add(
        Subscription(execution_ids=ids, poll_interval=period, stop_states=frozenset(), next_check=due)
    )
    return poller


def test_a_poller_of_several_executions_runs_its_rounds_early_by_its_phase() -> None:
    # Checks due at 1020 on a grid anchored at 1000: a poller with phase 0.25 checks them at 1017.5 (never later).
    assert _poller(phase=0.25, executions=3)._next_round(now=0.0) == pytest.approx(1017.5)
    assert _poller(phase=0.0, executions=3)._next_round(now=0.0) == pytest.approx(1020.0)
    # Not before now: a round already due runs at once.
    assert _poller(phase=0.25, executions=3)._next_round(now=1018.0) == pytest.approx(1018.0)


def test_a_lone_trigger_keeps_its_own_grid_whatever_the_phase() -> None:
    assert _poller(phase=0.6, executions=1)._next_round(now=0.0) == pytest.approx(1020.0)


@pytest.mark.timeout(60)
def test_pollers_made_in_one_event_loop_get_spread_phases() -> None:
    hook = _ScriptedHook([[]], ended="")

    async def main() -> list[float]:
        phases = []
        for n in range(4):
            async with subscribe(hook, f"{WORKFLOW}{n}", ["x", "y"], poll_interval=3600.0, first_check_at=1e12):
                poller = poller_for(hook, f"{WORKFLOW}{n}")
                assert poller is not None
                phases.append(poller.phase)
        return phases

    phases = asyncio.run(main())

    assert phases[0] == 0.0
    assert phases[1:] == pytest.approx([GOLDEN_RATIO, (2 * GOLDEN_RATIO) % 1, (3 * GOLDEN_RATIO) % 1])
    assert len({round(p, 6) for p in phases}) == 4
