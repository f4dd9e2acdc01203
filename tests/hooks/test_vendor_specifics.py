"""What only one vendor does: Datadog's rate-limit header, Cloudflare ids and auth, SailPoint tokens and modes."""

from __future__ import annotations

import time

import pytest

from airflow_workflow_provider.core.errors import (
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    WorkflowInputError,
)
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import TOKEN_REFRESH_MARGIN, SailPointWorkflowsHook
from airflow_workflow_provider.testing.emulator import WorkflowScript


def test_datadog_waits_x_ratelimit_reset(emulator, set_connection) -> None:
    set_connection("datadog")
    hook = DatadogWorkflowsHook()
    execution_id = hook.start_execution("wf-1")
    emulator.inject_fault("datadog", "get", "429", retry_after=1, header="reset")  # no Retry-After at all

    started = time.monotonic()
    assert hook.get_execution("wf-1", execution_id).id == execution_id
    assert time.monotonic() - started >= 0.9


def test_datadog_steps_and_failing_step(emulator, set_connection) -> None:
    set_connection("datadog")
    emulator.script(
        "datadog",
        "wf-2",
        WorkflowScript(duration=0.2, outcome="failure", steps=["fetch", "transform", "push"], failing_step="transform"),
    )
    hook = DatadogWorkflowsHook()
    execution_id = hook.start_execution("wf-2", {"k": "v"})
    time.sleep(0.4)

    execution = hook.get_execution("wf-2", execution_id)

    assert execution.state is ExecutionState.FAILED
    assert execution.failing_step == "transform"
    assert [s["stepName"] for s in execution.steps][:2] == ["fetch", "transform"]


@pytest.mark.parametrize("site", ["ddog-gov.com", "us2.ddog-gov.com"])
def test_datadog_gov_site_connection_is_refused_before_any_request(emulator, set_connection, site: str) -> None:
    conn_id = set_connection("datadog", conn_id="gov", overrides={"host": site})
    with pytest.raises(WorkflowInputError, match="does not offer Workflow Automation"):
        DatadogWorkflowsHook(conn_id).start_execution("wf")
    assert emulator.requests == []


def test_cloudflare_polls_with_simple_true(emulator, set_connection) -> None:
    set_connection("cloudflare")
    hook = CloudflareWorkflowsHook()
    execution_id = hook.start_execution("etl")
    hook.get_execution("etl", execution_id)
    execution = hook.get_execution("etl", execution_id)
    assert execution.steps == []  # simple=true leaves the steps out
    assert all(r.path.endswith(execution_id) for r in emulator.requests if r.operation == "get")


def test_cloudflare_caller_id_attaches_on_already_exists(emulator, set_connection) -> None:
    set_connection("cloudflare")
    hook = CloudflareWorkflowsHook()

    first = hook.start_execution("etl", {"n": 1}, instance_id="nightly-2026-11-23")
    again = hook.start_execution("etl", {"n": 1}, instance_id="nightly-2026-11-23")

    assert first == again == "nightly-2026-11-23"
    assert len(emulator.executions("cloudflare", "etl")) == 1


def test_cloudflare_start_with_caller_id_is_resent_after_a_lost_answer(emulator, set_connection) -> None:
    set_connection("cloudflare")
    emulator.inject_fault("cloudflare", "start", "reset_after")  # created, then the answer was lost

    execution_id = CloudflareWorkflowsHook().start_execution("etl", instance_id="run-42")

    assert execution_id == "run-42"
    assert [e["id"] for e in emulator.executions("cloudflare", "etl")] == ["run-42"]


@pytest.mark.parametrize("bad", ["cf_" + "0" * 64, "-x", "a b", "x" * 101])
def test_cloudflare_bad_instance_ids_never_leave(emulator, set_connection, bad: str) -> None:
    set_connection("cloudflare")
    with pytest.raises(WorkflowInputError, match="instance_id"):
        CloudflareWorkflowsHook().start_execution("etl", instance_id=bad)
    assert emulator.requests == []


def test_cloudflare_global_api_key_auth(emulator, set_connection) -> None:
    creds = emulator.credentials
    conn_id = set_connection(
        "cloudflare",
        conn_id="legacy",
        overrides={"login": creds.cloudflare_email, "password": creds.cloudflare_global_api_key},
    )
    hook = CloudflareWorkflowsHook(conn_id)
    assert hook.test_connection()[0]
    assert hook.start_execution("etl")


def test_cloudflare_unknown_account_is_reported(emulator, set_connection) -> None:
    conn_id = set_connection("cloudflare", conn_id="other-account", account_id="not-my-account")
    ok, message = CloudflareWorkflowsHook(conn_id).test_connection()
    assert not ok and "account" in message


def test_cloudflare_list_filters(emulator, set_connection) -> None:
    set_connection("cloudflare")
    emulator.create_executions("cloudflare", "etl", 3, outcome="success")
    emulator.create_executions("cloudflare", "etl", 2, outcome="failure")
    hook = CloudflareWorkflowsHook()

    errored = list(hook.list_executions("etl", status="errored"))

    assert len(errored) == 2 and {e.state for e in errored} == {ExecutionState.FAILED}
    with pytest.raises(WorkflowInputError, match="status"):
        hook.list_executions("etl", status="finished")
    assert len(list(hook.list_executions("etl", date_start="2000-01-01T00:00:00Z"))) == 5


def test_sailpoint_token_is_cached_and_refreshed_once_on_401(emulator, set_connection) -> None:
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()
    execution_id = hook.start_execution("wf")
    hook.get_execution("wf", execution_id)
    assert len([r for r in emulator.requests if r.operation == "token"]) == 1

    emulator.revoke_tokens()
    hook.get_execution("wf", execution_id)

    assert len([r for r in emulator.requests if r.operation == "token"]) == 2


def test_sailpoint_token_is_refreshed_before_it_expires(emulator, set_connection) -> None:
    emulator.credentials.sailpoint_token_ttl = TOKEN_REFRESH_MARGIN + 1.0  # kept for 1 s
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()
    execution_id = hook.start_execution("wf")
    time.sleep(1.1)

    hook.get_execution("wf", execution_id)

    tokens = [r for r in emulator.requests if r.operation == "token"]
    gets = [r for r in emulator.requests if r.operation == "get"]
    assert len(tokens) == 2 and all(r.status == 200 for r in gets)


@pytest.mark.parametrize("ttl", [TOKEN_REFRESH_MARGIN, 1.0, 0])
def test_sailpoint_token_living_no_longer_than_the_refresh_margin_is_refused(emulator, set_connection, ttl) -> None:
    """Such a token would need a token request before every call: refused, with the reason."""
    emulator.credentials.sailpoint_token_ttl = ttl
    set_connection("sailpoint", max_attempts=1)
    with pytest.raises(InvalidResponseError, match=r"expires_in .* refresh margin"):
        SailPointWorkflowsHook().start_execution("wf")
    assert [r.operation for r in emulator.requests] == ["token"]


def test_sailpoint_bad_client_secret(emulator, set_connection) -> None:
    conn_id = set_connection("sailpoint", conn_id="bad", overrides={"password": "nope-nope"})
    ok, message = SailPointWorkflowsHook(conn_id).test_connection()
    assert not ok and "refused the credentials" in message and "nope-nope" not in message


@pytest.mark.parametrize(("mode", "enabled", "path_part"), [("test", False, "/test"), ("external", True, "/external/")])
def test_sailpoint_start_modes(emulator, set_connection, mode: str, enabled: bool, path_part: str) -> None:
    set_connection("sailpoint")
    emulator.script("sailpoint", "wf-mode", WorkflowScript(duration=0.2, enabled=enabled))
    hook = SailPointWorkflowsHook()

    execution_id = hook.start_execution("wf-mode", {"who": "jane"}, mode=mode)

    assert execution_id
    [start] = [r for r in emulator.requests if r.operation == "start"]
    assert path_part in start.path


def test_sailpoint_wrong_mode_is_a_clear_error(emulator, set_connection) -> None:
    set_connection("sailpoint")
    emulator.script("sailpoint", "wf-enabled", WorkflowScript(enabled=True))

    with pytest.raises(BadRequestError) as caught:
        SailPointWorkflowsHook().start_execution("wf-enabled", mode="test")

    assert caught.value.tracking_id and "tracking id" in str(caught.value)
    with pytest.raises(WorkflowInputError, match="mode"):
        SailPointWorkflowsHook().start_execution("wf-enabled", mode="dry-run")


def test_sailpoint_archived_execution_is_not_found(emulator, set_connection) -> None:
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()
    execution_id = hook.start_execution("wf")
    emulator.archive_execution("sailpoint", execution_id)

    with pytest.raises(NotFoundError):
        hook.get_execution("wf", execution_id)


def test_sailpoint_failure_reason_from_history(emulator, set_connection) -> None:
    set_connection("sailpoint")
    emulator.script(
        "sailpoint",
        "wf-f",
        WorkflowScript(duration=0.2, outcome="failure", failing_step="Send Email", error_message="mailbox full"),
    )
    hook = SailPointWorkflowsHook()
    execution_id = hook.start_execution("wf-f")
    time.sleep(0.4)

    explained = hook.explain_failure(hook.get_execution("wf-f", execution_id))

    assert explained.failing_step == "Send Email" and explained.error_message == "mailbox full"


def test_sailpoint_list_filters(emulator, set_connection) -> None:
    set_connection("sailpoint")
    emulator.create_executions("sailpoint", "wf-l", 4, outcome="success")
    emulator.create_executions("sailpoint", "wf-l", 1, outcome="failure")
    hook = SailPointWorkflowsHook()

    failed = list(hook.list_executions("wf-l", status="Failed"))

    assert [e.state for e in failed] == [ExecutionState.FAILED]
    assert len(list(hook.list_executions("wf-l", start_time_gt="2000-01-01T00:00:00Z"))) == 5


def test_api_version_prefix(emulator, set_connection) -> None:
    """api_version names the versioned API a tenant without the per-service paths is asked instead."""
    emulator.sailpoint_per_service(False)
    conn_id = set_connection("sailpoint", conn_id="beta", api_version="beta")
    hook = SailPointWorkflowsHook(conn_id)
    hook.start_execution("wf")
    hook.start_execution("wf")
    # (A 401 from a token another emulator issued on this port is retried: not a path decision.)
    starts = [r.path for r in emulator.requests if r.operation == "start" and r.status != 401]
    assert starts[0].startswith("/sailpoint/workflows/v1/")
    assert all(path.startswith("/sailpoint/beta/") for path in starts[1:]) and len(starts) == 3
