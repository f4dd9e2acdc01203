"""The workflow emulator, driven with raw HTTP (requests / aiohttp), not through the provider's hooks."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from airflow_workflow_provider.testing.emulator import (
    EmulatorCredentials,
    RequestRecord,
    WorkflowEmulator,
    WorkflowScript,
)

pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]

CREDS = EmulatorCredentials()
DD_HEADERS = {"DD-API-KEY": CREDS.datadog_api_key, "DD-APPLICATION-KEY": CREDS.datadog_application_key}
CF_HEADERS = {"Authorization": f"Bearer {CREDS.cloudflare_api_token}"}
REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = {"duration": 0.2, "queued_for": 0.05}


@pytest.fixture
def emu(workflow_emulator: WorkflowEmulator) -> WorkflowEmulator:
    return workflow_emulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    # One keep-alive session per test, as a hook would hold.
    with requests.Session() as session:
        yield session


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
    """Poll ``fetch`` until ``done``; return every value seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(fetch())
        if done(seen[-1]):
            return seen
        time.sleep(0.03)
    raise AssertionError(f"condition not reached in {timeout} s; last value {seen[-1]!r}")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def newest_first(emu: WorkflowEmulator, vendor: str, workflow: str) -> list[dict[str, Any]]:
    """The order the list endpoints use: creation time, newest first (seeded executions are back-dated)."""
    snapshot = emu.executions(vendor, workflow)
    order = sorted(range(len(snapshot)), key=lambda i: (parse_iso(snapshot[i]["created_at"]), i), reverse=True)
    return [snapshot[i] for i in order]


# -- Datadog -----------------------------------------------------------------------------------------


def dd_url(emu: WorkflowEmulator, workflow: str, suffix: str = "") -> str:
    return f"{emu.base_url('datadog')}/api/v2/workflows/{workflow}/instances{suffix}"


def dd_start(http: requests.Session, emu: WorkflowEmulator, workflow: str, payload: Any = None) -> str:
    response = http.post(dd_url(emu, workflow), json={"meta": {"payload": payload or {}}}, headers=DD_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def dd_get(http: requests.Session, emu: WorkflowEmulator, workflow: str, iid: str) -> dict[str, Any]:
    response = http.get(dd_url(emu, workflow, f"/{iid}"), headers=DD_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["data"]["attributes"]


def test_datadog_runs_to_success(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("datadog", "wf-ok", WorkflowScript(duration=0.3, queued_for=0.05))
    response = http.post(dd_url(emu, "wf-ok"), json={"meta": {"payload": {"day": "mon"}}}, headers=DD_HEADERS)
    assert response.status_code == 200
    body = response.json()
    iid = body["data"]["id"]
    assert body == {"data": {"id": iid, "type": "workflow_instances"}, "meta": {"workflowId": "wf-ok"}}
    assert uuid.UUID(iid)

    seen = wait_for(
        lambda: dd_get(http, emu, "wf-ok", iid), lambda a: a["instanceStatus"]["detailsKind"] != "IN_PROGRESS"
    )
    final = seen[-1]
    assert seen[0]["instanceStatus"] == {"detailsKind": "IN_PROGRESS"}
    assert seen[0]["endTimestamp"] is None and seen[0]["outputs"] == {}
    assert final["instanceStatus"]["detailsKind"] == "SUCCEEDED"
    assert final["id"] == iid and final["workflowId"] == "wf-ok"
    assert final["payload"] == {"day": "mon"}
    assert final["outputs"] == {"result": "ok", "input": {"day": "mon"}}
    assert parse_iso(final["endTimestamp"]) >= parse_iso(final["startTimestamp"])
    assert final["startTimestamp"].endswith("Z")
    assert [(s["stepName"], s["status"]) for s in final["stepStateAssociations"]] == [
        ("step_1", "SUCCEEDED"),
        ("step_2", "SUCCEEDED"),
    ]
    # Steps appear as they are reached: never more than the final list, in order.
    for attributes in seen:
        names = [s["stepName"] for s in attributes["stepStateAssociations"]]
        assert names == ["step_1", "step_2"][: len(names)]
    assert emu.executions("datadog") == [
        {
            "id": iid,
            "vendor": "datadog",
            "workflow": "wf-ok",
            "status": "SUCCEEDED",
            "created_at": emu.executions("datadog")[0]["created_at"],
            "payload": {"day": "mon"},
        }
    ]


def test_datadog_failure_reports_the_failing_step(emu: WorkflowEmulator, http: requests.Session) -> None:
    # No script: a workflow id containing "fail" fails by default.
    emu.script("datadog", "other", WorkflowScript(**FAST))
    iid = dd_start(http, emu, "nightly-fail")
    emu.script("datadog", "nightly-fail", WorkflowScript(duration=5))  # a later script leaves it alone
    attributes = wait_for(
        lambda: dd_get(http, emu, "nightly-fail", iid),
        lambda a: a["instanceStatus"]["detailsKind"] != "IN_PROGRESS",
        timeout=3,
    )[-1]
    assert attributes["instanceStatus"]["detailsKind"] == "FAILED"
    assert attributes["outputs"] == {}
    assert attributes["stepStateAssociations"][-1] == {
        "stepName": "step_2",
        "status": "FAILED",
        "error": {"message": "Simulated failure"},
    }


def test_datadog_failing_step_stops_the_workflow(emu: WorkflowEmulator, http: requests.Session) -> None:
    script = WorkflowScript(
        outcome="failure",
        steps=["extract", "load", "notify"],
        failing_step="load",
        error_message="disk full",
        **FAST,
    )
    emu.script("datadog", "wf", script)
    iid = dd_start(http, emu, "wf")
    attributes = wait_for(lambda: dd_get(http, emu, "wf", iid), lambda a: a["endTimestamp"] is not None)[-1]
    steps = attributes["stepStateAssociations"]
    assert [(s["stepName"], s["status"]) for s in steps] == [("extract", "SUCCEEDED"), ("load", "FAILED")]
    assert steps[1]["error"] == {"message": "disk full"}


def test_datadog_rejects_wrong_keys(emu: WorkflowEmulator, http: requests.Session) -> None:
    missing = http.post(dd_url(emu, "wf"), json={}, headers={"DD-APPLICATION-KEY": CREDS.datadog_application_key})
    assert (missing.status_code, missing.json()) == (403, {"errors": ["Forbidden"]})
    wrong_app = http.get(dd_url(emu, "wf"), headers={"DD-API-KEY": CREDS.datadog_api_key, "DD-APPLICATION-KEY": "nope"})
    assert wrong_app.status_code == 403
    assert wrong_app.json() == {"errors": [{"code": "FORBIDDEN", "detail": "Failed permission authorization checks"}]}
    assert emu.executions("datadog") == []


def test_datadog_start_body_validation(emu: WorkflowEmulator, http: requests.Session) -> None:
    for bad in (b"[1, 2]", b"{not json", b'{"meta": {"payload": [1]}}', b'{"meta": 3}'):
        response = http.post(dd_url(emu, "wf"), data=bad, headers={**DD_HEADERS, "Content-Type": "application/json"})
        assert (response.status_code, response.json()) == (400, {"errors": ["Bad Request"]}), bad
    assert http.post(dd_url(emu, "wf"), json={}, headers=DD_HEADERS).status_code == 200
    assert http.post(dd_url(emu, "wf"), headers=DD_HEADERS).status_code == 200
    assert [e["payload"] for e in emu.executions("datadog")] == [{}, {}]


def test_datadog_list_pages(emu: WorkflowEmulator, http: requests.Session) -> None:
    ok = emu.create_executions("datadog", "wf", 20)
    failed = emu.create_executions("datadog", "wf", 3, outcome="failure")
    canceled = emu.create_executions("datadog", "wf", 2, outcome="canceled")
    emu.create_executions("datadog", "another", 4)
    expected = [e["id"] for e in newest_first(emu, "datadog", "wf")]
    assert set(expected) == set(ok + failed + canceled)

    pages = []
    for number in range(4):
        response = http.get(dd_url(emu, "wf"), params={"page[size]": 10, "page[number]": number}, headers=DD_HEADERS)
        assert response.status_code == 200
        pages.append(response.json())
    assert [len(p["data"]) for p in pages] == [10, 10, 5, 0]
    assert [item["id"] for p in pages for item in p["data"]] == expected
    assert pages[0]["meta"] == {
        "page": {"totalCount": 25},
        "succeededCount": 20,
        "failedCount": 3,
        "canceledCount": 2,
    }
    item = pages[0]["data"][0]
    assert item["type"] == "workflow_instances"
    assert item["attributes"]["instanceStatus"]["detailsKind"] in ("SUCCEEDED", "FAILED", "CANCELED")
    assert "stepStateAssociations" not in item["attributes"]
    assert set(item["attributes"]) == {
        "id",
        "workflowId",
        "instanceStatus",
        "startTimestamp",
        "endTimestamp",
        "outputs",
        "payload",
    }

    default = http.get(dd_url(emu, "wf"), headers=DD_HEADERS).json()
    assert len(default["data"]) == 10
    too_big = http.get(dd_url(emu, "wf"), params={"page[size]": 101}, headers=DD_HEADERS)
    assert (too_big.status_code, too_big.json()) == (400, {"errors": ["page[size] must be <= 100"]})
    assert http.get(dd_url(emu, "wf"), params={"page[size]": "x"}, headers=DD_HEADERS).status_code == 400


def test_datadog_cancel(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("datadog", "wf", WorkflowScript(duration=30))
    iid = dd_start(http, emu, "wf")
    response = http.put(dd_url(emu, "wf", f"/{iid}/cancel"), headers=DD_HEADERS)
    assert (response.status_code, response.json()) == (200, {})
    attributes = dd_get(http, emu, "wf", iid)
    assert attributes["instanceStatus"] == {"detailsKind": "CANCELED"}
    assert attributes["endTimestamp"] is not None

    again = http.put(dd_url(emu, "wf", f"/{iid}/cancel"), headers=DD_HEADERS)
    assert again.status_code == 400
    assert again.json()["errors"][0]["code"] == "INSTANCE_ALREADY_FINISHED"

    missing = http.get(dd_url(emu, "wf", "/nope"), headers=DD_HEADERS)
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"code": "INSTANCE_NOT_FOUND", "detail": "Workflow instance nope not found"}]}
    # An instance is only found under its own workflow.
    assert http.get(dd_url(emu, "other", f"/{iid}"), headers=DD_HEADERS).status_code == 404


# -- Cloudflare --------------------------------------------------------------------------------------


def cf_url(emu: WorkflowEmulator, workflow: str = "nightly", suffix: str = "", account: str | None = None) -> str:
    account = account or CREDS.cloudflare_account_id
    return f"{emu.base_url('cloudflare')}/client/v4/accounts/{account}/workflows/{workflow}/instances{suffix}"


def cf_get(http: requests.Session, emu: WorkflowEmulator, iid: str, workflow: str = "nightly") -> dict[str, Any]:
    response = http.get(cf_url(emu, workflow, f"/{iid}"), headers=CF_HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    return body["result"]


def cf_patch(http: requests.Session, emu: WorkflowEmulator, iid: str, action: str) -> requests.Response:
    return http.patch(cf_url(emu, suffix=f"/{iid}/status"), json={"status": action}, headers=CF_HEADERS)


def test_cloudflare_auth(emu: WorkflowEmulator, http: requests.Session) -> None:
    assert http.get(cf_url(emu), headers=CF_HEADERS).status_code == 200
    legacy = {"X-Auth-Email": CREDS.cloudflare_email, "X-Auth-Key": CREDS.cloudflare_global_api_key}
    assert http.get(cf_url(emu), headers=legacy).status_code == 200
    auth_error = {
        "success": False,
        "errors": [{"code": 10000, "message": "Authentication error"}],
        "messages": [],
        "result": None,
    }
    for headers in ({"Authorization": "Bearer wrong"}, {**legacy, "X-Auth-Key": "wrong"}, {}):
        response = http.post(cf_url(emu), json={}, headers=headers)
        assert (response.status_code, response.json()) == (403, auth_error)
    wrong_account = http.get(cf_url(emu, account="someone-else"), headers=CF_HEADERS)
    assert wrong_account.status_code == 404
    error = wrong_account.json()["errors"][0]
    assert error["code"] == 7003
    assert error["message"].startswith("Could not route to /client/v4/accounts/someone-else/workflows/")
    assert emu.executions("cloudflare") == []


def test_cloudflare_instance_lifecycle(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(duration=0.3, queued_for=0.05, output={"rows": 3}))
    response = http.post(cf_url(emu), json={"instance_id": "run-2026_11_23", "params": {"day": 1}}, headers=CF_HEADERS)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    result = body["result"]
    assert set(result) == {"id", "status", "version_id", "workflow_id"}
    assert result["id"] == "run-2026_11_23" and result["status"] == "queued"
    uuid.UUID(result["version_id"]), uuid.UUID(result["workflow_id"])

    simple = http.get(cf_url(emu, suffix="/run-2026_11_23"), params={"simple": "true"}, headers=CF_HEADERS)
    assert "steps" not in simple.json()["result"]
    seen = wait_for(lambda: cf_get(http, emu, "run-2026_11_23"), lambda r: r["status"] == "complete")
    statuses = [r["status"] for r in seen]
    assert statuses[0] == "queued" and "running" in statuses
    final = seen[-1]
    assert final["success"] is True and final["error"] is None and final["output"] == {"rows": 3}
    assert final["params"] == {"day": 1}
    assert final["trigger"] == {"source": "api"} and final["versionId"] == result["version_id"]
    assert parse_iso(final["queued"]) <= parse_iso(final["start"]) <= parse_iso(final["end"])
    assert final["step_count"] == 2
    assert [(s["name"], s["type"], s["success"], s["error"]) for s in final["steps"]] == [
        ("step_1", "step", True, None),
        ("step_2", "step", True, None),
    ]
    assert seen[0]["start"] is None and seen[0]["end"] is None and seen[0]["success"] is None

    generated = http.post(cf_url(emu), json={}, headers=CF_HEADERS).json()["result"]["id"]
    assert uuid.UUID(generated)


def test_cloudflare_errored_instance(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(outcome="failure", error_message="boom", **FAST))
    iid = http.post(cf_url(emu), json={"params": {}}, headers=CF_HEADERS).json()["result"]["id"]
    final = wait_for(lambda: cf_get(http, emu, iid), lambda r: r["end"] is not None)[-1]
    assert final["status"] == "errored" and final["success"] is False and final["output"] is None
    assert final["error"] == {"name": "Error", "message": "boom"}
    assert final["steps"][-1]["success"] is False
    assert final["steps"][-1]["error"] == {"name": "Error", "message": "boom"}


def test_cloudflare_instance_ids(emu: WorkflowEmulator, http: requests.Session) -> None:
    assert http.post(cf_url(emu), json={"instance_id": "once"}, headers=CF_HEADERS).status_code == 200
    duplicate = http.post(cf_url(emu), json={"instance_id": "once"}, headers=CF_HEADERS)
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"] == [{"code": 10021, "message": "instance.already_exists"}]
    # The same id under another workflow is a different instance.
    assert http.post(cf_url(emu, "other"), json={"instance_id": "once"}, headers=CF_HEADERS).status_code == 200
    for bad in ("-lead", "has space", "x" * 101, "cf_" + "a" * 64, 42):
        response = http.post(cf_url(emu), json={"instance_id": bad}, headers=CF_HEADERS)
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["code"] == 10001
    assert http.post(cf_url(emu), json=["x"], headers=CF_HEADERS).status_code == 400
    missing = http.get(cf_url(emu, suffix="/nope"), headers=CF_HEADERS)
    assert missing.status_code == 404
    assert missing.json()["errors"] == [{"code": 10001, "message": "instance.not_found"}]


def test_cloudflare_batch(emu: WorkflowEmulator, http: requests.Session) -> None:
    batch = cf_url(emu, suffix="/batch")
    items = [{"instance_id": "b1", "params": {"n": 1}}, {}, {"params": {"n": 3}}, {"instance_id": "b4"}]
    response = http.post(batch, json=items, headers=CF_HEADERS)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    result = body["result"]
    ids = [r["id"] for r in result]
    # Every id, in the order given: the caller's own ids, generated ones (UUIDs) for the others.
    assert len(ids) == 4 and ids[0] == "b1" and ids[3] == "b4" and len(set(ids)) == 4
    assert uuid.UUID(ids[1]) and uuid.UUID(ids[2])
    assert all(set(r) == {"id", "status", "version_id", "workflow_id"} for r in result)
    assert [r["status"] for r in result] == ["queued"] * 4
    single = http.post(cf_url(emu), json={}, headers=CF_HEADERS).json()["result"]
    assert {(r["version_id"], r["workflow_id"]) for r in result} == {(single["version_id"], single["workflow_id"])}
    snapshot = emu.executions("cloudflare")
    assert [e["id"] for e in snapshot] == [*ids, single["id"]]
    assert [e["payload"] for e in snapshot[:4]] == [{"n": 1}, {}, {"n": 3}, {}]

    # A duplicate id, of an existing instance or within the batch, refuses the whole batch: 409, nothing made.
    already_exists = (409, [{"code": 10021, "message": "instance.already_exists"}])
    for clash in (
        [{"instance_id": "b5"}, {"instance_id": "b1"}],
        [{"instance_id": "b6"}, {}, {"instance_id": "b6"}],
        [{"instance_id": "b7", "params": {}}, {"instance_id": single["id"]}],
    ):
        refused = http.post(batch, json=clash, headers=CF_HEADERS)
        assert cf_error(refused) == already_exists, clash
    for invalid in ([{"instance_id": "b8"}, {"instance_id": "bad id"}], [{"instance_id": "b9"}, "x"], {"a": 1}):
        refused = http.post(batch, json=invalid, headers=CF_HEADERS)
        assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == 10001, invalid
    assert [e["id"] for e in emu.executions("cloudflare")] == [*ids, single["id"]]
    for never in ("b5", "b6", "b7", "b8", "b9"):
        assert http.get(cf_url(emu, suffix=f"/{never}"), headers=CF_HEADERS).status_code == 404


def test_cloudflare_list_with_cursor(emu: WorkflowEmulator, http: requests.Session) -> None:
    created = emu.create_executions("cloudflare", "nightly", 110)
    errored = emu.create_executions("cloudflare", "nightly", 5, outcome="failure")
    ids: list[str] = []
    cursor = None
    calls = 0
    while True:
        params: dict[str, Any] = {"per_page": 50}
        if cursor:
            params["cursor"] = cursor
        body = http.get(cf_url(emu), params=params, headers=CF_HEADERS).json()
        calls += 1
        info = body["result_info"]
        assert info["total_count"] == 115 and info["per_page"] == 50 and info["count"] == len(body["result"])
        ids += [item["id"] for item in body["result"]]
        cursor = info["cursor"]
        if not cursor:
            break
    assert calls == 3
    assert ids == [e["id"] for e in newest_first(emu, "cloudflare", "nightly")]  # each exactly once
    assert set(ids) == set(created + errored)
    item = body["result"][0]
    assert set(item) == {
        "id",
        "created_on",
        "modified_on",
        "started_on",
        "ended_on",
        "status",
        "version_id",
        "workflow_id",
    }
    assert item["status"] in ("complete", "errored") and item["ended_on"] is not None

    # A new instance does not shift a cursor already handed out.
    first = http.get(cf_url(emu), params={"per_page": 10}, headers=CF_HEADERS).json()
    http.post(cf_url(emu), json={}, headers=CF_HEADERS)
    second = http.get(
        cf_url(emu), params={"per_page": 10, "cursor": first["result_info"]["cursor"]}, headers=CF_HEADERS
    ).json()
    assert second["result"][0]["id"] == ids[10]

    only_errored = http.get(cf_url(emu), params={"status": "errored"}, headers=CF_HEADERS).json()
    assert [i["id"] for i in only_errored["result"]] == list(reversed(errored))
    oldest = http.get(cf_url(emu), params={"per_page": 2, "direction": "asc"}, headers=CF_HEADERS).json()
    assert [i["id"] for i in oldest["result"]] == created[:2]
    page_two = http.get(cf_url(emu), params={"per_page": 50, "page": 2}, headers=CF_HEADERS).json()
    assert page_two["result_info"]["page"] == 2 and page_two["result"][0]["id"] == ids[49]  # one new instance
    recent = http.get(
        cf_url(emu),
        params={"date_start": (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S")},
        headers=CF_HEADERS,
    ).json()
    assert 0 < recent["result_info"]["total_count"] < 116

    for bad in (
        {"per_page": 101},
        {"per_page": 0},
        {"cursor": "garbage!"},
        {"status": "nope"},
        {"page": 1, "cursor": "x"},
    ):
        response = http.get(cf_url(emu), params=bad, headers=CF_HEADERS)
        assert response.status_code == 400, bad
        assert response.json()["success"] is False


def test_cloudflare_pause_resume_terminate_restart(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(duration=0.4, queued_for=0.0))
    iid = http.post(cf_url(emu), json={}, headers=CF_HEADERS).json()["result"]["id"]
    paused = cf_patch(http, emu, iid, "pause")
    assert paused.status_code == 200
    assert paused.json()["result"]["status"] == "paused" and paused.json()["result"]["timestamp"].endswith("Z")
    time.sleep(0.5)  # longer than the whole script: the clock is stopped while paused
    assert cf_get(http, emu, iid)["status"] == "paused"
    assert cf_patch(http, emu, iid, "pause").status_code == 400
    assert cf_patch(http, emu, iid, "resume").json()["result"]["status"] == "running"
    assert cf_get(http, emu, iid)["status"] == "running"
    assert wait_for(lambda: cf_get(http, emu, iid), lambda r: r["status"] == "complete")[-1]["success"] is True

    refused = cf_patch(http, emu, iid, "terminate")
    assert refused.status_code == 400
    assert refused.json()["errors"][0] == {
        "code": 10001,
        "message": "Cannot terminate instance: instance is already complete",
    }
    assert cf_patch(http, emu, iid, "resume").status_code == 400
    assert cf_patch(http, emu, iid, "restart").json()["result"]["status"] == "running"
    terminated = cf_patch(http, emu, iid, "terminate")
    assert terminated.json()["result"]["status"] == "terminated"
    assert cf_get(http, emu, iid)["status"] == "terminated"
    assert cf_patch(http, emu, iid, "explode").status_code == 400
    operations = [r.operation for r in emu.requests if r.method == "PATCH"]
    assert operations.count("cancel") == 2 and operations.count("status") == 6


def test_cloudflare_events(emu: WorkflowEmulator, http: requests.Session) -> None:
    iid = http.post(cf_url(emu), json={}, headers=CF_HEADERS).json()["result"]["id"]
    sent = http.post(cf_url(emu, suffix=f"/{iid}/events/approval"), json={"approved": True}, headers=CF_HEADERS)
    assert sent.status_code == 200
    assert sent.json() == {"success": True, "errors": [], "messages": [], "result": None}
    assert emu.requests[-1].operation == "event"
    assert http.post(cf_url(emu, suffix="/nope/events/approval"), json={}, headers=CF_HEADERS).status_code == 404


# -- Cloudflare step.waitForEvent (human in the loop) -------------------------------------------------

APPROVAL = {"duration": 0.35, "queued_for": 0.05, "wait_after": 0.1, "wait_for_event": "approval"}


def cf_event(
    http: requests.Session, emu: WorkflowEmulator, iid: str, event_type: str, payload: Any = None
) -> requests.Response:
    return http.post(cf_url(emu, suffix=f"/{iid}/events/{event_type}"), json=payload, headers=CF_HEADERS)


def cf_status(http: requests.Session, emu: WorkflowEmulator, iid: str, workflow: str = "nightly") -> str:
    return cf_get(http, emu, iid, workflow)["status"]


def cf_error(response: requests.Response) -> tuple[int, list[dict[str, Any]]]:
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    return response.status_code, body["errors"]


def cf_wait_start(
    http: requests.Session, emu: WorkflowEmulator, params: Any = None, iid: str | None = None, workflow: str = "nightly"
) -> str:
    body: dict[str, Any] = {"params": params or {}}
    if iid is not None:
        body["instance_id"] = iid
    response = http.post(cf_url(emu, workflow), json=body, headers=CF_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["result"]["id"]


def test_cloudflare_wait_for_event_resumes_on_its_event(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(steps=["prepare", "apply"], **APPROVAL))
    iid = cf_wait_start(http, emu, {"day": 1})
    seen = wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")
    assert seen[0] in ("queued", "running") and set(seen) <= {"queued", "running", "waiting"}

    time.sleep(0.4)  # longer than the whole script: the clock stands still while waiting
    waiting = cf_get(http, emu, iid)
    assert waiting["status"] == "waiting"
    assert (waiting["success"], waiting["output"], waiting["end"], waiting["error"]) == (None, None, None, None)
    assert waiting["start"] is not None and waiting["step_count"] == 2
    prepare, wait = waiting["steps"]
    assert (prepare["name"], prepare["type"], prepare["success"]) == ("prepare", "step", True)
    assert wait == {
        "name": "wait for approval",
        "type": "waitForEvent",
        "start": prepare["end"],
        "end": None,
        "finished": False,
        "output": None,
        "error": None,
    }
    listed = http.get(cf_url(emu), params={"status": "waiting"}, headers=CF_HEADERS).json()
    assert [item["id"] for item in listed["result"]] == [iid] and listed["result"][0]["ended_on"] is None

    # Another event type is taken (and recorded) but does not end the wait.
    other = cf_event(http, emu, iid, "comment", {"text": "looks fine"})
    assert (other.status_code, other.json()) == (200, {"success": True, "errors": [], "messages": [], "result": None})
    time.sleep(0.05)
    assert cf_status(http, emu, iid) == "waiting"

    resumed_at = time.monotonic()
    approval = cf_event(http, emu, iid, "approval", {"approved": True, "by": "ana"})
    assert approval.status_code == 200 and approval.json()["result"] is None
    assert cf_status(http, emu, iid) == "running"
    final = wait_for(lambda: cf_get(http, emu, iid), lambda r: r["status"] != "running")[-1]
    # The rest of the script (duration - queued_for - wait_after = 0.2 s) runs after the event.
    assert time.monotonic() - resumed_at >= 0.2
    assert final["status"] == "complete" and final["success"] is True
    assert final["output"] == {"result": "ok", "input": {"day": 1}, "event": {"approved": True, "by": "ana"}}
    assert [(s["name"], s["type"]) for s in final["steps"]] == [
        ("prepare", "step"),
        ("wait for approval", "waitForEvent"),
        ("apply", "step"),
    ]
    wait = final["steps"][1]
    assert wait["finished"] is True and wait["output"] == {"approved": True, "by": "ana"}
    assert parse_iso(wait["start"]) < parse_iso(wait["end"]) <= parse_iso(final["steps"][2]["start"])
    assert parse_iso(final["end"]) - parse_iso(wait["end"]) >= timedelta(seconds=0.19)
    assert final["step_count"] == 3

    [snapshot] = emu.executions("cloudflare", "nightly")
    assert snapshot["events"] == [
        {"type": "comment", "payload": {"text": "looks fine"}},
        {"type": "approval", "payload": {"approved": True, "by": "ana"}},
    ]
    # A finished instance takes no more events, and the refused one is not recorded.
    late = cf_event(http, emu, iid, "approval", {"approved": False})
    message = "Cannot send event to instance: instance is already complete and not waiting for events"
    assert cf_error(late) == (400, [{"code": 10001, "message": message}])
    assert len(emu.executions("cloudflare", "nightly")[0]["events"]) == 2
    assert [r.operation for r in emu.requests if r.method == "POST" and "/events/" in r.path] == ["event"] * 3


def test_cloudflare_event_outputs_and_outcomes(emu: WorkflowEmulator, http: requests.Session) -> None:
    fast = {**APPROVAL, "duration": 0.2, "wait_after": 0.0}
    emu.script("cloudflare", "dict-out", WorkflowScript(output={"rows": 3}, **fast))
    emu.script("cloudflare", "list-out", WorkflowScript(output=[1, 2], **fast))
    emu.script("cloudflare", "fails", WorkflowScript(outcome="failure", error_message="rejected", **fast))
    started = {workflow: cf_wait_start(http, emu, workflow=workflow) for workflow in ("dict-out", "list-out", "fails")}

    def fetch(workflow: str) -> Callable[[], dict[str, Any]]:
        return lambda: cf_get(http, emu, started[workflow], workflow)

    for workflow, iid in started.items():
        wait_for(fetch(workflow), lambda r: r["status"] == "waiting")
        sent = http.post(cf_url(emu, workflow, f"/{iid}/events/approval"), json="yes", headers=CF_HEADERS)
        assert sent.status_code == 200
    finals = {workflow: wait_for(fetch(workflow), lambda r: r["end"] is not None)[-1] for workflow in started}
    assert finals["dict-out"]["output"] == {"rows": 3, "event": "yes"}
    assert finals["list-out"]["output"] == {"result": [1, 2], "event": "yes"}
    assert finals["fails"]["status"] == "errored" and finals["fails"]["output"] is None
    assert finals["fails"]["error"] == {"name": "Error", "message": "rejected"}
    # wait_after 0: the wait begins as soon as the instance runs, before any step.
    assert [s["type"] for s in finals["dict-out"]["steps"]] == ["waitForEvent", "step", "step"]


def test_cloudflare_event_sent_before_the_wait_is_buffered(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(**{**APPROVAL, "duration": 0.4, "wait_after": 0.15}))
    iid = cf_wait_start(http, emu)
    assert cf_event(http, emu, iid, "approval", {"early": True}).status_code == 200
    seen = wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "complete")
    assert "waiting" not in seen
    final = cf_get(http, emu, iid)
    assert final["output"]["event"] == {"early": True}
    wait = final["steps"][1]
    assert wait["type"] == "waitForEvent" and wait["finished"] is True and wait["start"] == wait["end"]


def test_cloudflare_status_changes_around_a_wait(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(**{**APPROVAL, "duration": 0.25}))
    iid = cf_wait_start(http, emu)
    wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")

    not_paused = cf_patch(http, emu, iid, "resume")
    assert cf_error(not_paused) == (
        400,
        [{"code": 10001, "message": "Cannot resume instance: instance is waiting, not paused"}],
    )
    # Pause while waiting, resume: still waiting, the event has not come.
    assert cf_patch(http, emu, iid, "pause").json()["result"]["status"] == "paused"
    assert cf_status(http, emu, iid) == "paused"
    assert cf_patch(http, emu, iid, "resume").json()["result"]["status"] == "waiting"
    time.sleep(0.1)
    assert cf_status(http, emu, iid) == "waiting"
    # The event arrives while paused: it stays paused, and resuming runs on instead of waiting.
    cf_patch(http, emu, iid, "pause")
    assert cf_event(http, emu, iid, "approval", {"ok": 1}).status_code == 200
    time.sleep(0.3)  # longer than the rest of the script: paused means stopped
    assert cf_status(http, emu, iid) == "paused"
    assert cf_patch(http, emu, iid, "resume").json()["result"]["status"] == "running"
    assert wait_for(lambda: cf_get(http, emu, iid), lambda r: r["end"] is not None)[-1]["output"]["event"] == {"ok": 1}


def test_cloudflare_terminate_and_restart_a_waiting_instance(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(**{**APPROVAL, "duration": 0.25}))
    iid = cf_wait_start(http, emu, iid="needs-approval")
    wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")
    cf_event(http, emu, iid, "comment", "not yet")

    terminated = cf_patch(http, emu, iid, "terminate")
    assert terminated.status_code == 200
    assert terminated.json()["result"]["status"] == "terminated"
    final = cf_get(http, emu, iid)
    assert (final["status"], final["success"], final["output"]) == ("terminated", False, None)
    wait = final["steps"][-1]
    assert wait["type"] == "waitForEvent" and wait["finished"] is False and wait["end"] == final["end"]
    message = "Cannot send event to instance: instance is already terminated and not waiting for events"
    assert cf_error(cf_event(http, emu, iid, "approval")) == (400, [{"code": 10001, "message": message}])
    for action in ("pause", "resume", "terminate"):
        assert cf_error(cf_patch(http, emu, iid, action)) == (
            400,
            [{"code": 10001, "message": f"Cannot {action} instance: instance is already terminated"}],
        ), action

    # A restart starts from scratch: queued again, the events forgotten, and it waits again.
    restarted = cf_patch(http, emu, iid, "restart")
    assert restarted.status_code == 200 and restarted.json()["result"]["status"] == "queued"
    assert emu.executions("cloudflare")[0]["events"] == []
    fresh = cf_get(http, emu, iid)
    assert fresh["status"] in ("queued", "running") and fresh["end"] is None
    assert all(step["type"] == "step" for step in fresh["steps"])  # the old wait is gone
    wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")
    cf_event(http, emu, iid, "approval", {"second": "try"})
    done = wait_for(lambda: cf_get(http, emu, iid), lambda r: r["end"] is not None)[-1]
    assert done["status"] == "complete" and done["output"]["event"] == {"second": "try"}
    assert emu.executions("cloudflare")[0]["events"] == [{"type": "approval", "payload": {"second": "try"}}]

    # From complete: resume, pause and terminate do not fit; restart still does.
    for action in ("resume", "pause", "terminate"):
        assert cf_error(cf_patch(http, emu, iid, action)) == (
            400,
            [{"code": 10001, "message": f"Cannot {action} instance: instance is already complete"}],
        ), action
    assert cf_patch(http, emu, iid, "restart").json()["result"]["status"] == "queued"
    assert cf_patch(http, emu, iid, "pause").json()["result"]["status"] == "paused"  # queued can be paused
    assert cf_error(cf_patch(http, emu, iid, "pause"))[1][0]["message"] == (
        "Cannot pause instance: instance is already paused"
    )
    assert cf_patch(http, emu, iid, "restart").json()["result"]["status"] == "queued"  # from paused too
    missing = cf_patch(http, emu, "nope", "pause")
    assert cf_error(missing) == (404, [{"code": 10001, "message": "instance.not_found"}])
    assert cf_error(cf_event(http, emu, "nope", "approval")) == (404, missing.json()["errors"])


def test_cloudflare_wait_script_validation(emu: WorkflowEmulator, http: requests.Session) -> None:
    for bad in (
        {"wait_for_event": ""},
        {"wait_for_event": 3},
        {"wait_for_event": "approval", "wait_after": -1},
        {"wait_for_event": "approval", "wait_after": "soon"},
        {"wait_for_event": "approval", "duration": 0.3, "queued_for": 0.1, "wait_after": 0.25},
    ):
        with pytest.raises(ValueError):
            emu.script("cloudflare", "wf", WorkflowScript(**bad))
    with pytest.raises(ValueError, match="cloudflare"):
        emu.script("datadog", "wf", WorkflowScript(wait_for_event="approval"))
    # wait_after may leave no time after the event: the instance then completes as the event arrives.
    emu.script(
        "cloudflare", "nightly", WorkflowScript(duration=0.15, queued_for=0.05, wait_after=0.1, wait_for_event="go")
    )
    iid = cf_wait_start(http, emu)
    wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")
    time.sleep(0.05)
    assert cf_status(http, emu, iid) == "waiting"
    cf_event(http, emu, iid, "go")
    final = cf_get(http, emu, iid)
    assert final["status"] == "complete" and final["output"]["event"] is None  # an empty body is a null payload


def test_cloudflare_seeded_instances_and_waits(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(**{**APPROVAL, "wait_after": 0.0}))
    finished = emu.create_executions("cloudflare", "nightly", 2)
    pending = emu.create_executions("cloudflare", "nightly", 1, finished=False)
    assert [cf_status(http, emu, iid) for iid in finished] == ["complete", "complete"]
    wait_for(lambda: cf_status(http, emu, pending[0]), lambda s: s == "waiting")
    assert [e["events"] for e in emu.executions("cloudflare", "nightly")] == [[], [], []]
    emu.create_executions("datadog", "wf", 1)
    assert "events" not in emu.executions("datadog")[0]  # only Cloudflare has events


# -- SailPoint ---------------------------------------------------------------------------------------


def sp_token(http: requests.Session, emu: WorkflowEmulator) -> str:
    response = http.post(
        f"{emu.base_url('sailpoint')}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CREDS.sailpoint_client_id,
            "client_secret": CREDS.sailpoint_client_secret,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def sp(emu: WorkflowEmulator, http: requests.Session) -> Callable[..., requests.Response]:
    """Send an authenticated SailPoint request: ``sp("GET", "/v3/workflow-executions/x")``."""
    token = sp_token(http, emu)

    def send(method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return http.request(method, f"{emu.base_url('sailpoint')}{path}", headers=headers, **kwargs)

    return send


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
        lambda e: e["status"] not in ("Queued", "Executing"),
    )
    statuses = [e["status"] for e in seen]
    assert statuses[0] == "Queued" and "Executing" in statuses and statuses[-1] == "Completed"
    final = seen[-1]
    assert set(final) == {"id", "workflowId", "requestId", "startTime", "closeTime", "status"}
    assert final["id"] == execution_id and final["workflowId"] == "wf-1" and len(final["requestId"]) == 32
    assert seen[0]["closeTime"] is None and parse_iso(final["closeTime"]) >= parse_iso(final["startTime"])

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
    assert sp("POST", "/v3/workflows/execute/external/disabled-wf", json={}).status_code == 400
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


# -- faults, rate limits ----------------------------------------------------------------------------


def start_request(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> requests.Response:
    """One "start" request to ``vendor``, authenticated."""
    if vendor == "datadog":
        return http.post(dd_url(emu, "wf"), json={"meta": {"payload": {}}}, headers=DD_HEADERS, timeout=10)
    if vendor == "cloudflare":
        return http.post(cf_url(emu), json={}, headers=CF_HEADERS, timeout=10)
    token = sp_token(http, emu)
    return http.post(
        f"{emu.base_url('sailpoint')}/v3/workflows/wf/test",
        json={"input": {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def get_request(emu: WorkflowEmulator, http: requests.Session, vendor: str, execution_id: str) -> requests.Response:
    if vendor == "datadog":
        return http.get(dd_url(emu, "wf", f"/{execution_id}"), headers=DD_HEADERS, timeout=10)
    if vendor == "cloudflare":
        return http.get(cf_url(emu, suffix=f"/{execution_id}"), headers=CF_HEADERS, timeout=10)
    token = sp_token(http, emu)
    return http.get(
        f"{emu.base_url('sailpoint')}/v3/workflow-executions/{execution_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def vendor_status(vendor: str, body: dict[str, Any]) -> str:
    if vendor == "datadog":
        return body["data"]["attributes"]["instanceStatus"]["detailsKind"]
    if vendor == "cloudflare":
        return body["result"]["status"]
    return body["status"]


VENDORS = ("datadog", "cloudflare", "sailpoint")


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("status", [500, 502, 503, 504, 401, 403, 404])
def test_status_faults_use_the_vendor_envelope(
    emu: WorkflowEmulator, http: requests.Session, vendor: str, status: int
) -> None:
    emu.inject_fault(vendor, "start", str(status))
    response = start_request(emu, http, vendor)
    assert response.status_code == status
    body = response.json()
    if vendor == "datadog":
        assert isinstance(body["errors"], list) and body["errors"]
    elif vendor == "cloudflare":
        assert body["success"] is False and isinstance(body["errors"][0]["code"], int)
    elif status == 401:
        assert set(body) == {"error"}
    else:
        assert body["detailCode"].startswith(str(status)) and len(body["trackingId"]) == 32
    assert emu.executions(vendor) == []  # the fault answered instead of the API
    assert start_request(emu, http, vendor).status_code == 200  # consumed after `times` (1)


@pytest.mark.parametrize("vendor", VENDORS)
def test_429_fault(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    emu.inject_fault(vendor, "start", "429", retry_after=3)
    response = start_request(emu, http, vendor)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    body = response.json()
    if vendor == "datadog":
        assert response.headers["X-RateLimit-Reset"] == "3" and response.headers["X-RateLimit-Remaining"] == "0"
        assert {"X-RateLimit-Limit", "X-RateLimit-Period", "X-RateLimit-Name"} <= set(response.headers)
        assert body == {"errors": ["Too many requests"]}
    elif vendor == "cloudflare":
        assert body["errors"][0]["code"] == 971 and body["success"] is False
    else:
        assert body == {"message": "Rate Limit Exceeded"}


def test_429_fault_with_only_the_reset_header(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.inject_fault("datadog", "start", "429", retry_after=2, header="reset")
    response = start_request(emu, http, "datadog")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers and response.headers["X-RateLimit-Reset"] == "2"


@pytest.mark.parametrize("vendor", VENDORS)
def test_reset_before_drops_without_processing(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    emu.inject_fault(vendor, "start", "reset_before")
    with pytest.raises(requests.ConnectionError):
        start_request(emu, http, vendor)
    assert emu.executions(vendor) == []
    assert emu.requests[-1] == RequestRecord(vendor, "start", "POST", emu.requests[-1].path, None)
    assert start_request(emu, http, vendor).status_code == 200  # the session recovers on a new connection


@pytest.mark.parametrize("vendor", VENDORS)
def test_reset_after_drops_after_processing(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    emu.inject_fault(vendor, "start", "reset_after")
    with pytest.raises(requests.ConnectionError):
        start_request(emu, http, vendor)
    assert len(emu.executions(vendor)) == 1


def test_slow_fault(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.inject_fault("cloudflare", "start", "slow", delay=0.3)
    started = time.monotonic()
    assert start_request(emu, http, "cloudflare").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("vendor", VENDORS)
def test_malformed_json_fault(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    emu.inject_fault(vendor, "start", "malformed_json")
    response = start_request(emu, http, vendor)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.text == '{"data": '
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize("vendor", VENDORS)
def test_unknown_status_fault(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    body = start_request(emu, http, vendor).json()
    execution_id = {"datadog": lambda: body["data"]["id"], "cloudflare": lambda: body["result"]["id"]}.get(
        vendor, lambda: body["workflowExecutionId"]
    )()
    emu.inject_fault(vendor, "get", "unknown_status")
    assert vendor_status(vendor, get_request(emu, http, vendor, execution_id).json()) == "MYSTERY_STATUS"
    assert vendor_status(vendor, get_request(emu, http, vendor, execution_id).json()) != "MYSTERY_STATUS"


def test_faults_are_fifo_and_any_matches_every_operation(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.inject_fault("datadog", "any", "503", times=2)
    emu.inject_fault("datadog", "start", "502")
    emu.inject_fault("cloudflare", "start", "500")  # another vendor's fault is not consumed
    assert http.get(dd_url(emu, "wf"), headers=DD_HEADERS).status_code == 503
    assert start_request(emu, http, "datadog").status_code == 503
    assert start_request(emu, http, "datadog").status_code == 502
    assert start_request(emu, http, "datadog").status_code == 200
    assert start_request(emu, http, "cloudflare").status_code == 500


def test_invalid_fault_arguments(emu: WorkflowEmulator) -> None:
    with pytest.raises(ValueError):
        emu.inject_fault("datadog", "start", "418")
    with pytest.raises(ValueError):
        emu.inject_fault("datadog", "launch", "500")
    with pytest.raises(ValueError):
        emu.inject_fault("github", "start", "500")
    with pytest.raises(ValueError):
        emu.inject_fault("datadog", "start", "500", times=0)
    with pytest.raises(ValueError):
        emu.script("datadog", "wf", WorkflowScript(outcome="maybe"))


def test_sailpoint_token_fault(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.inject_fault("sailpoint", "token", "401")
    response = http.post(f"{emu.base_url('sailpoint')}/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    sp_token(http, emu)


def lister(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> Callable[[], requests.Response]:
    """A "list" request to ``vendor`` (a SailPoint token is fetched now, once)."""
    if vendor == "datadog":
        return lambda: http.get(dd_url(emu, "wf"), headers=DD_HEADERS, timeout=10)
    if vendor == "cloudflare":
        return lambda: http.get(cf_url(emu), headers=CF_HEADERS, timeout=10)
    headers = {"Authorization": f"Bearer {sp_token(http, emu)}"}
    return lambda: http.get(f"{emu.base_url('sailpoint')}/v3/workflows/wf/executions", headers=headers, timeout=10)


@pytest.mark.parametrize("vendor", VENDORS)
def test_rate_limit(emu: WorkflowEmulator, http: requests.Session, vendor: str) -> None:
    send = lister(emu, http, vendor)
    emu.set_rate_limit(vendor, 2, 60)
    first = send()
    assert first.status_code == 200
    if vendor == "datadog":
        assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
    assert send().status_code == 200
    limited = send()
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    if vendor == "datadog":
        assert limited.headers["X-RateLimit-Remaining"] == "0" and "X-RateLimit-Reset" in limited.headers
    emu.set_rate_limit(vendor, 0, 60)
    assert send().status_code == 200


def test_rate_limit_window_resets(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.set_rate_limit("cloudflare", 1, 0.3)
    assert start_request(emu, http, "cloudflare").status_code == 200
    assert start_request(emu, http, "cloudflare").status_code == 429
    time.sleep(0.35)
    assert start_request(emu, http, "cloudflare").status_code == 200


# -- request log, logging, secrets ------------------------------------------------------------------


def test_request_log_and_logging_never_show_secrets(
    emu: WorkflowEmulator, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iid = dd_start(http, emu, "wf")
    http.get(dd_url(emu, "wf"), params={"page[size]": 5, "api_key": CREDS.datadog_api_key}, headers=DD_HEADERS)
    start_request(emu, http, "cloudflare")
    start_request(emu, http, "sailpoint")
    http.get(f"{emu.base_url('datadog')}/api/v1/unknown", headers=DD_HEADERS)

    records = emu.requests
    assert [(r.vendor, r.operation, r.method, r.status) for r in records] == [
        ("datadog", "start", "POST", 200),
        ("datadog", "list", "GET", 200),
        ("cloudflare", "start", "POST", 200),
        ("sailpoint", "token", "POST", 200),
        ("sailpoint", "start", "POST", 200),
        ("datadog", "unknown", "GET", 404),
    ]
    assert records[1].path == "/datadog/api/v2/workflows/wf/instances"  # never the query string
    assert iid not in records[0].path

    secrets = [
        CREDS.datadog_api_key,
        CREDS.datadog_application_key,
        CREDS.cloudflare_api_token,
        CREDS.cloudflare_global_api_key,
        CREDS.sailpoint_client_secret,
    ]
    # Server-side loggers only: the test's own client (urllib3) logs its query strings.
    server_lines = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("airflow_workflow_provider", "aiohttp"))
    ]
    logged = "\n".join(server_lines) + repr(records) + repr(CREDS)
    assert "datadog start POST /datadog/api/v2/workflows/wf/instances -> 200" in server_lines
    for secret in secrets:
        assert secret not in logged
    assert "Bearer" not in logged and "access_token" not in logged


def test_reset_forgets_everything(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("datadog", "wf", WorkflowScript(duration=30))
    dd_start(http, emu, "wf")
    emu.inject_fault("datadog", "start", "500")
    emu.set_rate_limit("datadog", 1, 60)
    emu.reset()
    assert emu.executions("datadog") == [] and emu.requests == []
    iid = dd_start(http, emu, "wf")  # neither the fault nor the limit applies any more
    dd_start(http, emu, "wf")
    # The script is gone too: back to the 1 s default.
    wait_for(lambda: dd_get(http, emu, "wf", iid)["instanceStatus"]["detailsKind"], lambda s: s == "SUCCEEDED")


def test_create_executions(emu: WorkflowEmulator) -> None:
    emu.script("cloudflare", "wf", WorkflowScript(duration=30))
    done = emu.create_executions("cloudflare", "wf", 3, outcome="failure")
    running = emu.create_executions("cloudflare", "wf", 2, finished=False)
    snapshot = emu.executions("cloudflare", "wf")
    assert [e["id"] for e in snapshot] == done + running
    assert [e["status"] for e in snapshot] == ["errored"] * 3 + ["queued"] * 2
    created = [parse_iso(e["created_at"]) for e in snapshot[:3]]
    assert created == sorted(created) and created[1] - created[0] == timedelta(seconds=1)
    assert emu.executions("cloudflare", "other") == []


# -- control API, lifecycle, concurrency ------------------------------------------------------------


def test_control_api(emu: WorkflowEmulator, http: requests.Session) -> None:
    control = f"{emu.url}/_emulator"
    assert http.get(f"{control}/health").json() == {"status": "ok"}
    script = {"vendor": "datadog", "workflow": "wf", "duration": 30, "steps": ["only"]}
    assert http.post(f"{control}/scripts", json=script).status_code == 200
    fault = {"vendor": "datadog", "operation": "start", "fault": "429", "times": 1, "retry_after": 7}
    assert http.post(f"{control}/faults", json=fault).status_code == 200
    limited = start_request(emu, http, "datadog")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    iid = dd_start(http, emu, "wf", {"k": "v"})

    executions = http.get(f"{control}/executions", params={"vendor": "datadog", "workflow": "wf"}).json()
    assert [(e["id"], e["status"], e["payload"]) for e in executions] == [(iid, "IN_PROGRESS", {"k": "v"})]
    assert http.get(f"{control}/executions").json() == executions  # every vendor
    log = http.get(f"{control}/requests").json()
    assert [(r["operation"], r["status"]) for r in log] == [("start", 429), ("start", 200)]
    assert set(log[0]) == {"vendor", "operation", "method", "path", "status"}

    assert http.post(f"{control}/revoke_tokens").status_code == 200
    assert http.post(f"{control}/rate_limit", json={"vendor": "datadog", "limit": 0}).status_code == 200
    archive = {"vendor": "datadog", "execution_id": iid}
    assert http.post(f"{control}/archive", json=archive).status_code == 200
    assert http.post(f"{control}/reset").json() == {"status": "ok"}
    assert http.get(f"{control}/requests").json() == []

    for path, body in [
        ("scripts", {"vendor": "datadog"}),
        ("scripts", {"vendor": "datadog", "workflow": "wf", "colour": "red"}),
        ("faults", {"vendor": "datadog", "operation": "start", "fault": "teapot"}),
        ("faults", [1]),
    ]:
        response = http.post(f"{control}/{path}", json=body)
        assert response.status_code == 400 and response.json()["error"], body
    assert http.get(f"{control}/executions", params={"vendor": "github"}).status_code == 400
    assert http.get(f"{control}/nope").status_code == 404


def test_control_api_wait_for_event_scripts(emu: WorkflowEmulator, http: requests.Session) -> None:
    control = f"{emu.url}/_emulator"
    script = {"vendor": "cloudflare", "workflow": "nightly", **APPROVAL}
    assert http.post(f"{control}/scripts", json=script).json() == {"status": "ok"}
    iid = cf_wait_start(http, emu)
    wait_for(lambda: cf_status(http, emu, iid), lambda s: s == "waiting")
    cf_event(http, emu, iid, "approval", {"ok": True})
    executions = http.get(f"{control}/executions", params={"vendor": "cloudflare"}).json()
    assert [(e["id"], e["events"]) for e in executions] == [(iid, [{"type": "approval", "payload": {"ok": True}}])]
    for bad in (
        {**script, "wait_after": 5},
        {**script, "wait_after": "later"},
        {**script, "wait_for_event": ""},
        {**script, "vendor": "datadog"},
    ):
        response = http.post(f"{control}/scripts", json=bad)
        assert response.status_code == 400 and response.json()["error"], bad
    assert "wait_after" in http.post(f"{control}/scripts", json={**script, "wait_after": 5}).json()["error"]


def test_unknown_paths(emu: WorkflowEmulator, http: requests.Session) -> None:
    assert http.get(f"{emu.url}/github/repos").status_code == 404
    cf = http.get(f"{emu.base_url('cloudflare')}/client/v4/zones", headers=CF_HEADERS)
    assert cf.status_code == 404 and cf.json()["success"] is False
    wrong_method = http.delete(dd_url(emu, "wf"), headers=DD_HEADERS)
    assert wrong_method.status_code == 405 and wrong_method.json() == {"errors": ["Method Not Allowed"]}


def test_lifecycle_and_urls() -> None:
    emulator = WorkflowEmulator()
    with pytest.raises(RuntimeError):
        _ = emulator.url
    with emulator:
        assert emulator.url == f"http://127.0.0.1:{emulator.port}"
        assert emulator.base_url("sailpoint") == f"{emulator.url}/sailpoint"
        with pytest.raises(ValueError):
            emulator.base_url("github")
        with pytest.raises(RuntimeError):
            emulator.start()
        assert requests.get(f"{emulator.url}/_emulator/health", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{emulator.url}/_emulator/health", timeout=5)
    emulator.stop()  # stopping twice is harmless
    with pytest.raises(ValueError, match="non-loopback"):
        WorkflowEmulator(host="0.0.0.0")


def test_stop_does_not_wait_for_slow_requests() -> None:
    emulator = WorkflowEmulator().start()
    emulator.inject_fault("cloudflare", "start", "slow", delay=30)
    with requests.Session() as http, pytest.raises(requests.Timeout):
        http.post(cf_url(emulator), json={}, headers=CF_HEADERS, timeout=0.3)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 5


def test_hundreds_of_concurrent_keep_alive_clients(emu: WorkflowEmulator) -> None:
    emu.script("datadog", "wf", WorkflowScript(duration=0.5))

    async def main() -> list[str]:
        connector = aiohttp.TCPConnector(limit=0)  # one connection per in-flight request
        async with aiohttp.ClientSession(connector=connector, headers=DD_HEADERS) as session:

            async def one(index: int) -> str:
                async with session.post(dd_url(emu, "wf"), json={"meta": {"payload": {"i": index}}}) as response:
                    assert response.status == 200
                    iid = (await response.json())["data"]["id"]
                # The same pooled (kept-alive) connections serve the follow-up reads.
                for _ in range(3):
                    async with session.get(dd_url(emu, "wf", f"/{iid}")) as response:
                        assert response.status == 200
                        await response.json()
                return iid

            return await asyncio.gather(*(one(i) for i in range(300)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 300
    assert len(emu.executions("datadog")) == 300
    assert len(emu.requests) == 1200 and {r.status for r in emu.requests} == {200}


def test_package_import_is_light() -> None:
    code = (
        "import sys, airflow_workflow_provider.testing as t;"
        "assert 'aiohttp' not in sys.modules and 'airflow' not in sys.modules, sorted(sys.modules);"
        "assert t.WorkflowScript().duration == 1.0"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=_env(), timeout=60)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("module", ["airflow_workflow_provider.testing.emulator", "airflow_workflow_provider.testing"])
def test_cli_serves_until_sigterm(tmp_path: Path, module: str) -> None:
    url_file = tmp_path / "url"
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--url-file", str(url_file)],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("workflow emulator listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert url_file.read_text() == url
        assert requests.get(f"{url}/_emulator/health", timeout=5).json() == {"status": "ok"}
        headers = {"Authorization": f"Bearer {CREDS.cloudflare_api_token}"}
        accounts = f"{url}/cloudflare/client/v4/accounts/{CREDS.cloudflare_account_id}"
        assert requests.get(f"{accounts}/workflows/wf/instances", headers=headers, timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "cloudflare list GET /cloudflare/client/v4/accounts/" in stderr
    assert CREDS.cloudflare_api_token not in stderr
    assert not url_file.exists()


def test_cli_refuses_a_public_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_workflow_provider.testing.emulator", "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "non-loopback" in result.stderr


def test_fixture_plugin(workflow_emulator: WorkflowEmulator) -> None:
    body = requests.get(f"{workflow_emulator.url}/_emulator/health", timeout=5).json()
    assert body == {"status": "ok"}
    assert json.loads(json.dumps(workflow_emulator.executions("datadog"))) == []


def test_list_workflows_endpoints_for_test_connection(
    emu: WorkflowEmulator, http: requests.Session, sp: Callable[..., requests.Response]
) -> None:
    # Beyond the spec: the hooks' test_connection lists workflows, the cheapest authenticated call.
    accounts = f"{emu.base_url('cloudflare')}/client/v4/accounts"
    empty = http.get(f"{accounts}/{CREDS.cloudflare_account_id}/workflows", headers=CF_HEADERS)
    assert empty.status_code == 200
    assert empty.json()["result"] == [] and empty.json()["result_info"]["total_count"] == 0
    http.post(cf_url(emu, "nightly"), json={}, headers=CF_HEADERS)
    listed = http.get(f"{accounts}/{CREDS.cloudflare_account_id}/workflows", headers=CF_HEADERS).json()
    assert [w["name"] for w in listed["result"]] == ["nightly"]
    assert http.get(f"{accounts}/{CREDS.cloudflare_account_id}/workflows").status_code == 403
    assert http.get(f"{accounts}/elsewhere/workflows", headers=CF_HEADERS).status_code == 404

    emu.script("sailpoint", "disabled-wf", WorkflowScript(enabled=False))
    workflows = sp("GET", "/v3/workflows", params={"limit": 1, "count": "true"})
    assert workflows.status_code == 200 and workflows.headers["X-Total-Count"] == "1"
    assert workflows.json() == [{"id": "disabled-wf", "name": "disabled-wf", "enabled": False}]
    assert http.get(f"{emu.base_url('sailpoint')}/v3/workflows").status_code == 401
    assert [r.operation for r in emu.requests][-1] == "list_workflows"
