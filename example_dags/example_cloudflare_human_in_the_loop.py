"""A human-in-the-loop Cloudflare Workflow: start, wait until it waits for an approval, send it, wait for the end.

The workflow calls ``step.waitForEvent("approval")``; Airflow delivers the event once its own
checks (here a stand-in task) say the expense may go through.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator, CloudflareSendEventOperator
from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

WORKFLOW = "expense-approval"
# Seconds between two status checks; the demo and the tests shorten it.
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))

with DAG(
    "example_cloudflare_human_in_the_loop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "cloudflare"],
):
    # [START howto_human_in_the_loop]
    start = CloudflareRunWorkflowOperator(
        task_id="start_approval_flow",
        workflow=WORKFLOW,
        payload={"expense_id": "EXP-{{ ds_nodash }}", "amount_eur": 420},
        wait_for_completion=False,
    )
    instance = start.output["execution_id"]
    waiting = CloudflareWorkflowInstanceSensor(
        task_id="wait_until_waiting_for_approval",
        workflow=WORKFLOW,
        execution_id=instance,
        stop_states=["waiting"],  # succeed as soon as the instance waits in step.waitForEvent
        poke_interval=POLL_SECONDS,
        mode="reschedule",
    )

    @task
    def review_expense() -> dict:
        return {"approved": True, "reviewer": "finance-bot"}

    decision = review_expense()
    approve = CloudflareSendEventOperator(
        task_id="send_approval",
        workflow=WORKFLOW,
        instance_id=instance,
        event_type="approval",
        payload=decision,  # the reviewer's answer becomes the event's payload
    )
    done = CloudflareWorkflowInstanceSensor(
        task_id="wait_for_completion",
        workflow=WORKFLOW,
        execution_id=instance,
        poke_interval=POLL_SECONDS,
        deferrable=True,
    )
    waiting >> decision
    approve >> done
    # [END howto_human_in_the_loop]
