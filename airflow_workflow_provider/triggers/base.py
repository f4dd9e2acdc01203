"""One trigger that follows an execution with the hook's async method until it ends."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_workflow_provider.core.events import EventStatus, batch_event, execution_event
from airflow_workflow_provider.core.states import UNKNOWN_STATE_LIMIT, UnknownStateClock, unknown_state_message


class _VendorTrigger(BaseTrigger):
    """What both triggers share: the vendor's hook, built off the loop, and the shared HTTP pool around the wait."""

    hook_class_path: ClassVar[str]
    #: The vendor-named argument for the connection id, as on the vendor's hook (``datadog_conn_id`` ...).
    conn_name_attr: ClassVar[str]

    def __init__(
        self,
        *,
        connection_id: str,
        workflow: str,
        poll_interval: float,
        deadline: float | None,
        cancel_on_kill: bool,
        first_check_at: float | None,
    ) -> None:
        super().__init__()
        self.connection_id = connection_id
        self.workflow = workflow
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.cancel_on_kill = cancel_on_kill
        self.first_check_at = first_check_at
        self._built_at = time.time()

    def _serialized_arguments(self, **own: Any) -> tuple[str, dict[str, Any]]:
        """``serialize()``: the arguments both triggers take, plus the subclass's ``own``."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                self.conn_name_attr: self.connection_id,
                "workflow": self.workflow,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "first_check_at": self.first_check_at,
                **own,
            },
        )

    @property
    def _first_check(self) -> float:
        """When the first check is due: as handed over, else when the triggerer built this trigger.

        Not when the wait begins: loading the hook and the connection may take a while when a triggerer
        starts a thousand triggers at once, and that must delay the first check, not every later one.
        """
        return self.first_check_at if self.first_check_at is not None else self._built_at

    async def _hook(self) -> Any:
        return await _load_hook(self.hook_class_path, self.connection_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_workflow_provider.core.http import async_session_lease

        async with async_session_lease():
            async for event in self._follow():
                yield event

    def _follow(self) -> AsyncIterator[TriggerEvent]:
        raise NotImplementedError

    async def on_kill(self) -> None:
        """A user killed the deferred task (Airflow 3.3+): cancel what is still running remotely.

        Not done in ``cleanup()``, which also runs when the triggerer restarts: the execution must go on
        then. Nor when Airflow still holds the task deferred: Airflow 3.3 also calls ``on_kill()`` on the
        triggerer that loses a trigger handed over to another one (apache/airflow#73454), and that
        triggerer must let the new owner follow the execution, not cancel it under it.
        """
        if not self.cancel_on_kill:
            return
        if await self._task_still_deferred():
            self.log.info(
                "the task is still deferred (its trigger moved to another triggerer): leaving %s running",
                self.workflow,
            )
            return
        from airflow_workflow_provider.core.errors import WorkflowApiError
        from airflow_workflow_provider.core.http import async_session_lease

        async with async_session_lease():
            hook = await self._hook()
            for execution_id in self._running_execution_ids():
                try:
                    await hook.acancel_execution(self.workflow, execution_id)
                except WorkflowApiError as exc:
                    self.log.warning("could not cancel execution %s: %s", execution_id, exc)

    def _running_execution_ids(self) -> list[str]:
        raise NotImplementedError

    async def _task_still_deferred(self) -> bool:
        """Whether Airflow's record of this trigger's task instance still says "deferred".

        A user's action (mark success or failed, clear) changes that state before the trigger is
        cancelled; a hand-over to another triggerer leaves it. When it cannot be asked, the cancel
        is taken as the user's: that is what Airflow said it is.
        """
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return False
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
            from asgiref.sync import sync_to_async

            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=ti.dag_id, map_index=ti.map_index, task_ids=[ti.task_id], run_ids=[ti.run_id]
            )
        except Exception as exc:  # an older Airflow, or no answer: fall back to what Airflow said
            self.log.warning("could not ask Airflow for the task's state (%s): taking the kill as a user's", exc)
            return False
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        return bool(states.get(ti.run_id, {}).get(key) == "deferred")


class WorkflowExecutionTrigger(_VendorTrigger):
    """Polls one execution and fires a single event when it is terminal (or reaches ``stop_states``).

    ``deadline`` is wall-clock time (epoch seconds): the trigger may move between triggerer
    processes, so a monotonic clock would not survive the move. Every trigger in a triggerer
    shares that event loop's HTTP connection pool (see ``core.http.shared_async_session``).
    """

    def __init__(
        self,
        *,
        connection_id: str,
        workflow: str,
        execution_id: str,
        poll_interval: float = 10.0,
        deadline: float | None = None,
        stop_states: list[str] | tuple[str, ...] = (),
        cancel_on_kill: bool = True,
        first_check_at: float | None = None,
        unknown_state_limit: float = UNKNOWN_STATE_LIMIT,
    ) -> None:
        super().__init__(
            connection_id=connection_id,
            workflow=workflow,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            first_check_at=first_check_at,
        )
        self.execution_id = execution_id
        self.unknown_state_limit = unknown_state_limit
        self.stop_states = tuple(stop_states)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialized_arguments(
            execution_id=self.execution_id,
            stop_states=list(self.stop_states),
            unknown_state_limit=self.unknown_state_limit,
        )

    async def _follow(self) -> AsyncIterator[TriggerEvent]:
        from airflow_workflow_provider.core.errors import WorkflowProviderError
        from airflow_workflow_provider.triggers.poller import subscribe

        hook = await self._hook()
        ids: dict[str, Any] = {"workflow": self.workflow, "execution_id": self.execution_id}
        # Checks keep to a fixed grid (wall clock, as the trigger may move between triggerers); the operator
        # checked just before deferring, so the first check here waits for its slot. The poller shares the
        # checks of every trigger following this workflow through this connection (one GET when alone).
        first_check = self._first_check
        unreadable = UnknownStateClock(self.unknown_state_limit)
        try:
            async with subscribe(
                hook,
                self.workflow,
                [self.execution_id],
                poll_interval=self.poll_interval,
                first_check_at=first_check,
                stop_states=self.stop_states,
            ) as subscription:
                while True:
                    execution = await self._next_observation(subscription, hook)
                    event = self._event_for(execution, ids, unreadable)
                    if event is not None:
                        yield TriggerEvent(event)
                        return
                    self.log.debug("execution %s is %s", self.execution_id, execution.state.value)
        except WorkflowProviderError as exc:
            yield TriggerEvent(execution_event("error", message=str(exc), **ids))

    async def _next_observation(self, subscription: Any, hook: Any) -> Any:
        """The poller's next news of the execution, or a check of our own when the deadline comes first."""
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
        try:
            _, outcome = await asyncio.wait_for(subscription.next(), timeout)
        except asyncio.TimeoutError:
            return await hook.aget_execution(self.workflow, self.execution_id, patient=True)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _event_for(self, execution: Any, ids: dict[str, Any], unreadable: UnknownStateClock) -> dict[str, Any] | None:
        """The event this observation calls for, if any: ended, reached a stop state, unreadable too long, or
        out of time."""
        if execution.is_terminal:
            status: EventStatus = "success" if execution.succeeded else "failure"
            message = f"execution {self.execution_id} ended {execution.state.value}"
            return execution_event(status, message=message, execution=execution.summary(), **ids)
        if execution.state.value in self.stop_states:
            message = f"execution {self.execution_id} is {execution.state.value}"
            return execution_event("reached", message=message, execution=execution.summary(), **ids)
        if unreadable.expired(execution.state, time.time()):
            message = unknown_state_message(
                execution.vendor, self.execution_id, execution.vendor_status, unreadable.limit, execution.url
            )
            return execution_event("error", message=message, execution=execution.summary(), **ids)
        if self.deadline is not None and time.time() >= self.deadline:
            message = f"execution {self.execution_id} still {execution.state.value} when the timeout ran out"
            return execution_event("timeout", message=message, execution=execution.summary(), **ids)
        return None

    def _running_execution_ids(self) -> list[str]:
        return [self.execution_id]


class WorkflowExecutionsTrigger(_VendorTrigger):
    """Follows several executions of one workflow (a batch) and fires one event once every one has ended.

    All of them go through the coalesced poller, so a batch of 100 costs a listing page or two per
    interval rather than 100 GETs. The event (``core.events.batch_event``) carries every execution's
    summary; ``status`` is "success" when all succeeded, "failure" when any failed or was canceled,
    "timeout" when the deadline came first (with the ones still running), "error" when one could not
    be asked. ``on_kill`` cancels those still running (Airflow 3.3+).
    """

    def __init__(
        self,
        *,
        connection_id: str,
        workflow: str,
        execution_ids: list[str] | tuple[str, ...],
        poll_interval: float = 10.0,
        deadline: float | None = None,
        cancel_on_kill: bool = True,
        first_check_at: float | None = None,
    ) -> None:
        super().__init__(
            connection_id=connection_id,
            workflow=workflow,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            first_check_at=first_check_at,
        )
        self.execution_ids = list(execution_ids)
        self._ended: set[str] = set()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialized_arguments(execution_ids=list(self.execution_ids))

    async def _follow(self) -> AsyncIterator[TriggerEvent]:
        from airflow_workflow_provider.core.errors import WorkflowProviderError
        from airflow_workflow_provider.triggers.poller import subscribe

        hook = await self._hook()
        latest: dict[str, Any] = {}
        first_check = self._first_check
        try:
            async with subscribe(
                hook, self.workflow, self.execution_ids, poll_interval=self.poll_interval, first_check_at=first_check
            ) as subscription:
                while len(self._ended) < len(self.execution_ids):
                    timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
                    try:
                        execution_id, outcome = await asyncio.wait_for(subscription.next(), timeout)
                    except asyncio.TimeoutError:
                        still = [i for i in self.execution_ids if i not in self._ended]
                        message = f"{len(still)} of {len(self.execution_ids)} executions still running at the timeout"
                        yield TriggerEvent(self._event("timeout", message, latest))
                        return
                    if isinstance(outcome, BaseException):
                        raise outcome
                    latest[execution_id] = outcome.summary()
                    if outcome.is_terminal:
                        self._ended.add(execution_id)
                        subscription.done_with(execution_id)
        except WorkflowProviderError as exc:
            yield TriggerEvent(self._event("error", str(exc), latest))
            return
        failed = [i for i in self.execution_ids if latest[i]["state"] != "succeeded"]
        message = (
            f"{len(failed)} of {len(self.execution_ids)} executions failed or were canceled: {', '.join(failed)}"
            if failed
            else f"all {len(self.execution_ids)} executions succeeded"
        )
        yield TriggerEvent(self._event("failure" if failed else "success", message, latest))

    def _event(self, status: Any, message: str, latest: dict[str, Any]) -> dict[str, Any]:
        return batch_event(
            status,
            workflow=self.workflow,
            execution_ids=self.execution_ids,
            message=message,
            executions=[latest[i] for i in self.execution_ids if i in latest],
        )

    def _running_execution_ids(self) -> list[str]:
        return [i for i in self.execution_ids if i not in self._ended]


async def _load_hook(hook_class_path: str, connection_id: str) -> Any:
    from importlib import import_module

    module, _, name = hook_class_path.rpartition(".")
    # The first import of a hook pulls in requests, pydantic and friends: a second or two that
    # must not stall the triggerer's event loop, and every other trigger on it, so it runs in a thread.
    # Once imported, no thread: a thousand triggers starting together would queue for the few threads. A
    # module still being imported by another trigger's thread is in sys.modules without the class yet.
    hook_class = getattr(sys.modules.get(module), name, None)
    if hook_class is None:
        hook_class = getattr(await asyncio.to_thread(import_module, module), name)
    return hook_class(connection_id)
