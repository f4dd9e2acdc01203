"""Each vendor's control surface beyond start and wait: list, pause/resume/terminate/restart, events, batches."""

from __future__ import annotations

import asyncio
import time
from importlib import import_module
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import (
    BadRequestError,
    WorkflowExecutionFailed,
    WorkflowInputError,
)
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.operators.cloudflare import (
    CloudflareInstanceStatusOperator,
    CloudflareRunWorkflowBatchOperator,
    CloudflareSendEventOperator,
)
from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import Vendor
from tests.operators.support import TaskStateStore, context
from tests.operators.test_durable_and_cancel import requires_durable_execution

LIST_OPERATORS = {
    "datadog": ("airflow_workflow_provider.operators.datadog", "DatadogListWorkflowExecutionsOperator", {}),
    "cloudflare": (
        "airflow_workflow_provider.operators.cloudflare",
        "CloudflareListWorkflowExecutionsOperator",
        {"status": "errored"},
    ),
    "sailpoint": (
        "airflow_workflow_provider.operators.sailpoint",
        "SailPointListWorkflowExecutionsOperator",
        {"status": "Failed"},
    ),
}


def test_list_operator_returns_a_bounded_json_summary(vendor: Vendor) -> None:
    import json

    vendor.emulator.create_executions(vendor.name, vendor.workflow, 12, outcome="success")
    module, name, _ = LIST_OPERATORS[vendor.name]
    operator = getattr(import_module(module), name)(task_id="list", workflow=vendor.workflow, max_results=5)

    summary = operator.execute(context())

    assert summary["count"] == 5 and summary["truncated"] is True
    assert summary["states"] == {"succeeded": 5}
    assert len(json.dumps(summary)) < 10_000  # no raw payloads in XCom
    assert all("raw" not in e for e in summary["executions"])


def test_list_operator_applies_vendor_filters(vendor: Vendor) -> None:
    vendor.emulator.create_executions(vendor.name, vendor.workflow, 3, outcome="success")
    vendor.emulator.create_executions(vendor.name, vendor.workflow, 2, outcome="failure")
    module, name, filters = LIST_OPERATORS[vendor.name]
    operator = getattr(import_module(module), name)(task_id="list", workflow=vendor.workflow, filters=filters)

    summary = operator.execute(context())

    expected = 5 if not filters else 2
    assert summary["count"] == expected and summary["truncated"] is False


@pytest.mark.parametrize("bad", [0, -1, 10_001, "many"])
def test_list_operator_max_results_is_checked(vendor: Vendor, bad: object) -> None:
    module, name, _ = LIST_OPERATORS[vendor.name]
    with pytest.raises(WorkflowInputError, match="max_results"):
        getattr(import_module(module), name)(task_id="list", workflow=vendor.workflow, max_results=bad)


def test_list_operator_refuses_unknown_filters_before_sending(vendor: Vendor) -> None:
    module, name, _ = LIST_OPERATORS[vendor.name]
    operator = getattr(import_module(module), name)(task_id="list", workflow=vendor.workflow, filters={"owner": "x"})
    with pytest.raises(WorkflowInputError, match="owner"):
        operator.execute(context())
    assert vendor.emulator.requests == []


@pytest.fixture
def cloudflare(emulator, set_connection):
    set_connection("cloudflare")
    return emulator


def state_of(instance_id: str, workflow: str = "etl") -> ExecutionState:
    return CloudflareWorkflowsHook().get_execution(workflow, instance_id).state


def status_operator(instance_id: str, action: str) -> CloudflareInstanceStatusOperator:
    return CloudflareInstanceStatusOperator(
        task_id="change_status", workflow="etl", instance_id=instance_id, action=action
    )


def test_cloudflare_pause_resume_terminate(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=30, queued_for=0))
    instance_id = CloudflareWorkflowsHook().start_execution("etl")

    status_operator(instance_id, "pause").execute(context())
    assert state_of(instance_id) is ExecutionState.PAUSED
    status_operator(instance_id, "resume").execute(context())
    assert state_of(instance_id) in (ExecutionState.RUNNING, ExecutionState.QUEUED)
    status_operator(instance_id, "terminate").execute(context())
    assert state_of(instance_id) is ExecutionState.CANCELED


def test_cloudflare_restart_runs_again(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.2, outcome="failure"))
    instance_id = CloudflareWorkflowsHook().start_execution("etl")
    time.sleep(0.4)
    assert state_of(instance_id) is ExecutionState.FAILED

    status_operator(instance_id, "restart").execute(context())

    assert not state_of(instance_id).is_terminal


def test_cloudflare_action_that_does_not_fit_the_state_fails_clearly(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.1))
    instance_id = CloudflareWorkflowsHook().start_execution("etl")
    time.sleep(0.3)

    with pytest.raises(BadRequestError) as caught:
        status_operator(instance_id, "resume").execute(context())

    assert caught.value.vendor == "Cloudflare" and caught.value.operation == "resume_instance"
    assert caught.value.status_code in (400, 409) and caught.value.message


def test_cloudflare_status_action_is_checked_at_parse_time() -> None:
    with pytest.raises(WorkflowInputError, match="action"):
        status_operator("x", "stop")
    templated = status_operator("x", "{{ params.action }}")  # checked when rendered instead
    assert templated.action == "{{ params.action }}"


def test_cloudflare_send_event(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=30))
    instance_id = CloudflareWorkflowsHook().start_execution("etl")

    CloudflareSendEventOperator(
        task_id="approve", workflow="etl", instance_id=instance_id, event_type="approval", payload={"ok": True}
    ).execute(ctx := context())

    [execution] = cloudflare.executions("cloudflare", "etl")
    assert {"type": "approval", "payload": {"ok": True}} in [
        {k: e[k] for k in ("type", "payload")} for e in execution.get("events", [])
    ] or any(r.operation == "event" and r.status == 200 for r in cloudflare.requests)
    assert ctx["ti"].xcom["execution_url"].endswith(f"/instance/{instance_id}")


def test_cloudflare_event_is_never_resent_blindly(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=30))
    instance_id = CloudflareWorkflowsHook().start_execution("etl")
    cloudflare.inject_fault("cloudflare", "event", "503")

    with pytest.raises(Exception, match="503"):
        CloudflareWorkflowsHook().send_event("etl", instance_id, "approval", {"ok": True})

    assert len([r for r in cloudflare.requests if r.operation == "event"]) == 1


def test_cloudflare_batch_waits_for_every_instance(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.3, output={"ok": 1}))
    operator = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="etl", payloads=[{"n": n} for n in range(5)], poll_interval=0.05
    )

    results = operator.execute(ctx := context(TaskStateStore()))

    assert [r["state"] for r in results] == ["succeeded"] * 5
    assert ctx["ti"].xcom["execution_ids"] == [r["id"] for r in results]
    assert len(cloudflare.executions("cloudflare", "etl")) == 5


def test_cloudflare_batch_reports_each_failure(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.2, outcome="failure", error_message="bad row"))
    operator = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="etl", payloads=[{"n": 1}, {"n": 2}], poll_interval=0.05
    )

    with pytest.raises(WorkflowExecutionFailed, match="2 of 2 Cloudflare instances failed") as caught:
        operator.execute(context(TaskStateStore()))
    assert str(caught.value).count("bad row") == 2


@requires_durable_execution
def test_cloudflare_batch_retry_attaches_instead_of_creating_again(cloudflare) -> None:
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.5))
    store = TaskStateStore()
    cloudflare.inject_fault("cloudflare", "get", "401")  # the first try dies while waiting

    with pytest.raises(Exception, match="401"):
        CloudflareRunWorkflowBatchOperator(
            task_id="batch", workflow="etl", payloads=[{"n": 1}, {"n": 2}], poll_interval=0.05
        ).execute(context(store, try_number=1))
    results = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="etl", payloads=[{"n": 1}, {"n": 2}], poll_interval=0.05
    ).execute(context(store, try_number=2))

    assert len(cloudflare.executions("cloudflare", "etl")) == 2
    assert [r["state"] for r in results] == ["succeeded", "succeeded"]


def test_cloudflare_batch_resent_with_existing_ids_follows_every_one(cloudflare) -> None:
    """Cloudflare skips ids that exist and leaves them out of the answer: the operator still waits for them all."""
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=0.5, output={"ok": 1}))
    ids = ["mine-1", "mine-2", "mine-3"]
    CloudflareWorkflowsHook().start_executions_batch("etl", [{"instance_id": i, "params": {}} for i in ids[:2]])

    results = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="etl", payloads=[{"n": n} for n in range(3)], instance_ids=ids, poll_interval=0.05
    ).execute(context())

    assert [r["id"] for r in results] == ids and [r["state"] for r in results] == ["succeeded"] * 3
    assert sorted(e["id"] for e in cloudflare.executions("cloudflare", "etl")) == ids


def test_cloudflare_batch_whose_answer_was_lost_is_resent_and_followed(cloudflare) -> None:
    """Created, answer lost, resent: Cloudflare skips every id (all exist now) and answers an empty list."""
    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=30))
    cloudflare.inject_fault("cloudflare", "start", "reset_after")

    ids = CloudflareWorkflowsHook().start_executions_batch("etl", [{"instance_id": "lost-1", "params": {}}])

    assert ids == ["lost-1"]
    starts = [r for r in cloudflare.requests if r.operation == "start"]
    assert len(starts) == 2 and len(cloudflare.executions("cloudflare", "etl")) == 1


def test_cloudflare_batch_id_neither_created_nor_existing_is_an_error(cloudflare, monkeypatch) -> None:
    from airflow_workflow_provider.core.errors import InvalidResponseError

    hook = CloudflareWorkflowsHook()
    send = hook._call

    def batch_answering_nothing(request: Any, parse: Any, **kwargs: Any) -> Any:
        return [] if request.operation == "start_executions_batch" else send(request, parse, **kwargs)

    monkeypatch.setattr(hook, "_call", batch_answering_nothing)  # a batch that made nothing and said nothing

    with pytest.raises(InvalidResponseError, match="left out instance ghost-1, which does not exist either"):
        hook.start_executions_batch("etl", [{"instance_id": "ghost-1", "params": {}}])


def _run_trigger(trigger: Any) -> list[dict[str, Any]]:
    from airflow_workflow_provider.core.http import close_shared_async_session

    async def collect() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_session()

    return asyncio.run(collect())


def test_cloudflare_batch_defers_one_trigger_that_lists_rather_than_polls_each(cloudflare) -> None:
    from airflow.exceptions import TaskDeferred

    cloudflare.script("cloudflare", "etl", WorkflowScript(duration=1.0, output={"ok": 1}))
    operator = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="etl", payloads=[{"n": n} for n in range(20)], poll_interval=0.2, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(ctx := context(TaskStateStore()))
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)

    [event] = _run_trigger(rebuilt)
    results = operator.execute_complete(ctx, event)

    ids = ctx["ti"].xcom["execution_ids"]
    assert event["status"] == "success" and [r["id"] for r in results] == ids
    assert [r["state"] for r in results] == ["succeeded"] * 20
    gets = [r for r in cloudflare.requests if r.operation == "get"]
    lists = [r for r in cloudflare.requests if r.operation == "list"]
    # Lists told "still running" for all twenty each round; a GET each only for the end (output and all).
    assert lists and len(gets) <= 20 + 2, (len(lists), len(gets))


def test_cloudflare_batch_trigger_reports_failures_and_on_kill_terminates_what_still_runs(cloudflare) -> None:
    from airflow.exceptions import TaskDeferred

    from airflow_workflow_provider.triggers.cloudflare import CloudflareWorkflowBatchTrigger

    cloudflare.script("cloudflare", "bad", WorkflowScript(duration=0.3, outcome="failure", error_message="bad row"))
    operator = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="bad", payloads=[{"n": 1}, {"n": 2}], poll_interval=0.1, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(ctx := context(TaskStateStore()))
    [event] = _run_trigger(deferred.value.trigger)
    assert event["status"] == "failure"
    with pytest.raises(WorkflowExecutionFailed, match="2 of 2 Cloudflare instances failed") as caught:
        operator.execute_complete(ctx, event)
    assert str(caught.value).count("bad row") == 2

    cloudflare.script("cloudflare", "long", WorkflowScript(duration=60))
    ids = CloudflareWorkflowsHook().start_executions_batch("long", [{"params": {}}, {"params": {}}])
    trigger = CloudflareWorkflowBatchTrigger(
        cloudflare_conn_id="cloudflare_workflows_default", workflow="long", execution_ids=ids, poll_interval=0.1
    )

    async def kill() -> None:
        from airflow_workflow_provider.core.http import close_shared_async_session

        await trigger.on_kill()
        await close_shared_async_session()

    asyncio.run(kill())
    assert [state_of(i, "long") for i in ids] == [ExecutionState.CANCELED] * 2


def test_cloudflare_batch_on_kill_terminates_what_still_runs(cloudflare) -> None:
    cloudflare.script("cloudflare", "long", WorkflowScript(duration=60))
    operator = CloudflareRunWorkflowBatchOperator(
        task_id="batch", workflow="long", payloads=[{"n": 1}, {"n": 2}], wait_for_completion=False
    )
    operator.execute(context(TaskStateStore()))
    operator.on_kill()
    states = [CloudflareWorkflowsHook().get_execution("long", i).state for i in operator._started]
    assert states == [ExecutionState.CANCELED] * 2


def test_cloudflare_batch_input_is_checked(cloudflare) -> None:
    with pytest.raises(WorkflowInputError, match="instance_ids"):
        CloudflareRunWorkflowBatchOperator(
            task_id="b", workflow="etl", payloads=[{"n": 1}], instance_ids=["a", "b"]
        ).execute(context())
    with pytest.raises(WorkflowInputError, match="at most 100"):
        CloudflareWorkflowsHook().start_executions_batch("etl", [{"params": {}}] * 101)
    assert cloudflare.requests == []


def test_sailpoint_history(emulator, set_connection) -> None:
    from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook

    set_connection("sailpoint")
    emulator.script("sailpoint", "wf", WorkflowScript(duration=0.2))
    hook = SailPointWorkflowsHook()
    execution_id = hook.start_execution("wf", mode="test")
    time.sleep(0.4)

    history = hook.get_execution_history(execution_id)

    assert history[0]["type"] == "WorkflowExecutionStarted"
    assert history[-1]["type"] == "WorkflowExecutionCompleted"
