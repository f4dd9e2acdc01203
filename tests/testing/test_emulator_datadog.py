"""The emulated Datadog Workflow Automation API, driven with raw HTTP."""

from __future__ import annotations

import uuid

import pytest
import requests

from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.testing.emulator_support import (
    CREDS,
    DD_HEADERS,
    FAST,
    dd_get,
    dd_start,
    dd_url,
    newest_first,
    parse_iso,
    wait_for,
)

pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]


def test_datadog_runs_to_success(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("datadog", "wf-ok", WorkflowScript(duration=0.3, queued_for=0.05))
    response = http.post(dd_url(emu, "wf-ok"), json={"meta": {"payload": {"day": "mon"}}}, headers=DD_HEADERS)
    assert response.status_code == 200
    body = response.json()
    iid = body["data"]["id"]
    # As recorded (test_execute_a_workflow_returns_created_response): 200, type "instances", empty attributes.
    assert body == {"data": {"attributes": {}, "id": iid, "type": "instances"}, "meta": {"workflowId": "wf-ok"}}
    assert uuid.UUID(iid)

    seen = wait_for(
        lambda: dd_get(http, emu, "wf-ok", iid), lambda a: a["instanceStatus"]["detailsKind"] != "IN_PROGRESS"
    )
    final = seen[-1]
    assert seen[0]["instanceStatus"] == {"detailsKind": "IN_PROGRESS", "displayName": "Running"}
    assert "endTimestamp" not in seen[0] and seen[0]["outputs"] == {}
    assert final["instanceStatus"] == {"detailsKind": "SUCCEEDED", "displayName": "Succeeded"}
    assert "id" not in final and "workflowId" not in final  # the workflow is a relationship, not an attribute
    resource = http.get(dd_url(emu, "wf-ok", f"/{iid}"), headers=DD_HEADERS).json()["data"]
    assert (resource["id"], resource["type"]) == (iid, "instances")
    assert resource["relationships"]["workflow"]["data"] == {"id": "wf-ok", "type": "workflows"}
    assert final["outputs"] == {"result": "ok", "input": {"day": "mon"}}
    assert parse_iso(final["endTimestamp"]) >= parse_iso(final["startTimestamp"])
    assert final["startTimestamp"].endswith("Z")
    assert [(s["stepName"], s["stepState"]) for s in final["stepStateAssociations"]] == [
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
    assert attributes["instanceStatus"] == {"detailsKind": "FAILED", "displayName": "Failed"}
    assert attributes["outputs"] == {}
    assert attributes["stepStateAssociations"][-1] == {
        "stepName": "step_2",
        "stepState": "FAILED",
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
    attributes = wait_for(lambda: dd_get(http, emu, "wf", iid), lambda a: a.get("endTimestamp") is not None)[-1]
    steps = attributes["stepStateAssociations"]
    assert [(s["stepName"], s["stepState"]) for s in steps] == [("extract", "SUCCEEDED"), ("load", "FAILED")]
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
        "page": {"totalCount": 25, "totalFilteredCount": 25},
        "succeededCount": 20,
        "failedCount": 3,
        "canceledCount": 2,
    }
    item = pages[0]["data"][0]
    assert item["type"] == "instances"
    assert item["attributes"]["instanceStatus"]["detailsKind"] in ("SUCCEEDED", "FAILED", "CANCELED")
    # As recorded (test_list_workflow_instances_returns_ok_response): no steps, no outputs in a list item.
    assert set(item["attributes"]) == {"instanceStatus", "startTimestamp", "endTimestamp"}

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
    assert attributes["instanceStatus"] == {"detailsKind": "CANCELED", "displayName": "Canceled"}  # as recorded
    assert attributes["endTimestamp"] is not None

    again = http.put(dd_url(emu, "wf", f"/{iid}/cancel"), headers=DD_HEADERS)
    assert again.status_code == 400
    assert again.json()["errors"][0]["code"] == "INSTANCE_ALREADY_FINISHED"

    missing = http.get(dd_url(emu, "wf", "/nope"), headers=DD_HEADERS)
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"code": "INSTANCE_NOT_FOUND", "detail": "instance nope not found"}]}
    # An instance is only found under its own workflow.
    assert http.get(dd_url(emu, "other", f"/{iid}"), headers=DD_HEADERS).status_code == 404


def test_datadog_vocabulary_is_a_choice_not_a_fact(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.script("datadog", "wf", WorkflowScript(**FAST))
    emu.set_datadog_vocabulary("success-failure")
    iid = dd_start(http, emu, "wf")
    final = wait_for(lambda: dd_get(http, emu, "wf", iid), lambda a: "endTimestamp" in a)[-1]
    assert final["instanceStatus"] == {"detailsKind": "SUCCESS", "displayName": "Success"}
    assert {s["stepState"] for s in final["stepStateAssociations"]} == {"SUCCESS"}
    # Through the control API, as another process would choose.
    control = f"{emu.url}/_emulator/datadog_vocabulary"
    assert http.post(control, json={"name": "opaque"}).status_code == 200
    assert http.post(control, json={"name": "made-up"}).status_code == 400
    iid = dd_start(http, emu, "wf")
    final = wait_for(lambda: dd_get(http, emu, "wf", iid), lambda a: "endTimestamp" in a)[-1]
    assert final["instanceStatus"] == {"detailsKind": "STATE_5", "displayName": "Ended"}
    with pytest.raises(ValueError, match="succeeded-failed"):
        emu.set_datadog_vocabulary("made-up")


def test_datadog_validate_checks_the_api_key_alone(emu: WorkflowEmulator, http: requests.Session) -> None:
    url = f"{emu.base_url('datadog')}/api/v1/validate"
    assert http.get(url, headers={"DD-API-KEY": CREDS.datadog_api_key}).json() == {"valid": True}
    refused = http.get(url, headers={"DD-API-KEY": "nope", "DD-APPLICATION-KEY": CREDS.datadog_application_key})
    assert (refused.status_code, refused.json()) == (403, {"errors": ["Forbidden"]})
