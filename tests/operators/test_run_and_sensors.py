"""Operators, sensors and triggers in real Airflow (``dag.test()``), against the emulator."""

from __future__ import annotations

from importlib import import_module

import pytest

from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import Vendor

OPERATORS = {
    "datadog": ("airflow_workflow_provider.operators.datadog", "DatadogRunWorkflowOperator"),
    "cloudflare": ("airflow_workflow_provider.operators.cloudflare", "CloudflareRunWorkflowOperator"),
    "sailpoint": ("airflow_workflow_provider.operators.sailpoint", "SailPointRunWorkflowOperator"),
}
SENSORS = {
    "datadog": ("airflow_workflow_provider.sensors.datadog", "DatadogWorkflowInstanceSensor"),
    "cloudflare": ("airflow_workflow_provider.sensors.cloudflare", "CloudflareWorkflowInstanceSensor"),
    "sailpoint": ("airflow_workflow_provider.sensors.sailpoint", "SailPointWorkflowExecutionSensor"),
}


def operator_dag(vendor: str, workflow: str, **arguments: object) -> str:
    module, name = OPERATORS[vendor]
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"from {module} import {name}\n{name}(task_id='run', workflow={workflow!r}, poll_interval=0.1, {args})\n"


def sensor_dag(vendor: str, workflow: str, execution_id: str, **arguments: object) -> str:
    module, name = SENSORS[vendor]
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return (
        f"from {module} import {name}\n"
        f"{name}(task_id='watch', workflow={workflow!r}, execution_id={execution_id!r}, poke_interval=0.1, {args})\n"
    )


def test_run_and_wait_success_with_templated_payload(vendor: Vendor, run_dag) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.5, output={"rows": 7}))
    payload = {"day": "{{ ds }}", "source": "{{ dag.dag_id }}"}

    result = run_dag(f"run_ok_{vendor.name}", operator_dag(vendor.name, vendor.workflow, payload=payload))

    assert result.state == "success"
    [execution] = vendor.executions()
    assert execution["payload"]["source"] == f"run_ok_{vendor.name}"
    assert "{{" not in execution["payload"]["day"]
    returned = result.xcom("run")
    assert returned["id"] == execution["id"] and returned["state"] == "succeeded"
    assert result.xcom("run", "execution_id") == execution["id"]
    url = vendor.hook().execution_url(vendor.workflow, execution["id"])
    assert result.xcom("run", "execution_url") == url
    # Airflow 3 resolves extra links when the task ends and keeps them in XCom for the UI.
    module, name = OPERATORS[vendor.name]
    [link] = getattr(import_module(module), name).operator_extra_links
    assert result.xcom("run", link.xcom_key) == url
    assert vendor.name.lower() in link.name.lower()


def test_failed_execution_fails_the_task_with_the_reason(vendor: Vendor, run_dag, output) -> None:
    vendor.emulator.script(
        vendor.name,
        vendor.workflow,
        WorkflowScript(duration=0.3, outcome="failure", failing_step="load_rows", error_message="disk full"),
    )

    result = run_dag(f"run_fail_{vendor.name}", operator_dag(vendor.name, vendor.workflow))

    assert result.state == "failed"
    assert result.task_states() == {"run": "failed"}
    text = output()
    assert "disk full" in text and "load_rows" in text


def test_deferrable_run_goes_through_the_trigger(vendor: Vendor, run_dag, output) -> None:
    # Long enough that even a loaded machine finds it running at the check before deferring (3 s was
    # not, once, on a 2-core machine at load 14): the test must prove the deferral, not race it.
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=10.0, output={"ok": True}))

    result = run_dag(f"run_deferred_{vendor.name}", operator_dag(vendor.name, vendor.workflow, deferrable=True))

    assert result.state == "success"
    text = output()
    assert "deferring the wait" in text and "running trigger in line" in text
    assert result.xcom("run")["state"] == "succeeded"
    assert len(vendor.executions()) == 1


def test_deferrable_failure_fails_the_task(vendor: Vendor, run_dag, output) -> None:
    vendor.emulator.script(
        vendor.name, vendor.workflow, WorkflowScript(duration=0.5, outcome="failure", error_message="quota exceeded")
    )

    result = run_dag(f"run_deferred_fail_{vendor.name}", operator_dag(vendor.name, vendor.workflow, deferrable=True))

    assert result.state == "failed"
    assert "quota exceeded" in output()


def test_no_wait_returns_once_started(vendor: Vendor, run_dag) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=30))

    result = run_dag(f"run_nowait_{vendor.name}", operator_dag(vendor.name, vendor.workflow, wait_for_completion=False))

    assert result.state == "success"
    assert result.xcom("run")["state"] in ("queued", "running")
    vendor.hook().cancel_execution(vendor.workflow, result.xcom("run", "execution_id"))


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_follows_an_execution_started_elsewhere(vendor: Vendor, run_dag, mode: str) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.8, output={"done": 1}))
    execution_id = vendor.hook().start_execution(vendor.workflow)
    arguments = {"deferrable": True} if mode == "deferrable" else {"mode": mode}

    result = run_dag(
        f"sensor_{mode}_{vendor.name}", sensor_dag(vendor.name, vendor.workflow, execution_id, **arguments)
    )

    assert result.state == "success"
    assert result.xcom("watch")["state"] == "succeeded"
    assert result.xcom("watch", "execution_url") == vendor.hook().execution_url(vendor.workflow, execution_id)
    assert len(vendor.executions()) == 1


@pytest.mark.parametrize("deferrable", [False, True])
def test_sensor_fails_at_once_without_retries(vendor: Vendor, run_dag, output, deferrable: bool) -> None:
    vendor.emulator.script(
        vendor.name, vendor.workflow, WorkflowScript(duration=0.2, outcome="failure", error_message="bad input row")
    )
    execution_id = vendor.hook().start_execution(vendor.workflow)

    result = run_dag(
        f"sensor_fail_{vendor.name}_{deferrable}",
        sensor_dag(vendor.name, vendor.workflow, execution_id, retries=3, deferrable=deferrable),
    )

    assert result.task_states() == {"watch": "failed"}  # failed, not up_for_retry
    assert "bad input row" in output()


def test_deferrable_run_with_the_connection_in_the_metastore(emulator, run_dag, monkeypatch) -> None:
    """Connections added in the UI or with ``airflow connections add`` live in the database, not the environment."""
    import json

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from tests.conftest import vendor_connection

    monkeypatch.delenv("AIRFLOW_CONN_CLOUDFLARE_WORKFLOWS_DEFAULT", raising=False)
    spec = vendor_connection("cloudflare", emulator)
    with create_session() as session:
        session.query(Connection).filter_by(conn_id="cloudflare_in_db").delete()
        session.add(
            Connection(
                conn_id="cloudflare_in_db",
                conn_type=spec["conn_type"],
                password=spec["password"],
                extra=json.dumps(spec["extra"]),
            )
        )
    emulator.script("cloudflare", "etl", WorkflowScript(duration=0.5))

    dag = operator_dag("cloudflare", "etl", deferrable=True, cloudflare_conn_id="cloudflare_in_db")
    result = run_dag("run_deferred_metastore_connection", dag)

    assert result.state == "success"
    assert result.xcom("run")["state"] == "succeeded"
