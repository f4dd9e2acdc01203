"""The hooks against the emulator where it now answers as the vendors' own sources say.

Datadog: the success and failure strings are undocumented, so the hook is followed to the end under
several plausible vocabularies (``DATADOG_VOCABULARIES``); the Test button tells a refused API key from a
refused application key. Cloudflare: instances a cron trigger made, listing with a direction over several
pages, and listing where answers carry no cursor.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_workflow_provider.core.http import close_shared_async_session
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.testing.emulator import DATADOG_VOCABULARIES, WorkflowEmulator, WorkflowScript
from airflow_workflow_provider.triggers.datadog import DatadogWorkflowTrigger

DOCUMENTED_WORDS = {"succeeded-failed", "success-failure", "completed-error"}


def follow(hook: Any, workflow: str, execution_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = hook.get_execution(workflow, execution_id)
        if execution.is_terminal:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} not terminal after {timeout} s")


@pytest.mark.parametrize("vocabulary", sorted(DATADOG_VOCABULARIES))
def test_datadog_outcomes_under_each_vocabulary(emulator: WorkflowEmulator, set_connection, vocabulary: str) -> None:
    emulator.set_datadog_vocabulary(vocabulary)
    emulator.script("datadog", "wf-ok", WorkflowScript(duration=0.3))
    emulator.script("datadog", "wf-bad", WorkflowScript(duration=0.3, outcome="failure", failing_step="load"))
    hook = DatadogWorkflowsHook(set_connection("datadog"))

    ok = follow(hook, "wf-ok", hook.start_execution("wf-ok"))
    bad = follow(hook, "wf-bad", hook.start_execution("wf-bad"))

    assert ok.state is ExecutionState.SUCCEEDED, ok.state_note
    assert bad.state is ExecutionState.FAILED and bad.failing_step == "load"
    # Read where the words are ones the hook knows; inferred, and said so, where they are not.
    assert (ok.state_note is None) is (vocabulary in DOCUMENTED_WORDS)
    assert (bad.state_note is None) is (vocabulary in DOCUMENTED_WORDS)


def test_datadog_cancel_is_read_as_recorded(emulator: WorkflowEmulator, set_connection) -> None:
    emulator.set_datadog_vocabulary("opaque")
    emulator.script("datadog", "wf", WorkflowScript(duration=30, steps=["Sleep"]))
    hook = DatadogWorkflowsHook(set_connection("datadog"))
    execution_id = hook.start_execution("wf")
    hook.cancel_execution("wf", execution_id)

    execution = hook.get_execution("wf", execution_id)

    assert (execution.state, execution.vendor_status, execution.state_note) == (
        ExecutionState.CANCELED,
        "CANCELED",
        None,
    )


def test_datadog_deferred_wait_ends_under_an_opaque_vocabulary(emulator: WorkflowEmulator, set_connection) -> None:
    emulator.set_datadog_vocabulary("opaque")
    emulator.script("datadog", "wf", WorkflowScript(duration=0.3))
    conn_id = set_connection("datadog")
    execution_id = DatadogWorkflowsHook(conn_id).start_execution("wf")
    trigger = DatadogWorkflowTrigger(
        datadog_conn_id=conn_id, workflow="wf", execution_id=execution_id, poll_interval=0.05
    )

    async def collect() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_session()

    events = asyncio.run(asyncio.wait_for(collect(), timeout=60))

    assert [e["status"] for e in events] == ["success"]
    assert "every step succeeded" in events[0]["execution"]["state_note"]


def test_datadog_test_button_tells_which_key_was_refused(emulator: WorkflowEmulator, set_connection) -> None:
    wrong_app_key = set_connection("datadog", conn_id="dd_app", application_key_secret="not-the-app-key")
    wrong_api_key = set_connection("datadog", conn_id="dd_api", overrides={"password": "not-the-api-key"})

    ok, message = DatadogWorkflowsHook(wrong_app_key).test_connection()
    assert not ok and "accepted the API key" in message and "registered for Actions API access" in message

    ok, message = DatadogWorkflowsHook(wrong_api_key).test_connection()
    assert not ok and "refused the API key" in message
    assert "not-the" not in message
    assert [r.operation for r in emulator.requests].count("validate") == 2


CRON = "*/30 * * * *"


def test_cloudflare_cron_made_instances_can_be_followed_and_controlled(
    emulator: WorkflowEmulator, set_connection
) -> None:
    emulator.script("cloudflare", "etl", WorkflowScript(duration=30))
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    instance_id = emulator.start_cron_instance("etl", CRON)
    assert instance_id.startswith(f"{CRON}-")

    listed = list(hook.list_executions("etl"))
    assert [(e.id, e.raw["trigger_source"]) for e in listed] == [(instance_id, "cron")]
    execution = hook.get_execution("etl", instance_id)
    assert execution.id == instance_id and execution.state in (ExecutionState.QUEUED, ExecutionState.RUNNING)
    assert hook.change_instance_status("etl", instance_id, "pause") == "paused"
    assert hook.change_instance_status("etl", instance_id, "resume") in ("queued", "running")
    hook.send_event("etl", instance_id, "nudge", {"n": 1})
    hook.cancel_execution("etl", instance_id)
    assert hook.get_execution("etl", instance_id).state is ExecutionState.CANCELED
    full = hook.explain_failure(hook.get_execution("etl", instance_id))
    assert full.raw.get("schedule", {}).get("cron") == CRON
    assert emulator.executions("cloudflare", "etl")[0]["events"] == [{"type": "nudge", "payload": {"n": 1}}]


@pytest.mark.parametrize("cursors", [True, False], ids=["cursor", "page-numbers"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_cloudflare_listing_reaches_every_instance_in_order(
    emulator: WorkflowEmulator, set_connection, cursors: bool, direction: str
) -> None:
    emulator.set_cloudflare_list_cursors(cursors)
    oldest_first = emulator.create_executions("cloudflare", "etl", 7)
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))

    listed = [e.id for e in hook.list_executions("etl", per_page=3, direction=direction)]

    assert listed == (oldest_first if direction == "asc" else oldest_first[::-1])
    lists = [r for r in emulator.requests if r.operation == "list"]
    assert len(lists) == 3  # 3 + 3 + 1: no page asked twice, none missed


def test_cloudflare_rolling_back_is_a_filter_the_api_takes(emulator: WorkflowEmulator, set_connection) -> None:
    emulator.create_executions("cloudflare", "etl", 2)
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    assert list(hook.list_executions("etl", status="rollingBack")) == []


def test_cloudflare_upper_case_cf_ids_are_not_reserved(emulator: WorkflowEmulator, set_connection) -> None:
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    instance_id = "cf_" + "ABCDEF0123456789" * 4
    assert hook.start_execution("etl", instance_id=instance_id) == instance_id
