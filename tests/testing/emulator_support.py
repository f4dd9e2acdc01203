"""Helpers the emulator tests share: credentials, headers, polling, one request builder per vendor."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from airflow_workflow_provider.testing.emulator import EmulatorCredentials, WorkflowEmulator

CREDS = EmulatorCredentials()
DD_HEADERS = {"DD-API-KEY": CREDS.datadog_api_key, "DD-APPLICATION-KEY": CREDS.datadog_application_key}
CF_HEADERS = {"Authorization": f"Bearer {CREDS.cloudflare_api_token}"}
REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = {"duration": 0.2, "queued_for": 0.05}


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


APPROVAL = {"duration": 0.35, "queued_for": 0.05, "wait_after": 0.1, "wait_for_event": "approval"}


def cf_event(
    http: requests.Session, emu: WorkflowEmulator, iid: str, event_type: str, payload: Any = None
) -> requests.Response:
    return http.post(cf_url(emu, suffix=f"/{iid}/events/{event_type}"), json=payload, headers=CF_HEADERS)


def cf_status(http: requests.Session, emu: WorkflowEmulator, iid: str, workflow: str = "nightly") -> str:
    return cf_get(http, emu, iid, workflow)["status"]


def cf_wait_start(
    http: requests.Session, emu: WorkflowEmulator, params: Any = None, iid: str | None = None, workflow: str = "nightly"
) -> str:
    body: dict[str, Any] = {"params": params or {}}
    if iid is not None:
        body["instance_id"] = iid
    response = http.post(cf_url(emu, workflow), json=body, headers=CF_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["result"]["id"]


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
