"""Retries reattach instead of starting twice; kills and timeouts cancel the remote execution.

The operator runs here as the task runner calls it, with a task instance and a
``task_state_store`` that keep their values across tries, as Airflow 3.3's do.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_workflow_provider._compat import ResumableJobMixin
from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    WorkflowExecutionFailed,
    WorkflowWaitTimeout,
)
from airflow_workflow_provider.core.http import close_shared_async_session
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.operators.cloudflare import PENDING_INSTANCE_KEY, derived_instance_id
from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import Vendor
from tests.operators.support import TaskInstance, TaskStateStore, context
from tests.operators.test_run_and_sensors import OPERATORS

# Durable retries need Airflow 3.3's ResumableJobMixin and task_state_store; below that every try starts afresh.
requires_durable_execution = pytest.mark.skipif(
    not ResumableJobMixin.__module__.startswith("airflow.sdk"),
    reason="Airflow below 3.3 has no task_state_store: retries start a new execution",
)

TRIGGERS = {
    "datadog": "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger",
    "cloudflare": "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger",
    "sailpoint": "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger",
}


def make_operator(vendor: Vendor, **arguments: Any) -> Any:
    module, name = OPERATORS[vendor.name]
    arguments = {"poll_interval": 0.05, **arguments}
    return getattr(import_module(module), name)(task_id="run", workflow=vendor.workflow, **arguments)


@requires_durable_execution
def test_retry_reattaches_to_the_running_execution(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=1.0, output={"n": 1}))
    store = TaskStateStore()
    # The first try dies while waiting (SailPoint retries a 401 once with a new token, so it needs two).
    vendor.emulator.inject_fault(vendor.name, "get", "401", times=2 if vendor.name == "sailpoint" else 1)

    with pytest.raises(AuthenticationError):
        make_operator(vendor).execute(context(store))
    [first] = vendor.executions()

    result = make_operator(vendor).execute(context(store))

    assert result["id"] == first["id"] and result["state"] == "succeeded"
    assert len(vendor.executions()) == 1, "a retry must never start a second execution"


@requires_durable_execution
def test_retry_after_success_returns_the_result_without_a_start(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.2, output={"n": 2}))
    store = TaskStateStore()
    first = make_operator(vendor).execute(context(store))
    starts = len([r for r in vendor.emulator.requests if r.operation == "start"])

    again = make_operator(vendor).execute(retry := context(store))

    assert again["id"] == first["id"] and again["state"] == "succeeded"
    assert len([r for r in vendor.emulator.requests if r.operation == "start"]) == starts
    assert retry["ti"].xcom["execution_id"] == first["id"]


@requires_durable_execution
def test_retry_after_failure_starts_afresh(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.2, outcome="failure"))
    store = TaskStateStore()
    with pytest.raises(WorkflowExecutionFailed):
        make_operator(vendor).execute(context(store))

    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.2))
    result = make_operator(vendor).execute(context(store))

    ids = [e["id"] for e in vendor.executions()]
    assert len(ids) == 2 and result["id"] in ids and len(set(ids)) == 2
    assert result["state"] == "succeeded"


@requires_durable_execution
def test_cloudflare_crash_between_start_and_saving_the_id_attaches(emulator, set_connection) -> None:
    set_connection("cloudflare")
    emulator.script("cloudflare", "etl", WorkflowScript(duration=0.5))
    from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
    from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator

    store = TaskStateStore()
    first_try = CloudflareRunWorkflowOperator(task_id="run", workflow="etl", poll_interval=0.05)
    options = first_try.start_options(context(store))  # records the id it is about to ask for...
    CloudflareWorkflowsHook().start_execution("etl", {}, **options)  # ...starts, then the worker dies

    result = CloudflareRunWorkflowOperator(task_id="run", workflow="etl", poll_interval=0.05).execute(context(store))

    ti = TaskInstance
    assert options["instance_id"].startswith("airflow-") and options["instance_id"].endswith("-0")
    # Another deployment running the same task for the same run asks for another id (issue 14, item 6).
    assert options["instance_id"] != derived_instance_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, 0)
    assert [e["id"] for e in emulator.executions("cloudflare")] == [options["instance_id"]]
    assert result["id"] == options["instance_id"] and store.get(PENDING_INSTANCE_KEY) == options["instance_id"]


@requires_durable_execution
def test_cloudflare_failed_instance_is_not_replayed(emulator, set_connection) -> None:
    set_connection("cloudflare")
    emulator.script("cloudflare", "etl", WorkflowScript(duration=0.1, outcome="failure"))
    from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator

    store = TaskStateStore()
    with pytest.raises(WorkflowExecutionFailed):
        CloudflareRunWorkflowOperator(task_id="run", workflow="etl", poll_interval=0.05).execute(context(store))
    emulator.script("cloudflare", "etl", WorkflowScript(duration=0.1))
    result = CloudflareRunWorkflowOperator(task_id="run", workflow="etl", poll_interval=0.05).execute(context(store))

    assert result["id"].endswith("-1") and len(emulator.executions("cloudflare")) == 2


def test_on_kill_cancels_the_running_execution(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))
    operator = make_operator(vendor)
    outcome: list[BaseException | dict] = []

    def run() -> None:
        try:
            outcome.append(operator.execute(context(TaskStateStore())))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    # Airflow kills a task at any moment; once the start has answered, the operator knows what to cancel.
    while operator._execution_id is None and time.monotonic() < deadline:
        time.sleep(0.02)
    operator.on_kill()
    worker.join(10)

    [execution] = vendor.executions()
    assert vendor.hook().get_execution(vendor.workflow, execution["id"]).state is ExecutionState.CANCELED
    assert isinstance(outcome[0], WorkflowExecutionFailed) and "canceled" in str(outcome[0])


def test_wait_timeout_cancels_the_execution(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))

    with pytest.raises(WorkflowWaitTimeout, match="was canceled"):
        make_operator(vendor, timeout=0.5).execute(context(TaskStateStore()))

    [execution] = vendor.executions()
    assert vendor.hook().get_execution(vendor.workflow, execution["id"]).state is ExecutionState.CANCELED


def test_execution_timeout_cancels_before_airflow_kills_the_task(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))
    operator = make_operator(vendor, execution_timeout=timedelta(seconds=6))  # our deadline: 6 s - 5 s margin

    with pytest.raises(WorkflowWaitTimeout):
        operator.execute(context(TaskStateStore()))

    [execution] = vendor.executions()
    assert vendor.hook().get_execution(vendor.workflow, execution["id"]).state is ExecutionState.CANCELED


def test_cancel_on_kill_false_leaves_it_running(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))

    with pytest.raises(WorkflowWaitTimeout, match="goes on running"):
        make_operator(vendor, timeout=0.3, cancel_on_kill=False).execute(context(TaskStateStore()))

    [execution] = vendor.executions()
    assert not vendor.hook().get_execution(vendor.workflow, execution["id"]).is_terminal


@pytest.mark.parametrize("bad", [{"poll_interval": 0}, {"poll_interval": -1}, {"timeout": 0}, {"timeout": "soon"}])
def test_wait_settings_are_checked_when_the_dag_is_parsed(vendor: Vendor, bad: dict) -> None:
    from airflow_workflow_provider.core.errors import WorkflowInputError

    with pytest.raises(WorkflowInputError, match=next(iter(bad))):
        make_operator(vendor, **{"poll_interval": 1, **bad})


def trigger(vendor: Vendor, execution_id: str, **arguments: Any) -> Any:
    module, _, name = TRIGGERS[vendor.name].rpartition(".")
    return getattr(import_module(module), name)(
        **{f"{vendor.name}_conn_id": vendor.conn_id},
        workflow=vendor.workflow,
        execution_id=execution_id,
        poll_interval=0.05,
        **arguments,
    )


def test_trigger_serializes_round_trip(vendor: Vendor) -> None:
    original = trigger(vendor, "exec-1", deadline=1_800_000_000.0, stop_states=["waiting"], cancel_on_kill=False)
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(import_module(module), name)(**kwargs)
    assert classpath == TRIGGERS[vendor.name]
    assert rebuilt.serialize() == (classpath, kwargs)


async def collect(trigger_instance: Any) -> list[dict]:
    try:
        return [event.payload async for event in trigger_instance.run()]
    finally:
        await close_shared_async_session()


def test_trigger_yields_one_event_per_outcome(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.3, output={"x": 1}))
    execution_id = vendor.hook().start_execution(vendor.workflow)

    events = asyncio.run(collect(trigger(vendor, execution_id)))

    assert [e["status"] for e in events] == ["success"]
    assert events[0]["execution"]["state"] == "succeeded" and events[0]["execution_id"] == execution_id


def test_trigger_timeout_and_error_events(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))
    execution_id = vendor.hook().start_execution(vendor.workflow)

    [timeout] = asyncio.run(collect(trigger(vendor, execution_id, deadline=time.time() + 0.3)))
    [error] = asyncio.run(collect(trigger(vendor, "no-such-execution")))

    assert timeout["status"] == "timeout" and "timeout" in timeout["message"]
    assert error["status"] == "error" and "404" in error["message"]


def test_trigger_on_kill_cancels_but_cleanup_does_not(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))
    execution_id = vendor.hook().start_execution(vendor.workflow)
    follower = trigger(vendor, execution_id)

    async def restart_then_kill() -> tuple[ExecutionState, ExecutionState]:
        await follower.cleanup()  # what a triggerer restart runs
        after_cleanup = (await vendor.hook().aget_execution(vendor.workflow, execution_id)).state
        await follower.on_kill()  # what a user's kill runs (Airflow 3.3)
        after_kill = (await vendor.hook().aget_execution(vendor.workflow, execution_id)).state
        await close_shared_async_session()
        return after_cleanup, after_kill

    after_cleanup, after_kill = asyncio.run(restart_then_kill())
    assert not after_cleanup.is_terminal
    assert after_kill is ExecutionState.CANCELED


@pytest.mark.parametrize(
    ("airflow_says", "canceled"),
    [
        ("deferred", False),  # handed over to another triggerer (apache/airflow#73454): the new owner follows it
        ("failed", True),  # a user marked it failed
        ("success", True),  # a user marked it succeeded
        (None, True),  # a user cleared it
        (RuntimeError("no supervisor"), True),  # Airflow cannot be asked: the kill is taken as Airflow said
    ],
)
def test_trigger_on_kill_asks_airflow_whether_the_task_left_the_deferred_state(
    vendor: Vendor, monkeypatch: pytest.MonkeyPatch, airflow_says: Any, canceled: bool
) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=60))
    execution_id = vendor.hook().start_execution(vendor.workflow)
    follower = trigger(vendor, execution_id)
    follower.task_instance = SimpleNamespace(dag_id="dag", task_id="wait", run_id="run-1", map_index=-1)
    asked: list[dict[str, Any]] = []

    def get_task_states(**query: Any) -> dict[str, Any]:
        asked.append(query)
        if isinstance(airflow_says, Exception):
            raise airflow_says
        return {"run-1": {"wait": airflow_says}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(get_task_states))

    async def kill() -> ExecutionState:
        await follower.on_kill()
        state = (await vendor.hook().aget_execution(vendor.workflow, execution_id)).state
        await close_shared_async_session()
        return state

    state = asyncio.run(kill())
    assert asked == [{"dag_id": "dag", "map_index": -1, "task_ids": ["wait"], "run_ids": ["run-1"]}]
    assert (state is ExecutionState.CANCELED) is canceled, state
