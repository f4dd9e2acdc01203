"""Sensors that follow an execution started elsewhere (another task, a schedule, a person)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseSensorOperator, PokeReturnValue, conf

from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.operators.base import ExecutionFollower

if TYPE_CHECKING:
    from airflow.sdk import Context


class BaseWorkflowExecutionSensor(ExecutionFollower, BaseSensorOperator):
    """Wait until an execution ends: succeed on success, fail at once (no retry) on failure or cancel.

    Works in ``poke``, ``reschedule`` and deferrable mode. ``stop_states`` (e.g. ``["waiting"]``)
    also ends the wait successfully when the execution enters one of them.

    :param cancel_on_kill: cancel the execution when the sensor is killed or times out. Off by
        default: the sensor only watches an execution that someone else started.
    """

    template_fields: Sequence[str] = ("workflow", "execution_id")

    def __init__(
        self,
        *,
        workflow: str,
        execution_id: str,
        stop_states: Sequence[str] = (),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow = workflow
        self.execution_id = execution_id
        self.stop_states = tuple(ExecutionState(s).value for s in stop_states)
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self._published = False

    @property
    def poll_interval(self) -> float:  # type: ignore[override]
        return float(self.poke_interval)

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self._publish(context, self.execution_id)
            return self._defer(context, self.execution_id)
        return super().execute(context)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        if not self._published:
            self._publish(context, self.execution_id)
            self._published = True
        execution = self.hook.get_execution(self.workflow, self.execution_id)
        self.log.info("%s execution %s is %s", execution.vendor, execution.id, execution.state.value)
        if execution.is_terminal or execution.state.value in self.stop_states:
            return PokeReturnValue(is_done=True, xcom_value=self._outcome(execution))
        return False

    def _failure(self, message: str, summary: dict[str, Any]) -> Exception:
        # The execution's outcome is final: retrying the sensor cannot change it.
        return AirflowFailException(message)

    def on_kill(self) -> None:
        if self.cancel_on_kill:
            self._cancel_quietly(self.execution_id)
