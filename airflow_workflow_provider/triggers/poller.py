"""Coalesced polling: the waits of one triggerer that follow executions of one workflow through one
connection share one poller, which learns many statuses per request from the vendor's list endpoint.

Each trigger subscribes with its execution ids, its poll interval and its first check. The poller
runs rounds; in a round it checks every execution whose next check falls before the round after:

1. it groups them by the status each was last seen in, and lists the groups side by side with the
   vendor's status filter (``VendorApi.status_listing``: Cloudflare ``status=``, 100 a page; SailPoint
   ``status eq``, 250 a page; Datadog unfiltered, 100 a page; executions not yet seen are the newest,
   found at the top of an unfiltered list), page after page until every one of the group was seen;
2. an execution the lists did not show, or showed in a state that ends a wait (terminal, or one a
   trigger stops at), is asked with its own GET, which brings the whole record (output, error); the
   GET goes out as soon as the page that showed the end arrives;
3. each trigger gets its own executions' observations, and nothing else.

Listing pays only when it costs fewer requests than the GETs it replaces: the poller remembers how
many pages each listing took and asks single GETs when that is cheaper, so a lone trigger polls
exactly as it would alone (one GET per interval, on its own grid). A listing that fails is replaced
by GETs for that round; one that is refused (no permission to list, a filter the tenant lacks) turns
listing off for the poller.

Rounds keep to the grid of the smallest interval among the subscribers; an execution is checked in
the last round before its own next check falls due, so no trigger waits longer than its interval
plus the round's own duration. To keep that short, each execution's news goes out as soon as a page
(or its GET) tells it, and the pollers of one event loop spread their rounds over the period.
Checks go through the credential's rate budget and are patient: throttling slows rounds down and
fails no wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_workflow_provider.core.events import next_slot

if TYPE_CHECKING:
    from airflow_workflow_provider.core.hook import BaseWorkflowsHook
    from airflow_workflow_provider.core.models import WorkflowExecution

log = logging.getLogger(__name__)

Observation = tuple[str, "WorkflowExecution | BaseException"]
GRID_TOLERANCE = 1e-3
GOLDEN_RATIO = (math.sqrt(5) - 1) / 2


@dataclass(eq=False)
class Subscription:
    """One trigger's interest: its executions, its interval, and the queue its observations arrive on."""

    execution_ids: tuple[str, ...]
    poll_interval: float
    stop_states: frozenset[str]
    next_check: dict[str, float]
    observations: asyncio.Queue[Observation] = field(default_factory=asyncio.Queue)

    def done_with(self, execution_id: str) -> None:
        """This trigger needs no more news of that execution (it ended)."""
        self.next_check.pop(execution_id, None)

    async def next(self) -> Observation:
        return await self.observations.get()


class Poller:
    """The rounds for one (connection, workflow) in one event loop."""

    def __init__(
        self, hook: BaseWorkflowsHook, workflow: str, anchor: float, period: float, phase: float = 0.0
    ) -> None:
        self.hook = hook
        self.workflow = workflow
        self.anchor, self.period = anchor, period
        # The fraction of a period by which this poller's rounds come early, when it follows several executions
        # (see _next_round).
        self.phase = phase
        self.subscriptions: set[Subscription] = set()
        self.last_status: dict[str, str | None] = {}
        # listing filters (as a key) -> pages the last scan with them took; what decides whether listing pays
        self.pages_needed: dict[Hashable, int] = {}
        self.listing_enabled = True
        self.task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self.requests = {"list": 0, "get": 0}

    # -- subscribers ---------------------------------------------------------------------------------

    def add(self, subscription: Subscription) -> None:
        self.subscriptions.add(subscription)
        if subscription.poll_interval < self.period:
            self.period = subscription.poll_interval
            self.anchor = min(subscription.next_check.values(), default=time.time())
        self.changed.set()

    def remove(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
        followed = {i for s in self.subscriptions for i in s.execution_ids}
        for execution_id in subscription.execution_ids:
            if execution_id not in followed:  # a long-lived poller must not remember every execution it saw
                self.last_status.pop(execution_id, None)
        self.changed.set()

    # -- the rounds ----------------------------------------------------------------------------------

    def _grid_anchor(self) -> float:
        """Where this poller's grid of rounds is anchored.

        The pollers of one event loop would otherwise all run their rounds in the same instant (their
        triggers arrive together and share an interval), so every round's requests would queue behind the
        others' in the credential's rate budget and its CPU work behind theirs: the delay of the last round
        grows with the number of pollers. Each poller that follows several executions therefore runs its rounds
        ``phase`` of a period early; its executions are checked that much before their due checks, never
        later, and still once an interval. A poller following a single execution (a lone trigger) keeps to
        that trigger's own grid.
        """
        if self.phase and sum(len(s.next_check) for s in self.subscriptions) > 1:
            return self.anchor - self.phase * self.period
        return self.anchor

    def _next_round(self, now: float) -> float | None:
        """The round in which the earliest pending check is made: the last grid point at or before it."""
        earliest = min((t for s in self.subscriptions for t in s.next_check.values()), default=None)
        if earliest is None:
            return None
        anchor = self._grid_anchor()
        # A millisecond of tolerance: epoch seconds (~1.8e9) carry only ~0.2 microseconds of precision, so
        # a check exactly on the grid can compute as a hair before its grid point.
        grid_point = anchor + math.floor((earliest - anchor + GRID_TOLERANCE) / self.period) * self.period
        return max(now, grid_point)

    async def run(self) -> None:
        while self.subscriptions:
            self.changed.clear()
            now = time.time()
            at = self._next_round(now)
            if at is None:
                await self.changed.wait()
                continue
            if at > now:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), timeout=at - now)
                continue  # recompute: someone joined or left, or the round is due now
            try:
                await self.round(time.time())
            except Exception as exc:
                # Not a vendor error (those reach each trigger as its own news): a bug. Every trigger hears
                # of it rather than waiting in silence until its timeout.
                log.exception("the %s poller failed", self.workflow)
                for subscription in self.subscriptions:
                    for execution_id in subscription.next_check:
                        subscription.observations.put_nowait((execution_id, exc))
                return

    async def round(self, now: float) -> None:
        horizon = now + self.period
        due: dict[str, list[Subscription]] = {}
        for subscription in self.subscriptions:
            for execution_id, at in subscription.next_check.items():
                if at < horizon:
                    due.setdefault(execution_id, []).append(subscription)
        if not due:
            return
        started, checked = time.time(), len(due)
        complete = (await self.hook.get_async_api()).list_items_are_complete
        # Each execution's news goes out the moment it is known, not when the round ends: an execution a
        # list page shows ended gets its GET at once, while later pages and other groups are still listed,
        # so the pages of a long listing delay neither its event nor the budget's turn for its GET.
        fetching: dict[str, asyncio.Task[None]] = {}

        async def fetch(execution_id: str) -> None:
            self._deliver(execution_id, await self._get(execution_id), due[execution_id])

        def listed(execution: WorkflowExecution) -> None:
            if execution.id not in due or execution.id in fetching:
                return
            if not complete and self._ends_a_wait(execution, due[execution.id]):
                fetching[execution.id] = asyncio.create_task(fetch(execution.id))
            else:
                self._deliver(execution.id, execution, due.pop(execution.id))

        try:
            if self.listing_enabled and len(due) > 1:
                await self._listings(set(due), listed)
            listed_at = time.time()
            for execution_id in set(due) - set(fetching):  # what the lists did not show
                fetching[execution_id] = asyncio.create_task(fetch(execution_id))
            await asyncio.gather(*fetching.values())
        except BaseException:
            for task in fetching.values():
                task.cancel()
            raise
        log.debug(
            "%s round at %.3f (%.2f s past its grid point): %d checked, listing %.2f s, %d GETs, %.2f s in all",
            self.workflow,
            now,
            (now - self._grid_anchor()) % self.period,
            checked,
            listed_at - started,
            len(fetching),
            time.time() - started,
        )

    def _deliver(
        self, execution_id: str, outcome: WorkflowExecution | BaseException, subscribers: list[Subscription]
    ) -> None:
        if not isinstance(outcome, BaseException):
            self.last_status[execution_id] = outcome.vendor_status
        answered = time.time()  # slots that passed while the answer came are skipped, not made up at once
        for subscription in subscribers:
            if execution_id in subscription.next_check:
                natural = subscription.next_check[execution_id]
                subscription.next_check[execution_id] = next_slot(natural, subscription.poll_interval, answered)
                subscription.observations.put_nowait((execution_id, outcome))

    @staticmethod
    def _ends_a_wait(execution: WorkflowExecution, subscribers: Iterable[Subscription]) -> bool:
        return execution.is_terminal or any(execution.state.value in s.stop_states for s in subscribers)

    async def _get(self, execution_id: str) -> WorkflowExecution | BaseException:
        from airflow_workflow_provider.core.errors import WorkflowProviderError

        self.requests["get"] += 1
        try:
            return await self.hook.aget_execution(self.workflow, execution_id, patient=True)
        except WorkflowProviderError as exc:
            return exc

    async def _listings(
        self, wanted: set[str], listed: Callable[[WorkflowExecution], None]
    ) -> dict[str, WorkflowExecution]:
        """What the vendor's lists tell about ``wanted``, group by group, where listing is cheaper than GETs.

        ``listed`` hears of each execution as soon as its page arrives. The groups are listed side by side:
        their pages are independent, and one group's pages must not hold back another's news.
        """
        api = await self.hook.get_async_api()
        groups: dict[Hashable, tuple[dict[str, Any], set[str]]] = {}
        for execution_id in wanted:
            filters = api.status_listing(self.last_status.get(execution_id))
            if filters is not None:
                groups.setdefault(tuple(sorted(filters.items())), (filters, set()))[1].add(execution_id)
        scans = [
            # One page finds up to a page of them; a listing that took more pages than there are members
            # last time costs more than their GETs.
            self._scan(key, filters, members, wanted, listed, max_pages=len(members) - 1)
            for key, (filters, members) in groups.items()
            if len(members) >= 2 and self.pages_needed.get(key, 1) < len(members)
        ]
        seen: dict[str, WorkflowExecution] = {}
        for found in await asyncio.gather(*scans):
            seen.update(found)
        # Those the status lists no longer show have moved on, most often to an end: the newest executions
        # (an unfiltered list, any status) tell where, a page for up to a page of them.
        moved = wanted - set(seen)
        newest = api.status_listing(None)
        if newest is not None and len(moved) > 1:
            newest_key = tuple(sorted(newest.items()))
            if newest_key not in groups or not groups[newest_key][1] & moved:
                per_page = max(int(v) for k, v in newest.items() if k in ("per_page", "limit", "page_size"))
                pages = math.ceil(len(moved) / per_page) + 1
                seen.update(
                    await self._scan(newest_key, newest, moved, wanted, listed, max_pages=min(pages, len(moved) - 1))
                )
        return seen

    async def _scan(
        self,
        key: Hashable,
        filters: dict[str, Any],
        members: set[str],
        wanted: set[str],
        listed: Callable[[WorkflowExecution], None],
        max_pages: int,
    ) -> dict[str, WorkflowExecution]:
        from airflow_workflow_provider.core.errors import (
            BadRequestError,
            NotFoundError,
            PermissionDeniedError,
            WorkflowProviderError,
        )

        seen: dict[str, WorkflowExecution] = {}
        missing = set(members)
        page: Any = None
        pages = 0
        try:
            # Past max_pages the rest are cheaper asked one by one.
            while missing and pages < max_pages:
                result = await self.hook.alist_executions_page(self.workflow, filters, page, patient=True)
                pages += 1
                self.requests["list"] += 1
                for execution in result.executions:
                    # An item without a status tells nothing (Datadog documents list items as ids only;
                    # its recorded answers carry the status, which is what is used when present).
                    if execution.id in wanted and execution.vendor_status is not None:
                        seen[execution.id] = execution
                        missing.discard(execution.id)
                        listed(execution)
                if result.next_page is None:
                    break
                page = result.next_page
        except (BadRequestError, NotFoundError, PermissionDeniedError) as exc:
            self.listing_enabled = False
            log.warning(
                "listing %s executions refused (%s); following each execution with its own GET", self.workflow, exc
            )
            return {}
        except WorkflowProviderError as exc:
            log.warning("listing %s executions failed (%s); asking each execution this round", self.workflow, exc)
            return seen
        self.pages_needed[key] = pages
        return seen


# -- one registry of pollers per event loop ------------------------------------------------------------

_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, str], Poller]] = (
    weakref.WeakKeyDictionary()
)
_POLLERS_MADE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, itertools.count[int]] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def subscribe(
    hook: BaseWorkflowsHook,
    workflow: str,
    execution_ids: Iterable[str],
    *,
    poll_interval: float,
    first_check_at: float,
    stop_states: Iterable[str] = (),
) -> AsyncIterator[Subscription]:
    """Follow ``execution_ids`` through the poller of this connection and workflow (created on first use)."""
    ids = tuple(dict.fromkeys(execution_ids))
    subscription = Subscription(
        execution_ids=ids,
        poll_interval=poll_interval,
        stop_states=frozenset(stop_states),
        next_check=dict.fromkeys(ids, first_check_at),
    )
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    key = (type(hook).__qualname__, hook.connection_id, workflow)
    poller = pollers.get(key)
    if poller is None or poller.task is None or poller.task.done():
        # Successive pollers' phases step by the golden ratio: however many there are, their rounds spread
        # evenly over the period, and the first one keeps its triggers' grid.
        phase = (next(_POLLERS_MADE.setdefault(asyncio.get_running_loop(), itertools.count())) * GOLDEN_RATIO) % 1.0
        poller = pollers[key] = Poller(hook, workflow, anchor=first_check_at, period=poll_interval, phase=phase)
    poller.add(subscription)
    if poller.task is None or poller.task.done():
        poller.task = asyncio.create_task(poller.run(), name=f"workflow poller {key}")
    try:
        yield subscription
    finally:
        poller.remove(subscription)
        if not poller.subscriptions:
            if pollers.get(key) is poller:
                del pollers[key]
            if poller.task is not None and not poller.task.done():
                poller.task.cancel()


def poller_for(hook: BaseWorkflowsHook, workflow: str) -> Poller | None:
    """The running poller of this connection and workflow in this event loop (for tests and benchmarks)."""
    pollers = _POLLERS.get(asyncio.get_running_loop(), {})
    return pollers.get((type(hook).__qualname__, hook.connection_id, workflow))
