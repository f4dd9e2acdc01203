"""A human-in-the-loop Cloudflare Workflow: start, wait until it waits for an approval, send it, wait for the end.

The workflow calls ``step.waitForEvent("approval")``; Airflow delivers the event once its own
checks (here a stand-in task) say the expense may go through.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator, CloudflareSendEventOperator
from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor

WORKFLOW = "expense-approval"
INSTANCE = "{{ ti.xcom_pull(task_ids='start_approval_flow', key='execution_id') }}"

with DAG(
    "example_cloudflare_human_in_the_loop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "cloudflare"],
):
    start = CloudflareRunWorkflowOperator(
        task_id="start_approval_flow",
        workflow=WORKFLOW,
        payload={"expense_id": "EXP-{{ ds_nodash }}", "amount_eur": 420},
        wait_for_completion=False,
    )
    waiting = CloudflareWorkflowInstanceSensor(
        task_id="wait_until_waiting_for_approval",
        workflow=WORKFLOW,
        execution_id=INSTANCE,
        stop_states=["waiting"],
        poke_interval=1,
    )

    @task
    def review_expense() -> dict:
        return {"approved": True, "reviewer": "finance-bot"}

    decision = review_expense()
    approve = CloudflareSendEventOperator(
        task_id="send_approval",
        workflow=WORKFLOW,
        instance_id=INSTANCE,
        event_type="approval",
        payload=decision,  # the reviewer's answer becomes the event's payload
    )
    done = CloudflareWorkflowInstanceSensor(
        task_id="wait_for_completion", workflow=WORKFLOW, execution_id=INSTANCE, poke_interval=1, deferrable=True
    )
    start >> waiting >> decision
    approve >> done
