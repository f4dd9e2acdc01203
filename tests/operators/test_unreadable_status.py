"""No vendor status may make a wait endless: a status nobody can read ends the wait after a bounded time.

Vendors add statuses without notice (Cloudflare added ``rollingBack``; Datadog documents no terminal
status but CANCELED). An execution stuck in such a status, followed with no timeout, used to be
polled for ever, in the worker and in the triggerer alike.
"""

from __future__ import annotations

import asyncio
import time
from importlib import import_module
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import WorkflowExecutionFailed
from airflow_workflow_provider.core.http import close_shared_async_session
from airflow_workflow_provider.core.states import ExecutionState, UnknownStateClock
from airflow_workflow_provider.testing.emulator import MYSTERY_STATUS, WorkflowScript
from tests.conftest import Vendor

TRIGGERS = {
    "datadog": "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger",
    "cloudflare": "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger",
    "sailpoint": "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger",
}
OPERATORS = {
    "datadog": "airflow_workflow_provider.operators.datadog.DatadogRunWorkflowOperator",
    "cloudflare": "airflow_workflow_provider.operators.cloudflare.CloudflareRunWorkflowOperator",
    "sailpoint": "airflow_workflow_provider.operators.sailpoint.SailPointRunWorkflowOperator",
}


def load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def test_the_clock_restarts_when_the_status_is_readable_again() -> None:
    clock = UnknownStateClock(limit=10)
    assert not clock.expired(ExecutionState.UNKNOWN, now=0)
    assert not clock.expired(ExecutionState.UNKNOWN, now=9)
    assert not clock.expired(ExecutionState.RUNNING, now=9.5)
    assert not clock.expired(ExecutionState.UNKNOWN, now=12)
    assert clock.expired(ExecutionState.UNKNOWN, now=22)


def stuck_in_an_unreadable_status(vendor: Vendor) -> str:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=600))
    execution_id = vendor.hook().start_execution(vendor.workflow)
    vendor.emulator.inject_fault(vendor.name, "get", "unknown_status", times=10_000)
    return execution_id


def test_a_deferred_wait_with_no_timeout_ends(vendor: Vendor) -> None:
    execution_id = stuck_in_an_unreadable_status(vendor)
    trigger = load(TRIGGERS[vendor.name])(
        **{f"{vendor.name}_conn_id": vendor.conn_id},
        workflow=vendor.workflow,
        execution_id=execution_id,
        poll_interval=0.05,
        deadline=None,
        unknown_state_limit=0.3,
    )

    async def collect() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_session()

    started = time.monotonic()
    events = asyncio.run(asyncio.wait_for(collect(), timeout=60))

    assert [e["status"] for e in events] == ["error"]
    assert MYSTERY_STATUS in events[0]["message"] and "may still be running" in events[0]["message"]
    assert time.monotonic() - started < 60


def test_a_wait_in_the_worker_with_no_timeout_ends(vendor: Vendor) -> None:
    execution_id = stuck_in_an_unreadable_status(vendor)
    impatient = type("Impatient", (load(OPERATORS[vendor.name]),), {"unknown_state_limit": 0.3})
    operator = impatient(
        task_id="run", workflow=vendor.workflow, poll_interval=0.05, **{f"{vendor.name}_conn_id": vendor.conn_id}
    )

    with pytest.raises(WorkflowExecutionFailed, match=MYSTERY_STATUS):
        operator._wait_here({}, execution_id)
    # The execution goes on: the provider cannot tell it is over, so it does not cancel it.
    assert vendor.hook().get_execution(vendor.workflow, execution_id).state is not ExecutionState.CANCELED


def test_an_inferred_outcome_is_said_in_the_task_log(emulator, set_connection, run_dag, output) -> None:
    # Datadog documents no success string: under words no map knows, the display name tells, and the log says so.
    emulator.set_datadog_vocabulary("undocumented")
    set_connection("datadog")
    emulator.script("datadog", "wf-inferred", WorkflowScript(duration=0.3))
    body = (
        "from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator\n"
        "DatadogRunWorkflowOperator(task_id='run', workflow='wf-inferred', poll_interval=0.1)\n"
    )

    result = run_dag("datadog_inferred_outcome", body)

    text = output()
    assert result.state == "success", text
    assert "The outcome was inferred, not read" in text and "FINISHED" in text
