"""The emulated Cloudflare Workflows API, driven with raw HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.testing.emulator_support import (
    APPROVAL,
    CF_HEADERS,
    CREDS,
    FAST,
    cf_event,
    cf_get,
    cf_patch,
    cf_status,
    cf_url,
    cf_wait_start,
    newest_first,
    parse_iso,
    wait_for,
)

pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]


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
    # Phases of seconds, not tenths: the test must see "queued" then "running" even on a loaded machine.
    emu.script("cloudflare", "nightly", WorkflowScript(duration=4.0, queued_for=2.0, output={"rows": 3}))
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
    seen = wait_for(lambda: cf_get(http, emu, "run-2026_11_23"), lambda r: r["status"] == "complete", timeout=30)
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

    # An id that exists already (or came earlier in the batch) is skipped and left out of the answer, as the
    # Workers binding's createBatch does: a resent batch gets back only what it newly created.
    for clash, made in (
        ([{"instance_id": "b5"}, {"instance_id": "b1", "params": {"n": 99}}], ["b5"]),
        ([{"instance_id": "b6"}, {"instance_id": "b6", "params": {"n": 99}}], ["b6"]),
        ([{"instance_id": "b1"}, {"instance_id": single["id"]}], []),
    ):
        answer = http.post(batch, json=clash, headers=CF_HEADERS)
        assert answer.status_code == 200 and [r["id"] for r in answer.json()["result"]] == made, clash
    assert emu.executions("cloudflare")[0]["payload"] == {"n": 1}  # the skipped entry changed nothing
    for invalid in ([{"instance_id": "b8"}, {"instance_id": "bad id"}], [{"instance_id": "b9"}, "x"], {"a": 1}):
        refused = http.post(batch, json=invalid, headers=CF_HEADERS)
        assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == 10001, invalid
    assert [e["id"] for e in emu.executions("cloudflare")] == [*ids, single["id"], "b5", "b6"]
    for never in ("b8", "b9"):
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
        "trigger_source",
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
    assert sent.json() == {"success": True, "errors": [], "messages": [], "result": {}}
    assert emu.requests[-1].operation == "event"
    assert http.post(cf_url(emu, suffix="/nope/events/approval"), json={}, headers=CF_HEADERS).status_code == 404


# -- Cloudflare step.waitForEvent (human in the loop) -------------------------------------------------


def cf_error(response: requests.Response) -> tuple[int, list[dict[str, Any]]]:
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    return response.status_code, body["errors"]


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
    assert (other.status_code, other.json()) == (200, {"success": True, "errors": [], "messages": [], "result": {}})
    time.sleep(0.05)
    assert cf_status(http, emu, iid) == "waiting"

    resumed_at = time.monotonic()
    approval = cf_event(http, emu, iid, "approval", {"approved": True, "by": "ana"})
    assert approval.status_code == 200 and approval.json()["result"] == {}
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


def test_cloudflare_cron_made_instances(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("cloudflare", "nightly", WorkflowScript(duration=30))
    first = emu.start_cron_instance("nightly", "*/30 * * * *")
    second = emu.start_cron_instance("nightly", "*/30 * * * *")  # the next tick of the same schedule
    cron, _, scheduled = first.rpartition("-")
    assert cron == "*/30 * * * *" and int(scheduled) % 60_000 == 0 and second != first
    # Addressed percent-encoded, as Cloudflare's SDK sends it ("/" -> %2F, " " -> %20).
    encoded = first.replace("/", "%2F").replace(" ", "%20")
    result = http.get(cf_url(emu, suffix=f"/{encoded}"), headers=CF_HEADERS).json()["result"]
    assert result["trigger"] == {"source": "cron"}
    assert result["schedule"] == {"cron": "*/30 * * * *", "scheduledTime": int(scheduled)}
    listed = http.get(cf_url(emu), headers=CF_HEADERS).json()["result"]
    assert {(i["id"], i["trigger_source"]) for i in listed} == {(first, "cron"), (second, "cron")}
    # Such an id can be addressed but not created; other characters are refused.
    created = http.post(cf_url(emu), json={"instance_id": "*/5 * * * *-1"}, headers=CF_HEADERS)
    assert (created.status_code, created.json()["errors"][0]["message"]) == (400, "instance.invalid_id")
    bad = http.get(cf_url(emu, suffix="/invalid!"), headers=CF_HEADERS)
    assert (bad.status_code, bad.json()["errors"][0]["message"]) == (400, "instance.invalid_id")
    control = http.post(f"{emu.url}/_emulator/cron_instance", json={"workflow": "nightly", "cron": "0 0 * * MON#2"})
    assert control.json()["id"].startswith("0 0 * * MON#2-")


def test_cloudflare_list_without_cursors(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.create_executions("cloudflare", "nightly", 5)
    emu.set_cloudflare_list_cursors(False)
    first = http.get(cf_url(emu), params={"per_page": 2}, headers=CF_HEADERS).json()
    assert "cursor" not in first["result_info"] and first["result_info"]["total_count"] == 5
    third = http.get(cf_url(emu), params={"per_page": 2, "page": 3}, headers=CF_HEADERS).json()
    assert len(third["result"]) == 1 and third["result_info"]["page"] == 3
    rolling_back = http.get(cf_url(emu), params={"status": "rollingBack"}, headers=CF_HEADERS)
    assert rolling_back.status_code == 200 and rolling_back.json()["result"] == []
