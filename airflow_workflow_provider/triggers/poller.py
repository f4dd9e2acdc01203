"""Coalesced polling: the waits of one triggerer that follow executions of one workflow through one
connection share one poller, which learns many statuses per request from the vendor's list endpoint.

Each trigger subscribes with its execution ids, its poll interval and its first check. The poller
runs rounds; in a round it checks every execution whose next check falls before the round after:

1. it groups them by the status each was last seen in, and lists each group with the vendor's
   status filter (``VendorApi.status_listing``: Cloudflare ``status=``, 100 a page; SailPoint
   ``status eq``, 250 a page; Datadog unfiltered, 100 a page; executions not yet seen are the newest,
   found at the top of an unfiltered list), page after page until every one of the group was seen;
2. an execution the lists did not show, or showed in a state that ends a wait (terminal, or one a
   trigger stops at), is asked with its own GET, which brings the whole record (output, error);
3. each trigger gets its own executions' observations, and nothing else.

Listing pays only when it costs fewer requests than the GETs it replaces: the poller remembers how
many pages each listing took and asks single GETs when that is cheaper, so a lone trigger polls
exactly as it would alone (one GET per interval, on its own grid). A listing that fails is replaced
by GETs for that round; one that is refused (no permission to list, a filter the tenant lacks) turns
listing off for the poller.

Rounds keep to the grid of the smallest interval among the subscribers; an execution is checked in
the last round before its own next check falls due, so no trigger waits longer than its interval.
Checks go through the credential's rate budget and are patient: throttling slows rounds down and
fails no wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_workflow_provider.core.events import next_slot

if TYPE_CHECKING:
    from airflow_workflow_provider.core.hook import BaseWorkflowsHook
    from airflow_workflow_provider.core.models import WorkflowExecution

log = logging.getLogger(__name__)

Observation = tuple[str, "WorkflowExecution | BaseException"]
GRID_TOLERANCE = 1e-3


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

    def __init__(self, hook: BaseWorkflowsHook, workflow: str, anchor: float, period: float) -> None:
        self.hook = hook
        self.workflow = workflow
        self.anchor, self.period = anchor, period
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

    def _next_round(self, now: float) -> float | None:
        """The round in which the earliest pending check is made: the last grid point at or before it."""
        earliest = min((t for s in self.subscriptions for t in s.next_check.values()), default=None)
        if earliest is None:
            return None
        # A millisecond of tolerance: epoch seconds (~1.8e9) carry only ~0.2 microseconds of precision, so
        # a check exactly on the grid can compute as a hair before its grid point.
        grid_point = self.anchor + math.floor((earliest - self.anchor + GRID_TOLERANCE) / self.period) * self.period
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
        seen = await self._listings(set(due)) if self.listing_enabled and len(due) > 1 else {}
        complete = (await self.hook.get_async_api()).list_items_are_complete
        ask = [i for i in due if i not in seen or (not complete and self._ends_a_wait(seen[i], due[i]))]
        asked = await asyncio.gather(*(self._get(i) for i in ask))
        results: dict[str, WorkflowExecution | BaseException] = {i: seen[i] for i in due if i in seen}
        results.update(zip(ask, asked, strict=True))
        answered = time.time()  # slots that passed while the answers came are skipped, not made up at once
        for execution_id, subscribers in due.items():
            outcome = results[execution_id]
            if not isinstance(outcome, BaseException):
                self.last_status[execution_id] = outcome.vendor_status
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

    async def _listings(self, wanted: set[str]) -> dict[str, WorkflowExecution]:
        """What the vendor's lists tell about ``wanted``, group by group, where listing is cheaper than GETs."""
        api = await self.hook.get_async_api()
        groups: dict[Hashable, tuple[dict[str, Any], set[str]]] = {}
        for execution_id in wanted:
            filters = api.status_listing(self.last_status.get(execution_id))
            if filters is not None:
                groups.setdefault(tuple(sorted(filters.items())), (filters, set()))[1].add(execution_id)
        seen: dict[str, WorkflowExecution] = {}
        for key, (filters, members) in groups.items():
            members -= set(seen)
            # One page finds up to a page of them; a listing that took more pages than there are members
            # last time costs more than their GETs.
            if len(members) < 2 or self.pages_needed.get(key, 1) >= len(members):
                continue
            seen.update(await self._scan(key, filters, members, wanted, max_pages=len(members) - 1))
        # Those the status lists no longer show have moved on, most often to an end: the newest executions
        # (an unfiltered list, any status) tell where, a page for up to a page of them.
        moved = wanted - set(seen)
        newest = api.status_listing(None)
        if newest is not None and len(moved) > 1:
            newest_key = tuple(sorted(newest.items()))
            if newest_key not in groups or not groups[newest_key][1] & moved:
                per_page = max(int(v) for k, v in newest.items() if k in ("per_page", "limit", "page_size"))
                pages = math.ceil(len(moved) / per_page) + 1
                seen.update(await self._scan(newest_key, newest, moved, wanted, max_pages=min(pages, len(moved) - 1)))
        return seen

    async def _scan(
        self, key: Hashable, filters: dict[str, Any], members: set[str], wanted: set[str], max_pages: int
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
        poller = pollers[key] = Poller(hook, workflow, anchor=first_check_at, period=poll_interval)
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
