"""One DAG across the three vendors: a Datadog check, then Cloudflare and SailPoint in parallel.

The Cloudflare instance receives the Datadog execution id as a parameter, showing how the
XCom of one operator feeds the templated payload of the next.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator
from airflow_workflow_provider.operators.sailpoint import SailPointRunWorkflowOperator

# Seconds between two status checks; the demo and the tests shorten it.
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))

with DAG(
    "example_all_vendors",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "datadog", "cloudflare", "sailpoint"],
):
    # [START howto_operator_chain_vendors]
    health_check = DatadogRunWorkflowOperator(
        task_id="datadog_health_check",
        workflow="3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10",
        payload={"service": "checkout", "run_date": "{{ ds }}"},
        poll_interval=POLL_SECONDS,
    )
    rebuild_cache = CloudflareRunWorkflowOperator(
        task_id="cloudflare_rebuild_cache",
        workflow="cache-rebuild",
        # An XComArg inside the payload: rendered when the task runs, and it makes health_check upstream.
        payload={"after_check": health_check.output["execution_id"]},
        poll_interval=POLL_SECONDS,
        deferrable=True,
    )
    provision_access = SailPointRunWorkflowOperator(
        task_id="sailpoint_provision_access",
        workflow="b393f4e2-4785-4d7f-ab27-3a6b8ded4c81",
        payload={"group": "on-call", "date": "{{ ds }}"},
        poll_interval=POLL_SECONDS,
    )
    health_check >> provision_access
    # [END howto_operator_chain_vendors]
