"""SailPoint Identity Security Cloud workflows from Airflow: run and wait, deferrable, a sensor, a failure.

Needs a ``sailpoint_workflows_default`` connection (tenant, client id, client secret). Mode
``external`` runs an enabled workflow through its External Trigger (use that trigger's OAuth
client); ``test`` runs a disabled one. ``make demo`` runs these DAGs against the emulator.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_workflow_provider.operators.sailpoint import SailPointRunWorkflowOperator
from airflow_workflow_provider.sensors.sailpoint import SailPointWorkflowExecutionSensor

WORKFLOW_ID = "b393f4e2-4785-4d7f-ab27-3a6b8ded4c81"
FAILING_WORKFLOW_ID = "d201c5d9-fail-4a2f-af14-66414f39d568"
# Seconds between two status checks: a workflow that runs for minutes needs no tighter watch. The demo and
# the tests shorten it (their emulated workflows end within seconds).
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["example", "sailpoint"],
    "params": {"workflow_id": Param(WORKFLOW_ID, type="string", description="SailPoint workflow id")},
}
INPUT = {"identity": "jane.doe", "requested_on": "{{ ds }}"}

with DAG("example_sailpoint_run_workflow", doc_md="Trigger an enabled workflow and wait.", **COMMON):
    # [START howto_operator_sailpoint_run_workflow]
    SailPointRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow_id }}",
        payload=INPUT,  # sent as the workflow's input
        mode="external",  # an enabled workflow with an External Trigger
        poll_interval=POLL_SECONDS,
    )
    # [END howto_operator_sailpoint_run_workflow]

with DAG("example_sailpoint_run_workflow_deferrable", doc_md="Wait in the triggerer, not a worker.", **COMMON):
    # [START howto_operator_sailpoint_run_workflow_deferrable]
    SailPointRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{{ params.workflow_id }}",
        payload=INPUT,
        poll_interval=POLL_SECONDS,
        deferrable=True,
    )
    # [END howto_operator_sailpoint_run_workflow_deferrable]

with DAG("example_sailpoint_workflow_sensor", doc_md="Test-run a disabled workflow; a sensor follows.", **COMMON):
    # [START howto_sensor_sailpoint_workflow_execution]
    start = SailPointRunWorkflowOperator(
        task_id="start_test_run",
        workflow="{{ params.workflow_id }}",
        payload=INPUT,
        mode="test",
        wait_for_completion=False,
    )
    SailPointWorkflowExecutionSensor(
        task_id="wait_for_execution",
        workflow="{{ params.workflow_id }}",
        execution_id=start.output["execution_id"],  # the XCom the operator pushed; also sets start >> wait
        poke_interval=POLL_SECONDS,
    )
    # [END howto_sensor_sailpoint_workflow_execution]

with DAG(
    "example_sailpoint_workflow_fails",
    doc_md="A workflow that fails: the task fails with the failing step from the execution history.",
    **{**COMMON, "params": {"workflow_id": Param(FAILING_WORKFLOW_ID, type="string")}},
):
    SailPointRunWorkflowOperator(
        task_id="run_failing_workflow", workflow="{{ params.workflow_id }}", poll_interval=POLL_SECONDS
    )
