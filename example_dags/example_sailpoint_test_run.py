"""Test-run a disabled SailPoint workflow, then list its recent failed runs (a bounded summary in XCom).

``mode="test"`` is SailPoint's way to run a workflow that is not enabled yet, e.g. while it is
being built; the failing step of a failed run is read from the execution history.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_workflow_provider.operators.sailpoint import (
    SailPointListWorkflowExecutionsOperator,
    SailPointRunWorkflowOperator,
)

WORKFLOW_ID = "7c1e2f10-draft-4b1a-9d3e-5a6b7c8d9e0f"
# Seconds between two status checks; the demo and the tests shorten it.
POLL_SECONDS = float(os.environ.get("EXAMPLE_WORKFLOW_POLL_SECONDS", "30"))

with DAG(
    "example_sailpoint_test_run",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "sailpoint"],
):
    # [START howto_operator_sailpoint_test_run_and_list]
    test_run = SailPointRunWorkflowOperator(
        task_id="test_run_draft_workflow",
        workflow=WORKFLOW_ID,
        mode="test",  # runs a workflow that is not enabled yet
        payload={"identity": {"id": "2c9180835d2e5168015d32f890ca1581", "name": "jane.doe"}},
        poll_interval=POLL_SECONDS,
    )
    recent_failures = SailPointListWorkflowExecutionsOperator(
        task_id="list_recent_failures",
        workflow=WORKFLOW_ID,
        filters={"status": "Failed", "start_time_ge": "{{ macros.ds_add(ds, -7) }}T00:00:00Z"},
        max_results=50,
    )
    test_run >> recent_failures
    # [END howto_operator_sailpoint_test_run_and_list]
