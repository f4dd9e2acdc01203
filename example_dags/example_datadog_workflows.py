"""Datadog Workflow Automation from Airflow: run and wait, deferrable, a sensor, and a failure on purpose.

Needs a ``datadog_workflows_default`` connection (site, API key, application key). The workflow
must be published and have an API trigger. ``make demo`` runs these DAGs against the emulator.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator
from airflow_workflow_provider.sensors.datadog import DatadogWorkflowInstanceSensor

WORKFLOW_ID = "3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10"
FAILING_WORKFLOW_ID = "0bad0c0d-fail-4e55-8f00-00000000dead"
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["example", "datadog"],
    "params": {"workflow_id": Param(WORKFLOW_ID, type="string", description="Datadog workflow id")},
}
PAYLOAD = {"run_date": "{{ ds }}", "requested_by": "{{ dag.dag_id }}"}

with DAG("example_datadog_run_workflow", doc_md="Start a workflow and wait in a worker slot.", **COMMON):
    DatadogRunWorkflowOperator(
        task_id="run_workflow", workflow="{{ params.workflow_id }}", payload=PAYLOAD, poll_interval=1
    )

with DAG("example_datadog_run_workflow_deferrable", doc_md="Wait in the triggerer, not a worker.", **COMMON):
    DatadogRunWorkflowOperator(
        task_id="run_workflow", workflow="{{ params.workflow_id }}", payload=PAYLOAD, poll_interval=1, deferrable=True
    )

with DAG("example_datadog_workflow_sensor", doc_md="Start without waiting; a sensor follows.", **COMMON):
    start = DatadogRunWorkflowOperator(
        task_id="start_workflow", workflow="{{ params.workflow_id }}", payload=PAYLOAD, wait_for_completion=False
    )
    wait = DatadogWorkflowInstanceSensor(
        task_id="wait_for_instance",
        workflow="{{ params.workflow_id }}",
        execution_id="{{ ti.xcom_pull(task_ids='start_workflow', key='execution_id') }}",
        poke_interval=1,
        mode="reschedule",
    )
    start >> wait

with DAG(
    "example_datadog_workflow_fails",
    doc_md="A workflow that fails: the task fails with Datadog's failing step and error.",
    **{**COMMON, "params": {"workflow_id": Param(FAILING_WORKFLOW_ID, type="string")}},
):
    DatadogRunWorkflowOperator(task_id="run_failing_workflow", workflow="{{ params.workflow_id }}", poll_interval=1)
