"""The workflow emulator, driven with raw HTTP (requests / aiohttp): what all three vendors share (faults,
rate limits, the request log, the control API, lifecycle, CLI).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from airflow_workflow_provider.testing.emulator import (
    RequestRecord,
    WorkflowEmulator,
    WorkflowScript,
    read_control_token,
)
from tests.testing.emulator_support import (
    APPROVAL,
    CF_HEADERS,
    CREDS,
    DD_HEADERS,
    REPO_ROOT,
    cf_event,
    cf_status,
    cf_url,
    cf_wait_start,
    dd_get,
    dd_start,
    dd_url,
    parse_iso,
    sp_token,
    wait_for,
)

pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]


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


def test_rate_limits_count_per_credential(emu: WorkflowEmulator, http: requests.Session) -> None:
    """Vendors limit each credential: another key has a window of its own."""
    emu.set_rate_limit("datadog", 2, 60)
    other = {**DD_HEADERS, "DD-API-KEY": "another-key"}
    for _ in range(2):
        assert http.get(dd_url(emu, "wf"), headers=DD_HEADERS).status_code == 200
    assert http.get(dd_url(emu, "wf"), headers=DD_HEADERS).status_code == 429
    # The other key is not throttled (it is refused for being unknown, which is not a 429).
    assert http.get(dd_url(emu, "wf"), headers=other).status_code != 429


def test_cloudflare_blocks_a_whole_period_past_its_limit(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.set_rate_limit("cloudflare", 1, 0.5, blocks_for_a_period=True)
    assert start_request(emu, http, "cloudflare").status_code == 200
    time.sleep(0.3)
    assert start_request(emu, http, "cloudflare").status_code == 429  # blocked from here for 0.5 s
    time.sleep(0.3)  # the window would have reset by now; the block has not
    assert start_request(emu, http, "cloudflare").status_code == 429
    time.sleep(0.35)
    assert start_request(emu, http, "cloudflare").status_code == 200


def test_documented_limits(emu: WorkflowEmulator, http: requests.Session) -> None:
    emu.enforce_documented_limits()
    answer = http.get(dd_url(emu, "wf"), headers=DD_HEADERS)
    assert answer.headers["X-RateLimit-Limit"] == "1000" and answer.headers["X-RateLimit-Period"] == "60"
    token = sp_token(http, emu)
    for _ in range(99):  # the token request was the first of SailPoint's 100 per 10 s
        assert http.get(f"{emu.base_url('sailpoint')}/v3/workflows", headers={"Authorization": f"Bearer {token}"})
    limited = http.get(f"{emu.base_url('sailpoint')}/v3/workflows", headers={"Authorization": f"Bearer {token}"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) <= 10
    assert limited.json() == {"message": "Rate Limit Exceeded"}


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
    assert set(log[0]) == {"vendor", "operation", "method", "path", "status", "at"}  # never headers or bodies
    assert isinstance(log[0]["at"], float) and log[0]["at"] <= log[1]["at"]

    assert http.post(f"{control}/revoke_tokens", json={}).status_code == 200
    assert http.post(f"{control}/rate_limit", json={"vendor": "datadog", "limit": 0}).status_code == 200
    archive = {"vendor": "datadog", "execution_id": iid}
    assert http.post(f"{control}/archive", json=archive).status_code == 200
    assert http.post(f"{control}/reset", json={}).json() == {"status": "ok"}
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
        token = {"X-Emulator-Token": read_control_token(url_file)}
        assert requests.get(f"{url}/_emulator/requests", headers=token, timeout=5).status_code == 200
        assert requests.get(f"{url}/_emulator/requests", timeout=5).status_code == 403
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
    assert not url_file.exists() and not Path(f"{url_file}.token").exists()


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
