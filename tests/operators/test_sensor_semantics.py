"""Airflow's sensor semantics in every mode (poke, reschedule, deferrable), in real Airflow (``dag.test()``).

A timeout is ``AirflowSensorTimeout`` (never retried), a failed execution ``AirflowFailException`` (never
retried); ``soft_fail`` skips both; ``never_fail`` skips on any error of the check. The vendor does not matter
here (the sensors share one base), so one vendor stands for all three.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import pytest

from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.operators.test_run_and_sensors import sensor_dag

VENDOR, WORKFLOW = "cloudflare", "nightly-export"
MODES = {
    "poke": {"mode": "poke"},
    "reschedule": {"mode": "reschedule"},
    "deferrable": {"deferrable": True},
}


@pytest.fixture
def start(emulator: WorkflowEmulator, set_connection: Callable[..., str]) -> Callable[[WorkflowScript], str]:
    set_connection(VENDOR)

    def start_execution(script: WorkflowScript) -> str:
        from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook

        emulator.script(VENDOR, WORKFLOW, script)
        return CloudflareWorkflowsHook().start_execution(WORKFLOW)

    return start_execution


# dag.test() before Airflow 3.1.8 (3.1.3 reported, 3.1.8 passes here) hands a reschedule-mode sensor its first
# reschedule date as a string, so Airflow's own timeout check in BaseSensorOperator.execute raises TypeError:
# apache/airflow#58777. A real deployment parses the date; only this test harness is affected.
_AIRFLOW = tuple(int(part) for part in version("apache-airflow-core").split(".")[:3])
skip_reschedule_timeout_in_old_dag_test = pytest.mark.skipif(
    _AIRFLOW < (3, 1, 8), reason="dag.test() gives reschedule sensors a str start date (apache/airflow#58777)"
)
MODES_WITH_TIMEOUT = [
    pytest.param(mode, marks=skip_reschedule_timeout_in_old_dag_test) if mode == "reschedule" else mode
    for mode in MODES
]


def _run(run_dag, name: str, mode: str, execution_id: str, **arguments: object):
    return run_dag(f"semantics_{name}_{mode}", sensor_dag(VENDOR, WORKFLOW, execution_id, **MODES[mode], **arguments))


@pytest.mark.parametrize("mode", MODES_WITH_TIMEOUT)
def test_timeout_is_a_sensor_timeout_and_not_retried(mode: str, start, run_dag, output) -> None:
    execution_id = start(WorkflowScript(duration=120))

    result = _run(run_dag, "timeout", mode, execution_id, timeout=1, retries=2)

    assert result.task_states() == {"watch": "failed"}  # failed, not up_for_retry
    assert "AirflowSensorTimeout" in output()


@pytest.mark.parametrize("mode", MODES_WITH_TIMEOUT)
def test_soft_fail_skips_on_timeout(mode: str, start, run_dag) -> None:
    execution_id = start(WorkflowScript(duration=120))

    result = _run(run_dag, "soft_timeout", mode, execution_id, timeout=1, soft_fail=True)

    assert result.task_states() == {"watch": "skipped"}


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_a_failed_execution(mode: str, start, run_dag, output) -> None:
    execution_id = start(WorkflowScript(duration=0.2, outcome="failure", error_message="bad input row"))

    result = _run(run_dag, "soft_failure", mode, execution_id, soft_fail=True)

    assert result.task_states() == {"watch": "skipped"}
    assert "bad input row" in output()


@pytest.mark.parametrize("mode", MODES)
def test_never_fail_skips_on_a_failed_execution(mode: str, start, run_dag) -> None:
    execution_id = start(WorkflowScript(duration=0.2, outcome="failure"))

    result = _run(run_dag, "never_failure", mode, execution_id, never_fail=True)

    assert result.task_states() == {"watch": "skipped"}


@pytest.mark.parametrize("mode", MODES)
def test_never_fail_skips_when_the_check_itself_fails(mode: str, start, run_dag, output) -> None:
    start(WorkflowScript(duration=0.2))

    result = _run(run_dag, "never_error", mode, "no-such-instance", never_fail=True)

    assert result.task_states() == {"watch": "skipped"}
    assert "404" in output()


def test_soft_fail_and_never_fail_exclude_each_other() -> None:
    from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

    with pytest.raises(ValueError, match="mutually exclusive"):
        CloudflareWorkflowInstanceSensor(
            task_id="watch", workflow=WORKFLOW, execution_id="e", soft_fail=True, never_fail=True
        )


def test_never_fail_bridged_where_airflow_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an Airflow whose BaseSensorOperator has no never_fail, the sensor keeps and applies it itself."""
    from airflow.providers.common.compat.sdk import AirflowSkipException, BaseSensorOperator

    from airflow_workflow_provider.sensors import base
    from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

    real_init = BaseSensorOperator.__init__

    def init_without_never_fail(self, **kwargs):  # the older signature: never_fail is an unknown argument
        assert "never_fail" not in kwargs
        real_init(self, **kwargs)

    monkeypatch.setattr(base, "AIRFLOW_HAS_NEVER_FAIL", False)
    monkeypatch.setattr(BaseSensorOperator, "__init__", init_without_never_fail)
    sensor = CloudflareWorkflowInstanceSensor(task_id="watch", workflow=WORKFLOW, execution_id="e", never_fail=True)
    assert sensor.never_fail is True

    def failing_poke(context):
        raise RuntimeError("the vendor is unreachable")

    monkeypatch.setattr(sensor, "_poke", failing_poke)
    with pytest.raises(AirflowSkipException, match="never_fail"):
        sensor.poke({})
    with pytest.raises(ValueError, match="mutually exclusive"):
        CloudflareWorkflowInstanceSensor(
            task_id="watch2", workflow=WORKFLOW, execution_id="e", soft_fail=True, never_fail=True
        )
