"""Cloudflare Workflows from Airflow: run and wait, deferrable, a sensor, and a failure on purpose.

Needs a ``cloudflare_workflows_default`` connection (account id, API token). ``make demo``
runs these DAGs against the emulator.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

WORKFLOW_NAME = "order-fulfilment"
FAILING_WORKFLOW_NAME = "order-fulfilment-fails"
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["example", "cloudflare"],
    "params": {"workflow": Param(WORKFLOW_NAME, type="string", description="Cloudflare workflow name")},
}
PARAMS = {"order_date": "{{ ds }}", "batch": "{{ run_id }}"}

with DAG("example_cloudflare_run_workflow", doc_md="Create an instance and wait in a worker slot.", **COMMON):
    # No instance_id: the operator derives one per task run, so a retry cannot create a second instance.
    CloudflareRunWorkflowOperator(
        task_id="run_workflow", workflow="{{ params.workflow }}", payload=PARAMS, poll_interval=1
    )

with DAG("example_cloudflare_run_workflow_deferrable", doc_md="Wait in the triggerer, not a worker.", **COMMON):
    CloudflareRunWorkflowOperator(
        task_id="run_workflow", workflow="{{ params.workflow }}", payload=PARAMS, poll_interval=1, deferrable=True
    )

with DAG("example_cloudflare_workflow_sensor", doc_md="Start without waiting; a sensor follows.", **COMMON):
    start = CloudflareRunWorkflowOperator(
        task_id="start_workflow", workflow="{{ params.workflow }}", payload=PARAMS, wait_for_completion=False
    )
    wait = CloudflareWorkflowInstanceSensor(
        task_id="wait_for_instance",
        workflow="{{ params.workflow }}",
        execution_id="{{ ti.xcom_pull(task_ids='start_workflow', key='execution_id') }}",
        poke_interval=1,
        deferrable=True,
    )
    start >> wait

with DAG(
    "example_cloudflare_workflow_fails",
    doc_md="An instance that errors: the task fails with Cloudflare's error message.",
    **{**COMMON, "params": {"workflow": Param(FAILING_WORKFLOW_NAME, type="string")}},
):
    CloudflareRunWorkflowOperator(task_id="run_failing_workflow", workflow="{{ params.workflow }}", poll_interval=1)
