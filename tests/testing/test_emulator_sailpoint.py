"""The emulated SailPoint Workflows API, driven with raw HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
import requests

from airflow_workflow_provider.testing.emulator import EmulatorCredentials, WorkflowEmulator, WorkflowScript
from tests.testing.emulator_support import CREDS, FAST, newest_first, parse_iso, wait_for

pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]


def assert_sp_envelope(response: requests.Response, status: int, detail_code: str, text: str | None = None) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}
    assert body["detailCode"] == detail_code and len(body["trackingId"]) == 32
    assert body["messages"][0]["locale"] == "en-US" and body["messages"][0]["localeOrigin"] == "DEFAULT"
    if text is not None:
        assert body["messages"][0]["text"] == text


def test_sailpoint_token(emu: WorkflowEmulator, http: requests.Session) -> None:
    url = f"{emu.base_url('sailpoint')}/oauth/token"
    form = {"grant_type": "client_credentials", "client_id": CREDS.sailpoint_client_id}
    response = http.post(url, data={**form, "client_secret": CREDS.sailpoint_client_secret})
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 749 and body["scope"] == "sp:scopes:all"

    basic = base64.b64encode(f"{CREDS.sailpoint_client_id}:{CREDS.sailpoint_client_secret}".encode()).decode()
    via_basic = http.post(url, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert via_basic.status_code == 200 and via_basic.json()["access_token"] != body["access_token"]

    refused = http.post(url, data={**form, "client_secret": "wrong"})
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_client", "error_description": "Bad client credentials"}
    assert http.post(url, data={**form, "grant_type": "password"}).status_code == 400


def test_sailpoint_api_needs_a_live_token(
    emu: WorkflowEmulator, http: requests.Session, sp: Callable[..., requests.Response]
) -> None:
    url = f"{emu.base_url('sailpoint')}/v3/workflows/wf/executions"
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        response = http.get(url, headers=headers)
        assert (response.status_code, response.json()) == (
            401,
            {"error": "JWT validation failed: JWT is expired"},
        )
    assert sp("GET", "/v3/workflows/wf/executions").status_code == 200
    emu.revoke_tokens()
    assert sp("GET", "/v3/workflows/wf/executions").status_code == 401


def test_sailpoint_token_expires() -> None:
    with WorkflowEmulator(EmulatorCredentials(sailpoint_token_ttl=0.2)) as emu, requests.Session() as http:
        response = http.post(
            f"{emu.base_url('sailpoint')}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CREDS.sailpoint_client_id,
                "client_secret": CREDS.sailpoint_client_secret,
            },
        )
        assert response.json()["expires_in"] == 0.2
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        url = f"{emu.base_url('sailpoint')}/v3/workflows/wf/executions"
        assert http.get(url, headers=headers).status_code == 200
        time.sleep(0.25)
        assert http.get(url, headers=headers).status_code == 401


def test_sailpoint_execution_lifecycle(emu: WorkflowEmulator, sp: Callable[..., requests.Response]) -> None:
    emu.script("sailpoint", "wf-1", WorkflowScript(duration=0.3, queued_for=0.05))
    started = sp("POST", "/v3/workflows/wf-1/test", json={"input": {"user": "ada"}})
    assert started.status_code == 200
    assert set(started.json()) == {"workflowExecutionId"}
    execution_id = started.json()["workflowExecutionId"]

    seen = wait_for(
        lambda: sp("GET", f"/v3/workflow-executions/{execution_id}").json(),
        lambda e: e["status"] not in ("Queued", "Running"),
    )
    statuses = [e["status"] for e in seen]
    assert statuses[0] == "Queued" and "Running" in statuses and statuses[-1] == "Completed"
    final = seen[-1]
    assert set(final) == {"id", "workflowId", "requestId", "startTime", "closeTime", "status"}
    assert final["id"] == execution_id and final["workflowId"] == "wf-1" and len(final["requestId"]) == 32
    assert "closeTime" not in seen[0] and parse_iso(final["closeTime"]) >= parse_iso(final["startTime"])

    history = sp("GET", f"/beta/workflow-executions/{execution_id}/history").json()
    assert [event["type"] for event in history] == [
        "WorkflowExecutionStarted",
        "ActivityTaskScheduled",
        "ActivityTaskCompleted",
        "ActivityTaskScheduled",
        "ActivityTaskCompleted",
        "WorkflowExecutionCompleted",
    ]
    assert history[0]["attributes"]["input"] == {"user": "ada"}
    assert history[1]["attributes"]["displayName"] == "step_1"
    assert all(event["timestamp"].endswith("Z") for event in history)


def test_sailpoint_failure_history(emu: WorkflowEmulator, sp: Callable[..., requests.Response]) -> None:
    emu.script(
        "sailpoint",
        "wf",
        WorkflowScript(outcome="failure", steps=["a", "b", "c"], failing_step="b", error_message="no manager", **FAST),
    )
    execution_id = sp("POST", "/v2025/workflows/execute/external/wf", json={"input": {}}).json()["workflowExecutionId"]
    wait_for(
        lambda: sp("GET", f"/v2025/workflow-executions/{execution_id}").json()["status"],
        lambda s: s == "Failed",
    )
    history = sp("GET", f"/v3/workflow-executions/{execution_id}/history").json()
    assert [event["type"] for event in history][-3:] == [
        "ActivityTaskScheduled",
        "ActivityTaskFailed",
        "WorkflowExecutionFailed",
    ]
    assert history[-2]["attributes"] == {"displayName": "b", "error": "no manager"}


def test_sailpoint_test_and_external_triggers(emu: WorkflowEmulator, sp: Callable[..., requests.Response]) -> None:
    external = sp("POST", "/v3/workflows/execute/external/wf", json={"input": {"x": 1}})
    assert external.status_code == 200
    assert external.json()["message"] == "Workflow was executed successfully."
    assert sp("POST", "/beta/workflows/wf/test", json={"input": {}}).status_code == 200

    emu.script("sailpoint", "enabled-wf", WorkflowScript(enabled=True))
    assert_sp_envelope(
        sp("POST", "/v3/workflows/enabled-wf/test", json={"input": {}}),
        400,
        "400.1 Bad Request Content",
        "Workflow must be disabled to test",
    )
    assert sp("POST", "/v3/workflows/execute/external/enabled-wf", json={"input": {}}).status_code == 200
    emu.script("sailpoint", "disabled-wf", WorkflowScript(enabled=False))
    # api-specs: 200 with only a message, and nothing started, for a workflow that is not enabled.
    not_run = sp("POST", "/v3/workflows/execute/external/disabled-wf", json={})
    assert not_run.status_code == 200
    assert not_run.json() == {
        "message": "Workflow was not executed externally. Check enabled flag on workflow definition"
    }
    assert sp("POST", "/v3/workflows/disabled-wf/test", json={}).status_code == 200
    assert sp("POST", "/v3/workflows/wf/test", json={"input": [1]}).status_code == 400
    assert_sp_envelope(sp("POST", "/v3x/workflows/wf/test", json={}), 404, "404 Not found")
    assert len(emu.executions("sailpoint")) == 4


def test_sailpoint_cancel_and_archive(emu: WorkflowEmulator, sp: Callable[..., requests.Response]) -> None:
    emu.script("sailpoint", "wf", WorkflowScript(duration=30))
    execution_id = sp("POST", "/v3/workflows/wf/test", json={}).json()["workflowExecutionId"]
    cancel = sp("POST", f"/v3/workflow-executions/{execution_id}/cancel")
    assert cancel.status_code == 204 and cancel.content == b""
    assert sp("GET", f"/v3/workflow-executions/{execution_id}").json()["status"] == "Canceled"
    assert sp("GET", f"/v3/workflow-executions/{execution_id}/history").json()[-1]["type"] == (
        "WorkflowExecutionCanceled"
    )
    assert_sp_envelope(sp("POST", f"/v3/workflow-executions/{execution_id}/cancel"), 400, "400.1 Bad Request Content")

    emu.archive_execution("sailpoint", execution_id)
    assert_sp_envelope(sp("GET", f"/v3/workflow-executions/{execution_id}"), 404, "404 Not found")
    assert sp("GET", "/v3/workflows/wf/executions").json() == []
    with pytest.raises(KeyError):
        emu.archive_execution("sailpoint", execution_id)


def test_sailpoint_list(emu: WorkflowEmulator, sp: Callable[..., requests.Response]) -> None:
    emu.create_executions("sailpoint", "wf", 20)
    emu.create_executions("sailpoint", "wf", 5, outcome="failure")
    ordered = newest_first(emu, "sailpoint", "wf")
    ids = [e["id"] for e in ordered]

    page = sp("GET", "/v3/workflows/wf/executions", params={"limit": 10, "offset": 5, "count": "true"})
    assert page.status_code == 200 and page.headers["X-Total-Count"] == "25"
    assert [e["id"] for e in page.json()] == ids[5:15]
    assert "X-Total-Count" not in sp("GET", "/v3/workflows/wf/executions").headers
    assert len(sp("GET", "/v3/workflows/wf/executions").json()) == 25

    only_failed = sp("GET", "/v3/workflows/wf/executions", params={"filters": 'status eq "Failed"', "count": "true"})
    assert only_failed.headers["X-Total-Count"] == "5"
    assert {e["status"] for e in only_failed.json()} == {"Failed"}

    tenth = page.json()[4]  # ids[9]
    after = sp("GET", "/v3/workflows/wf/executions", params={"filters": f'start_time gt "{tenth["startTime"]}"'})
    assert [e["id"] for e in after.json()] == ids[:9]
    exact = sp("GET", "/v3/workflows/wf/executions", params={"filters": f'start_time eq "{tenth["startTime"]}"'})
    assert [e["id"] for e in exact.json()] == [tenth["id"]]
    both = sp(
        "GET",
        "/v3/workflows/wf/executions",
        params={"filters": f'status eq "Completed" and start_time le "{tenth["startTime"]}"'},
    )
    assert [e["id"] for e in both.json()] == [e["id"] for e in ordered[9:] if e["status"] == "Completed"]

    for bad in (
        {"limit": 251},
        {"offset": -1},
        {"filters": 'colour eq "red"'},
        {"filters": 'status gt "Failed"'},
        {"filters": "status eq Failed"},
        {"filters": 'status eq "Failed" and'},
    ):
        assert_sp_envelope(sp("GET", "/v3/workflows/wf/executions", params=bad), 400, "400.1 Bad Request Content")
