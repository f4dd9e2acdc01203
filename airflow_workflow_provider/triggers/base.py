"""One trigger that follows an execution with the hook's async method until it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_workflow_provider.core.events import EventStatus, execution_event, next_slot
from airflow_workflow_provider.core.states import (
    UNKNOWN_STATE_LIMIT,
    ExecutionState,
    UnknownStateClock,
    unknown_state_message,
)


class WorkflowExecutionTrigger(BaseTrigger):
    """Polls one execution and fires a single event when it is terminal (or reaches ``stop_states``).

    ``deadline`` is wall-clock time (epoch seconds): the trigger may move between triggerer
    processes, so a monotonic clock would not survive the move. Every trigger in a triggerer
    shares that event loop's HTTP connection pool (see ``core.http.shared_async_session``).
    """

    hook_class_path: ClassVar[str]
    #: The vendor-named argument for the connection id, as on the vendor's hook (``datadog_conn_id`` ...).
    conn_name_attr: ClassVar[str]

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
        super().__init__()
        self.connection_id = connection_id
        self.workflow = workflow
        self.execution_id = execution_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.stop_states = tuple(stop_states)
        self.cancel_on_kill = cancel_on_kill
        self.first_check_at = first_check_at
        self.unknown_state_limit = unknown_state_limit

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                self.conn_name_attr: self.connection_id,
                "workflow": self.workflow,
                "execution_id": self.execution_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "stop_states": list(self.stop_states),
                "cancel_on_kill": self.cancel_on_kill,
                "first_check_at": self.first_check_at,
                "unknown_state_limit": self.unknown_state_limit,
            },
        )

    async def _hook(self) -> Any:
        from importlib import import_module

        module, _, name = self.hook_class_path.rpartition(".")
        # The first import of a hook pulls in requests, pydantic and friends: a second or two that
        # must not stall the triggerer's event loop, and every other trigger on it, so it runs in a thread.
        loaded = await asyncio.to_thread(import_module, module)
        return getattr(loaded, name)(self.connection_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_workflow_provider.core.http import async_session_lease

        async with async_session_lease():
            async for event in self._follow():
                yield event

    async def _follow(self) -> AsyncIterator[TriggerEvent]:
        from airflow_workflow_provider.core.errors import WorkflowProviderError

        hook = await self._hook()
        stop_at = {ExecutionState(s) for s in self.stop_states}
        ids: dict[str, Any] = {"workflow": self.workflow, "execution_id": self.execution_id}
        # Checks keep to a fixed grid (wall clock, as the trigger may move between triggerers): a slow
        # answer or a stalled loop delays one check, not every later one. The operator checked just
        # before deferring, so the first check here waits for its slot.
        next_check = self.first_check_at if self.first_check_at is not None else time.time()
        unreadable = UnknownStateClock(self.unknown_state_limit)
        try:
            while True:
                wait = next_check - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                execution = await hook.aget_execution(self.workflow, self.execution_id, patient=True)
                if execution.is_terminal:
                    status: EventStatus = "success" if execution.succeeded else "failure"
                    message = f"execution {self.execution_id} ended {execution.state.value}"
                    yield TriggerEvent(execution_event(status, message=message, execution=execution.summary(), **ids))
                    return
                if execution.state in stop_at:
                    message = f"execution {self.execution_id} is {execution.state.value}"
                    yield TriggerEvent(
                        execution_event("reached", message=message, execution=execution.summary(), **ids)
                    )
                    return
                now = time.time()
                if unreadable.expired(execution.state, now):
                    message = unknown_state_message(
                        execution.vendor, self.execution_id, execution.vendor_status, unreadable.limit, execution.url
                    )
                    yield TriggerEvent(execution_event("error", message=message, execution=execution.summary(), **ids))
                    return
                if self.deadline is not None and now >= self.deadline:
                    message = f"execution {self.execution_id} still {execution.state.value} when the timeout ran out"
                    yield TriggerEvent(
                        execution_event("timeout", message=message, execution=execution.summary(), **ids)
                    )
                    return
                self.log.debug("execution %s is %s", self.execution_id, execution.state.value)
                next_check = next_slot(next_check, self.poll_interval, now)
                if self.deadline is not None:
                    next_check = min(next_check, self.deadline)
        except WorkflowProviderError as exc:
            yield TriggerEvent(execution_event("error", message=str(exc), **ids))

    async def on_kill(self) -> None:
        """A user killed the deferred task (Airflow 3.3+): cancel the remote execution too.

        Not done in ``cleanup()``, which also runs when the triggerer restarts or hands the
        trigger to another triggerer: the execution must go on then.
        """
        if not self.cancel_on_kill:
            return
        from airflow_workflow_provider.core.errors import WorkflowApiError
        from airflow_workflow_provider.core.http import async_session_lease

        try:
            async with async_session_lease():
                await (await self._hook()).acancel_execution(self.workflow, self.execution_id)
        except WorkflowApiError as exc:
            self.log.warning("could not cancel execution %s: %s", self.execution_id, exc)
