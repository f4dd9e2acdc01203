"""Datadog Workflow Automation from Airflow: run and wait, deferrable, a sensor, and a failure on purpose.

Needs a ``datadog_workflows_default`` connection (site, API key, application key). The workflow
must be published and have an API trigger. ``make demo`` runs these DAGs against the emulator.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator
from airflow_workflow_provider.sensors.datadog import DatadogWorkflowInstanceSensor

WORKFLOW_ID = "3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10"
FAILING_WORKFLOW_ID = "0bad0c0d-fail-4e55-8f00-00000000dead"
# Seconds between two status checks: a workflow that runs for minutes needs no tighter watch. The demo and
# the tests shorten it (their emulated workflows end within seconds).
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["example", "datadog"],
    "params": {"workflow_id": Param(WORKFLOW_ID, type="string", description="Datadog workflow id")},
}
PAYLOAD = {"run_date": "{{ ds }}", "requested_by": "{{ dag.dag_id }}"}

with DAG("example_datadog_run_workflow", doc_md="Start a workflow and wait in a worker slot.", **COMMON):
    # [START howto_operator_datadog_run_workflow]
    DatadogRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow_id }}",
        payload=PAYLOAD,  # sent as meta.payload
        poll_interval=POLL_SECONDS,
    )
    # [END howto_operator_datadog_run_workflow]

with DAG("example_datadog_run_workflow_deferrable", doc_md="Wait in the triggerer, not a worker.", **COMMON):
    # [START howto_operator_datadog_run_workflow_deferrable]
    DatadogRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow_id }}",
        payload=PAYLOAD,
        poll_interval=POLL_SECONDS,
        deferrable=True,
    )
    # [END howto_operator_datadog_run_workflow_deferrable]

with DAG("example_datadog_workflow_sensor", doc_md="Start without waiting; a sensor follows.", **COMMON):
    # [START howto_sensor_datadog_workflow_instance]
    start = DatadogRunWorkflowOperator(
        task_id="start_workflow", workflow="{{ params.workflow_id }}", payload=PAYLOAD, wait_for_completion=False
    )
    DatadogWorkflowInstanceSensor(
        task_id="wait_for_instance",
        workflow="{{ params.workflow_id }}",
        execution_id=start.output["execution_id"],  # the XCom the operator pushed; also sets start >> wait
        poke_interval=POLL_SECONDS,
        mode="reschedule",  # frees the worker slot between two checks
    )
    # [END howto_sensor_datadog_workflow_instance]

with DAG(
    "example_datadog_workflow_fails",
    doc_md="A workflow that fails: the task fails with Datadog's failing step and error.",
    **{**COMMON, "params": {"workflow_id": Param(FAILING_WORKFLOW_ID, type="string")}},
):
    DatadogRunWorkflowOperator(
        task_id="run_failing_workflow", workflow="{{ params.workflow_id }}", poll_interval=POLL_SECONDS
    )
