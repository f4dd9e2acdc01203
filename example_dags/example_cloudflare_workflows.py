"""Cloudflare Workflows from Airflow: run and wait, deferrable, a sensor, and a failure on purpose.

Needs a ``cloudflare_workflows_default`` connection (account id, API token). ``make demo``
runs these DAGs against the emulator.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

WORKFLOW_NAME = "order-fulfilment"
FAILING_WORKFLOW_NAME = "order-fulfilment-fails"
# Seconds between two status checks: a workflow that runs for minutes needs no tighter watch. The demo and
# the tests shorten it (their emulated workflows end within seconds).
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["example", "cloudflare"],
    "params": {"workflow": Param(WORKFLOW_NAME, type="string", description="Cloudflare workflow name")},
}
PARAMS = {"order_date": "{{ ds }}", "batch": "{{ run_id }}"}

with DAG("example_cloudflare_run_workflow", doc_md="Create an instance and wait in a worker slot.", **COMMON):
    # [START howto_operator_cloudflare_run_workflow]
    # No instance_id: the operator derives one per task run, so a retry cannot create a second instance.
    CloudflareRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow }}",
        payload=PARAMS,  # sent as the instance's params
        poll_interval=POLL_SECONDS,
    )
    # [END howto_operator_cloudflare_run_workflow]

with DAG("example_cloudflare_run_workflow_deferrable", doc_md="Wait in the triggerer, not a worker.", **COMMON):
    # [START howto_operator_cloudflare_run_workflow_deferrable]
    CloudflareRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow }}",
        payload=PARAMS,
        poll_interval=POLL_SECONDS,
        deferrable=True,
    )
    # [END howto_operator_cloudflare_run_workflow_deferrable]

with DAG("example_cloudflare_workflow_sensor", doc_md="Start without waiting; a sensor follows.", **COMMON):
    # [START howto_sensor_cloudflare_workflow_instance]
    start = CloudflareRunWorkflowOperator(
        task_id="start_workflow", workflow="{{ params.workflow }}", payload=PARAMS, wait_for_completion=False
    )
    CloudflareWorkflowInstanceSensor(
        task_id="wait_for_instance",
        workflow="{{ params.workflow }}",
        execution_id=start.output["execution_id"],  # the XCom the operator pushed; also sets start >> wait
        poke_interval=POLL_SECONDS,
        deferrable=True,
    )
    # [END howto_sensor_cloudflare_workflow_instance]

with DAG(
    "example_cloudflare_workflow_fails",
    doc_md="An instance that errors: the task fails with Cloudflare's error message.",
    **{**COMMON, "params": {"workflow": Param(FAILING_WORKFLOW_NAME, type="string")}},
):
    CloudflareRunWorkflowOperator(
        task_id="run_failing_workflow", workflow="{{ params.workflow }}", poll_interval=POLL_SECONDS
    )
