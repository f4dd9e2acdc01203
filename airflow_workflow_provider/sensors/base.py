"""Sensors that follow an execution started elsewhere (another task, a schedule, a person)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.operators.base import ExecutionFollower

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")
# Airflow's sensors added never_fail in a later release than some we support: where the installed
# BaseSensorOperator lacks it, the sensor takes the argument and applies it itself.
AIRFLOW_HAS_NEVER_FAIL = "never_fail" in inspect.signature(BaseSensorOperator.__init__).parameters
# What a sensor raises when the wait itself fails for good: soft_fail turns these into a skip (Airflow's rule).
FINAL_SENSOR_FAILURES = (AirflowSensorTimeout, AirflowFailException, AirflowTaskTimeout)


class BaseWorkflowExecutionSensor(ExecutionFollower, BaseSensorOperator):
    """Wait until an execution ends: succeed on success, fail at once (no retry) on failure or cancel.

    Works in ``poke``, ``reschedule`` and deferrable mode, with Airflow's sensor semantics in each:
    running out of ``timeout`` raises ``AirflowSensorTimeout`` and a failed or canceled execution
    ``AirflowFailException`` (neither is retried); ``soft_fail=True`` turns both into a skip, and
    ``never_fail=True`` turns any error of the check into a skip. ``stop_states`` (e.g.
    ``["waiting"]``) also ends the wait successfully when the execution enters one of them.

    :param workflow: the workflow id (Datadog, SailPoint) or name (Cloudflare). Templated.
    :param execution_id: the execution to follow, e.g. ``start.output["execution_id"]``. Templated.
    :param stop_states: states that also end the wait, successfully.
    :param deferrable: wait in the triggerer rather than in a worker slot.
    :param cancel_on_kill: cancel the execution when the sensor is killed or times out. Off by
        default: the sensor only watches an execution that someone else started.
    :param never_fail: skip the sensor on any error of the check, as Airflow's sensors do; bridged
        here for Airflow releases whose ``BaseSensorOperator`` lacks it.
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
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        if AIRFLOW_HAS_NEVER_FAIL:
            super().__init__(never_fail=never_fail, **kwargs)
        else:
            if never_fail and kwargs.get("soft_fail"):
                # Airflow's own wording, where it has the argument.
                raise ValueError("soft_fail and never_fail are mutually exclusive, you can not provide both.")
            super().__init__(**kwargs)
            self.never_fail = never_fail
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
            # The check before deferring is the first poke: the same rules apply to its outcome.
            return self._with_sensor_semantics(lambda: self._publish_and_defer(context))
        return super().execute(context)

    def _publish_and_defer(self, context: Context) -> Any:
        self._publish(context, self.execution_id)
        return self._defer(context, self.execution_id)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        return self._with_sensor_semantics(lambda: ExecutionFollower.execute_complete(self, context, event))

    def poke(self, context: Context) -> PokeReturnValue | bool:
        if AIRFLOW_HAS_NEVER_FAIL:
            return self._poke(context)
        return self._with_never_fail(lambda: self._poke(context))

    def _poke(self, context: Context) -> PokeReturnValue | bool:
        if not self._published:
            self._publish(context, self.execution_id)
            self._published = True
        execution = self.hook.get_execution(self.workflow, self.execution_id, patient=True)
        self.log.info("%s execution %s is %s", execution.vendor, execution.id, execution.state.value)
        if execution.is_terminal or execution.state.value in self.stop_states:
            return PokeReturnValue(is_done=True, xcom_value=self._outcome(execution))
        return False

    def _with_sensor_semantics(self, step: Callable[[], T]) -> T:
        """What Airflow's sensors do with the outcome of a check, for the steps that bypass ``BaseSensorOperator``.

        A timeout or a final failure is skipped under ``soft_fail`` or ``never_fail``, any other error
        under ``never_fail``; without them the exception stands (and only the latter kind is retried).
        """
        try:
            return step()
        except AirflowSkipException:
            raise
        except FINAL_SENSOR_FAILURES as exc:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from exc
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise
        except Exception as exc:
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise

    def _with_never_fail(self, step: Callable[[], T]) -> T:
        """``never_fail`` around a poke, where the installed ``BaseSensorOperator`` does not know it."""
        try:
            return step()
        except AirflowSkipException:
            raise
        except (Exception, AirflowTaskTimeout) as exc:
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise

    def _failure(self, message: str, summary: dict[str, Any]) -> Exception:
        # The execution's outcome is final: retrying the sensor cannot change it.
        return AirflowFailException(message)

    def _timeout(self, message: str) -> Exception:
        # Airflow's sensor timeout in every mode: not retried, and skipped under soft_fail.
        return AirflowSensorTimeout(message)

    def on_kill(self) -> None:
        if self.cancel_on_kill:
            self._cancel_quietly(self.execution_id)
