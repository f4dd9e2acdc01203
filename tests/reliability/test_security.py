"""Issue 14, tried as an attacker would: each attack reproduced, and each now fails.

The attacks run against small hostile stand-ins on 127.0.0.1 (``hostile.py``: a vendor that answers
what an attacker wants, a proxy, a bare listener standing in for an attacker's host), the emulator,
and a real task run (``dag.test()``) where the issue saw the leak in a task log. Sentry's events are
captured by a local transport. Every try is recorded in one table, ``reports/security.md``.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from airflow_workflow_provider._compat import ResumableJobMixin
from airflow_workflow_provider.core.errors import (
    BadRequestError,
    InvalidResponseError,
    ResponseTooLargeError,
    WorkflowApiError,
    WorkflowInputError,
    WorkflowTransportError,
)
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, AsyncSender, SyncSender, Timeouts
from airflow_workflow_provider.core.security import TransportPolicy
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook
from airflow_workflow_provider.testing.aio import run_async
from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import VENDORS, WORKFLOW_IDS, connection_uri_env
from tests.operators.conftest import dags_folder, output, run_dag  # noqa: F401 - fixtures for the task-log tests
from tests.reliability.conftest import Attack, SecurityTable
from tests.reliability.hostile import SAILPOINT_TOKEN, Answer, HostileServer, Listener, RefusingProxy, Seen, connection

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
HOOKS = {"datadog": DatadogWorkflowsHook, "cloudflare": CloudflareWorkflowsHook, "sailpoint": SailPointWorkflowsHook}
STACKS = ("sync", "async")

ATTACKS = {
    a.name: a
    for a in (
        Attack(
            1,
            "sentry",
            "Sentry with local variables on; a transport failure (the host hangs up mid-request) is reported",
            "ApiRequest/ApiResponse reprs redact headers, form and body; transport errors chain no library "
            "exception (their frames hold the header dicts)",
        ),
        Attack(
            1,
            "repr",
            "repr() of every object the provider creates while a request is in flight",
            "header and form values shown as ***, bodies as their size",
        ),
        Attack(
            2,
            "newline_key_task_log",
            "an API key pasted with a trailing newline, run in a real task; its task log searched",
            "credentials stripped when read; the task succeeds and its log holds no form of the key",
        ),
        Attack(
            2,
            "control_char_key",
            "a key with a line break inside; a header value with one reaching either HTTP stack",
            "refused before any request with WorkflowInputError naming the field, never the value; "
            "aiohttp's bare ValueError and requests' InvalidHeader become that error too",
        ),
        Attack(
            3,
            "tenant_host",
            "a SailPoint tenant crafted to send the client secret elsewhere (user@host, a look-alike domain, "
            "'#', '/' or '\\' tricks); the other host is an attacker's stand-in on 127.0.0.1",
            "a tenant is a name, or a host under identitynow.com / identitynow-demo.com; '@ : ? # \\ /' refused",
        ),
        Attack(
            3,
            "final_url_host",
            "a request path that moves the final URL to another host (or adds user@, which turns on Basic auth)",
            "both stacks check the final URL's host against the connection's before sending",
        ),
        Attack(
            4,
            "netrc",
            "a ~/.netrc entry for the API host (NETRC) next to the connection's credentials",
            "no stack reads .netrc (requests trust_env off, aiohttp trust_env off)",
        ),
        Attack(
            4,
            "env_proxy_loopback",
            "HTTP(S)_PROXY/ALL_PROXY set while base_url is a loopback host (the emulator, a local proxy)",
            "environment proxies are never used for loopback, on both stacks",
        ),
        Attack(
            4,
            "proxy_policy",
            "one proxy policy for both stacks: explicit proxy_url, else the environment's for vendor hosts",
            "TransportPolicy.proxy_for decides, both senders pass its answer",
        ),
        Attack(
            5,
            "echoed_secret",
            "a vendor or proxy echoes a credential in the error code, the tracking id (cf-ray, trackingId) "
            "or URL-encoded in the message",
            "one Redactor over message, code and tracking id, matching raw, URL-encoded and escaped forms",
        ),
        Attack(
            5,
            "base_url_credentials",
            "a base_url carrying user:password@, shown in the error and the Test button",
            "URLs in messages are shown without userinfo, query or fragment",
        ),
        Attack(
            5,
            "unmasked_extra_name",
            "the Datadog application key under the old extra name application_key (Airflow does not mask it)",
            "refused with an error saying to rename it to application_key_secret",
        ),
        Attack(
            6,
            "cloudflare_instance_id",
            "two deployments (staging, production) run the same DAG for the same date with different payloads",
            "operator-chosen instance ids carry a random part, recorded in the task state before the start; "
            "a start that meets an existing id attaches only when that instance's params are its payload",
        ),
        Attack(
            8,
            "decompression_bomb",
            "a small gzip answer that inflates to 64 MB, with max_response_mb=1",
            "both stacks read the body in chunks and stop at max_response_mb (decompressed); not retried",
        ),
        Attack(
            8,
            "oversized_body",
            "a plain answer larger than max_response_mb, declared in Content-Length",
            "refused from the declared length, before the body is read",
        ),
        Attack(
            9,
            "malformed_answer",
            "deep nesting, a 5,000-digit number, a status object, a list as a time, epoch 1e300",
            "VendorApi.read_answer turns whatever a parser trips on into InvalidResponseError",
        ),
        Attack(
            9,
            "malformed_answer_trigger",
            "the same answers reaching a deferred task's trigger",
            "the trigger ends with an error event instead of crashing",
        ),
        Attack(
            10,
            "xcom_output",
            "a 3 MB vendor output returned by a run operator, waiting in the worker and deferred",
            "summaries carry an output up to max_output_bytes (1 MiB default, per operator), else leave it "
            "out with output_truncated: true and a note",
        ),
        Attack(
            10,
            "xcom_list",
            "a list of 300 executions with 50 KB outputs each (15 MB) returned by a list operator",
            "list summaries leave outputs out",
        ),
        Attack(
            12,
            "emulator_control",
            "a web page resets the emulator while a developer tests: a rebound name as Host, no token, a form or "
            "text/plain body (what a page can send without asking)",
            "the control API needs a loopback Host, the per-start X-Emulator-Token and JSON bodies",
        ),
        Attack(
            13,
            "dependency_floors",
            "dependency versions with known advisories (requests <2.32.4, aiohttp <3.14.4, urllib3 <2.6.3)",
            "pyproject floors above them, and the installed versions meet them",
        ),
    )
}


@pytest.fixture
def table(security_table: SecurityTable) -> SecurityTable:
    security_table.attacks = ATTACKS
    return security_table


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def _forms(secret: str) -> list[str]:
    """The forms in which a secret could show: raw, URL-encoded, escaped."""
    return sorted({secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1], json.dumps(secret)[1:-1]})


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [form for secret in secrets for form in _forms(secret) if form in text]


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, dict[str, Any]], Any]:
    """Define a connection through the environment, as a deployment may, and return a hook on it."""

    def hook_for(vendor: str, conn: dict[str, Any]) -> Any:
        conn_id = f"security_{vendor}_{_tag()}"
        monkeypatch.setenv(*connection_uri_env(conn_id, conn))
        return HOOKS[vendor](conn_id)

    return hook_for


def _call(hook: Any, vendor: str, stack: str, execution_id: str = "exec-1") -> Any:
    workflow = WORKFLOW_IDS[vendor]
    if stack == "sync":
        return hook.get_execution(workflow, execution_id)
    return run_async(lambda: hook.aget_execution(workflow, execution_id))


def _send(stack: str, base_url: str, request: ApiRequest) -> ApiResponse:
    """One request straight through the sync or the async sender of the core, without a hook."""
    if stack == "async":
        return run_async(lambda: AsyncSender("test", Timeouts(2, 2)).send(base_url, request))
    sender = SyncSender("test", Timeouts(2, 2))
    try:
        return sender.send(base_url, request)
    finally:
        sender.close()


def _raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("the attack was expected to be stopped with an error")


# -- 1. error trackers -------------------------------------------------------------------------------


class SentrySink(Transport):
    """Sentry's transport replaced by a list: events stay in the test process."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def text(self) -> str:
        return "\n".join(envelope.serialize().decode("utf-8", "replace") for envelope in self.envelopes)


@pytest.fixture
def sentry_events() -> Iterator[SentrySink]:
    """Sentry as Airflow's integration sets it up (default integrations, local variables on)."""
    sink = SentrySink()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=sink, include_local_variables=True)
    try:
        yield sink
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: off


def _report_to_sentry(call: Callable[[], Any]) -> BaseException:
    """Run ``call`` and report its error as Airflow's task runner would, from a frame holding no secret."""
    try:
        call()
    except Exception as exc:
        sentry_sdk.capture_exception(exc)
        sentry_sdk.flush()
        return exc
    raise AssertionError("expected a transport failure")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_sentry_events_of_a_transport_failure_hold_no_credential(
    vendor: str, stack: str, connect: Any, sentry_events: SentrySink, table: SecurityTable
) -> None:
    secret = f"SENTRYSECRET-{_tag()}"
    with Listener() as host:  # reads the request, then hangs up: a transport failure after sending
        hook = connect(vendor, connection(vendor, f"http://127.0.0.1:{host.port}", password=secret, max_attempts=1))
        error = _report_to_sentry(lambda: _call(hook, vendor, stack))
        hook.close()
    assert isinstance(error, WorkflowTransportError), repr(error)
    assert secret.encode() in host.received, "the request never carried the secret: the test would prove nothing"
    event = sentry_events.text()
    assert "WorkflowTransportError" in event and '"vars"' in event, "no event with local variables was captured"
    leaks = _leaks(event, [secret, secret + "-app", SAILPOINT_TOKEN])
    assert not leaks, f"Sentry's event holds {leaks}"
    table.record("sentry", f"{vendor}/{stack}", "event captured with local variables; no credential in it")


def test_reprs_show_no_credential(table: SecurityTable) -> None:
    secret = f"REPRSECRET-{_tag()}"
    request = ApiRequest(
        "get_token",
        "POST",
        "/oauth/token",
        form={"client_secret": secret},
        headers={"Authorization": f"Bearer {secret}", "DD-API-KEY": secret},
        json_body={"token": secret},
    )
    response = ApiResponse(
        "SailPoint", "get_token", 200, {"set-cookie": secret}, json.dumps({"access_token": secret}).encode()
    )
    texts = [repr(request), str(request), repr(response), str(response), repr(TransportPolicy())]
    assert "Authorization" in texts[0] and "client_secret" in texts[0]  # the names stay, for debugging
    assert not _leaks("\n".join(texts), [secret])
    table.record("repr", "ApiRequest, ApiResponse, TransportPolicy", "names shown, values ***")


# -- 2. a credential with a line break ---------------------------------------------------------------


@pytest.mark.timeout(600)  # the first dag.test of a session migrates Airflow's database
def test_a_key_with_a_trailing_newline_works_and_never_reaches_the_task_log(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Any,  # noqa: F811 - the fixture imported above
    output: Any,  # noqa: F811
    table: SecurityTable,
) -> None:
    from tests.conftest import vendor_connection

    conn = vendor_connection("datadog", emulator)
    key = conn["password"]
    conn["password"] = key + "\n"
    monkeypatch.setenv(*connection_uri_env("datadog_workflows_default", conn))
    workflow = WORKFLOW_IDS["datadog"]

    result = run_dag(
        "security_newline_key",
        "from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator\n"
        f"DatadogRunWorkflowOperator(task_id='run', workflow={workflow!r}, poll_interval=0.1)\n",
    )

    log = output()
    assert result.state == "success", log[-3000:]
    assert "execution" in log
    assert not _leaks(log, [key, key + "\n"]), "a form of the key is in the task log"
    table.record("newline_key_task_log", "datadog, dag.test()", "task succeeded; no form of the key in its log")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_key_with_a_control_character_inside_is_refused_by_field(
    vendor: str, connect: Any, table: SecurityTable
) -> None:
    secret = f"CTRL{_tag()}\nINSIDE{_tag()}"
    with HostileServer() as server:
        hook = connect(vendor, connection(vendor, server.url, password=secret))
        error = _raised(lambda: hook.get_execution(WORKFLOW_IDS[vendor], "exec-1"))
        ok, message = hook.test_connection()
    assert isinstance(error, WorkflowInputError), repr(error)
    assert error.field.startswith("password") and "control character" in str(error)
    assert not ok and "password" in message
    assert not server.seen, "a request was sent"
    assert not _leaks(f"{error} {message} {error!r}", [secret, *secret.split("\n")])
    table.record("control_char_key", f"{vendor}/connection", f"WorkflowInputError: {error.field}: control character")


@pytest.mark.parametrize("stack", STACKS)
def test_a_header_with_a_line_break_is_an_input_error_on_both_stacks(stack: str, table: SecurityTable) -> None:
    secret = f"HDRSECRET-{_tag()}\r\nX-Injected: 1"
    request = ApiRequest("get_execution", "GET", "/x", headers={"DD-API-KEY": secret})
    with HostileServer() as server:
        error = _raised(lambda: _send(stack, server.url, request))
    assert isinstance(error, WorkflowInputError), repr(error)
    assert error.__cause__ is None and error.__context__ is None
    assert not _leaks(str(error), [secret, secret.split("\r")[0]])
    assert not server.seen
    table.record("control_char_key", f"raw header/{stack}", "WorkflowInputError (no value, nothing chained)")


# -- 3. where the SailPoint client secret goes ---------------------------------------------------------

HOSTILE_TENANTS = (
    "acme.api.identitynow.com@evil.com",
    "acme.identitynow.com.evil.com",
    "acme.evil.com#.identitynow.com",
    "acme.evil.com/.identitynow.com",
    "evil.com\\.identitynow.com",
    "acme.api.identitynow.com.evil.com:443",
)


@pytest.fixture
def attacker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """An attacker's host on loopback: every name under evil.com resolves to it, whatever port is asked."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    with Listener() as host:

        def resolve(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(name, str) and (name == "evil.com" or name.endswith(".evil.com")):
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", host.port))]
            return real_getaddrinfo(name, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        # The stand-in works: a connection to a name under evil.com reaches it.
        socket.create_connection(("acme.api.identitynow.com.evil.com", 443), timeout=5).close()
        deadline = time.monotonic() + 5
        while host.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.connections == 1
        host.connections = 0
        yield host


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("tenant", HOSTILE_TENANTS)
def test_a_crafted_tenant_never_receives_the_client_secret(
    tenant: str, stack: str, attacker: Listener, connect: Any, table: SecurityTable
) -> None:
    secret = f"TENANTSECRET-{_tag()}"
    conn = connection("sailpoint", "unused", password=secret, max_attempts=1, connect_timeout=2, read_timeout=2)
    del conn["extra"]["base_url"]
    conn["host"] = tenant
    hook = connect("sailpoint", conn)
    error = _raised(lambda: _call(hook, "sailpoint", stack))
    ok, message = hook.test_connection()
    hook.close()
    assert isinstance(error, WorkflowInputError) and error.field == "host (Tenant)", repr(error)
    assert not ok and "Tenant" in message
    assert attacker.connections == 0 and secret.encode() not in attacker.received
    table.record("tenant_host", f"{tenant!r} ({stack})", "WorkflowInputError host (Tenant); no connection to it")


@pytest.mark.parametrize("stack", STACKS)
def test_a_path_cannot_move_the_request_to_another_host(stack: str, table: SecurityTable) -> None:
    secret = f"HOSTSECRET-{_tag()}"
    with Listener() as attacker, HostileServer() as server:
        request = ApiRequest(
            "get_execution", "GET", f"@127.0.0.1:{attacker.port}/steal", headers={"Authorization": f"Bearer {secret}"}
        )
        error = _raised(lambda: _send(stack, server.url, request))
    assert isinstance(error, WorkflowInputError) and error.field == "base_url", repr(error)
    assert attacker.connections == 0 and not server.seen
    assert secret not in str(error)
    table.record("final_url_host", f"{stack} stack", "WorkflowInputError base_url; nothing sent")


# -- 4. .netrc and proxies ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("vendor", ["datadog", "cloudflare"])
def test_netrc_never_touches_our_requests(
    vendor: str, stack: str, connect: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: SecurityTable
) -> None:
    netrc_secret = f"NETRCSECRET{_tag()}"
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login netrcuser password {netrc_secret}\ndefault login any password {netrc_secret}\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".netrc").write_text(netrc.read_text())
    (tmp_path / ".netrc").chmod(0o600)
    token = f"NETRCTEST-{_tag()}"
    with HostileServer(lambda seen: Answer.of_json({}, status=404)) as server:
        hook = connect(vendor, connection(vendor, server.url, password=token))
        _raised(lambda: _call(hook, vendor, stack))
        hook.close()
    assert server.seen
    sent = server.texts()
    assert netrc_secret not in sent and "Basic " not in sent, sent
    authorization = [s.headers.get("Authorization") for s in server.seen]
    expected = [None] if vendor == "datadog" else [f"Bearer {token}"]
    assert set(authorization) == set(expected), authorization
    table.record("netrc", f"{vendor}/{stack}", "our own headers only; no Basic auth from .netrc")


@pytest.mark.parametrize("stack", STACKS)
def test_environment_proxies_are_never_used_for_loopback(
    stack: str, connect: Any, monkeypatch: pytest.MonkeyPatch, table: SecurityTable
) -> None:
    secret = f"PROXYSECRET-{_tag()}"
    with RefusingProxy() as proxy, HostileServer(lambda seen: Answer.of_json({}, status=404)) as server:
        for name in PROXY_VARIABLES:
            if name == "NO_PROXY":
                monkeypatch.delenv(name, raising=False)
                monkeypatch.delenv(name.lower(), raising=False)
            else:
                monkeypatch.setenv(name, proxy.url)
                monkeypatch.setenv(name.lower(), proxy.url)
        hook = connect("datadog", connection("datadog", server.url, password=secret))
        _raised(lambda: _call(hook, "datadog", stack))
        hook.close()
    assert server.seen, "the request did not reach the loopback API directly"
    assert not proxy.seen.first_lines and secret.encode() not in proxy.seen.raw
    table.record("env_proxy_loopback", f"datadog/{stack}", "went straight to 127.0.0.1; the proxy saw nothing")


@pytest.mark.parametrize("stack", STACKS)
def test_one_proxy_policy_for_both_stacks(
    stack: str, connect: Any, monkeypatch: pytest.MonkeyPatch, table: SecurityTable
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    secret = f"POLICYSECRET-{_tag()}"
    with RefusingProxy() as proxy, HostileServer() as server:
        # an explicit proxy_url is used, for a loopback API too
        hook = connect("datadog", connection("datadog", server.url, password=secret, proxy_url=proxy.url))
        assert isinstance(_raised(lambda: _call(hook, "datadog", stack)), WorkflowApiError)
        hook.close()
        assert not server.seen and any(f"127.0.0.1:{server.port}" in line for line in proxy.seen.first_lines)
        # the environment's proxy is used for a vendor's public host: refused by the test proxy at CONNECT,
        # so nothing leaves the machine and the key never reaches the proxy (it would go inside TLS).
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        conn = connection("datadog", server.url, password=secret)
        del conn["extra"]["base_url"]
        hook = connect("datadog", conn)
        error = _raised(lambda: _call(hook, "datadog", stack))
        hook.close()
    assert isinstance(error, WorkflowTransportError), repr(error)
    assert any(line.startswith("CONNECT api.datadoghq.com:443") for line in proxy.seen.first_lines), proxy.seen
    assert secret.encode() not in proxy.seen.raw.split(b"CONNECT", 1)[1]
    policy = TransportPolicy(environment_proxies=False)
    assert policy.proxy_for("https://api.datadoghq.com/api") is None
    table.record("proxy_policy", f"{stack} stack", "proxy_url used; env proxy used for api.datadoghq.com (CONNECT)")


def test_proxy_and_size_settings_are_validated_by_field(connect: Any) -> None:
    for extra, field, says in (
        ({"proxy_url": "http://user:pw@proxy:3128"}, "extra.proxy_url", "must not carry credentials"),
        ({"proxy_url": "socks5://proxy:1080"}, "extra.proxy_url", "http(s) URL"),
        ({"max_response_mb": 0}, "extra.max_response_mb", "above 0"),
        ({"max_response_mb": "lots"}, "extra.max_response_mb", "number of megabytes"),
        ({"use_environment_proxy": "maybe"}, "extra.use_environment_proxy", "true or false"),
    ):
        hook = connect("datadog", connection("datadog", "http://127.0.0.1:9", **extra))
        error = _raised(lambda h=hook: h.api)
        assert isinstance(error, WorkflowInputError) and error.field == field and says in str(error), error
        assert "pw" not in str(error)


# -- 5. redaction gaps ---------------------------------------------------------------------------------


def _echoing_server(vendor: str, secret: str) -> Callable[[Seen], Answer | None]:
    encoded = quote(secret, safe="")

    def answer(seen: Seen) -> Answer | None:
        if seen.path.endswith("/oauth/token"):
            return None
        if vendor == "datadog":
            return Answer.of_json({"errors": [{"code": secret, "detail": f"key {encoded} refused"}]}, status=400)
        if vendor == "cloudflare":
            return Answer.of_json(
                {"success": False, "errors": [{"code": 10000, "message": f"token {quote_plus(secret)} refused"}]},
                status=400,
                **{"cf-ray": secret},
            )
        return Answer.of_json(
            {"detailCode": secret, "trackingId": secret, "messages": [{"text": f"secret {encoded} refused"}]},
            status=400,
        )

    return answer


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_secret_echoed_in_code_tracking_id_or_url_encoded_is_redacted(
    vendor: str, stack: str, connect: Any, table: SecurityTable
) -> None:
    secret = f"ECHO/{_tag()}+key=1"
    with HostileServer(_echoing_server(vendor, secret)) as server:
        hook = connect(vendor, connection(vendor, server.url, password=secret))
        error = _raised(lambda: _call(hook, vendor, stack))
        hook.close()
    assert isinstance(error, BadRequestError), repr(error)
    assert "***" in str(error), f"the stand-in did not echo anything: {error}"
    texts = f"{error} {error!r} {error.code} {error.tracking_id} {error.message}"
    assert not _leaks(texts, [secret]), texts
    table.record(
        "echoed_secret", f"{vendor}/{stack}", "BadRequestError with ***: code, tracking id and message redacted"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:BASEURLSECRET@proxy.example.com",
        "https://user:BASEURLSECRET@proxy.example.com:notaport",
        "ftp://user:BASEURLSECRET@proxy.example.com",
        "user:BASEURLSECRET@proxy.example.com",
        "https://user:BASE#URL/SECRET@proxy.example.com",
        "https://proxy.example.com/?api_key=BASEURLSECRET",
    ],
)
def test_a_base_url_with_credentials_is_never_echoed(base_url: str, connect: Any, table: SecurityTable) -> None:
    hook = connect("datadog", connection("datadog", base_url))
    error = _raised(lambda: hook.api)
    ok, message = hook.test_connection()
    assert isinstance(error, WorkflowInputError) and error.field == "extra.base_url", repr(error)
    assert not ok
    for part in ("BASEURLSECRET", "BASE#URL", "URL/SECRET"):
        assert part not in f"{error} {message}", message
    table.record(
        "base_url_credentials",
        "6 malformed or credentialed URLs",
        "WorkflowInputError; URL shown without userinfo/query",
    )


def test_the_old_unmasked_extra_name_is_refused(connect: Any, table: SecurityTable) -> None:
    conn = connection("datadog", "http://127.0.0.1:9")
    conn["extra"]["application_key"] = conn["extra"].pop("application_key_secret")
    hook = connect("datadog", conn)
    error = _raised(lambda: hook.api)
    ok, message = hook.test_connection()
    assert isinstance(error, WorkflowInputError) and error.field == "extra.application_key"
    assert "application_key_secret" in str(error) and "application_key_secret" in message and not ok
    assert conn["extra"]["application_key"] not in f"{error} {message}"
    table.record("unmasked_extra_name", "datadog", "WorkflowInputError: rename it to application_key_secret")


# -- 6. Cloudflare instance ids across deployments ------------------------------------------------------


@pytest.mark.skipif(
    not ResumableJobMixin.__module__.startswith("airflow.sdk"),
    reason="Airflow below 3.3 has no task_state_store: Cloudflare picks the instance id",
)
def test_two_deployments_never_share_a_cloudflare_instance(
    emulator: Any, set_connection: Any, table: SecurityTable
) -> None:
    from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
    from tests.operators.support import TaskStateStore, context

    set_connection("cloudflare")
    emulator.script("cloudflare", "etl", WorkflowScript(duration=0.2, queued_for=0.0))
    results = {}
    for deployment in ("staging", "production"):  # the same DAG, task and run; each its own task state
        operator = CloudflareRunWorkflowOperator(
            task_id="run", workflow="etl", payload={"deployment": deployment}, poll_interval=0.05
        )
        results[deployment] = operator.execute(context(TaskStateStore()))
    instances = {e["id"]: e["payload"] for e in emulator.executions("cloudflare", "etl")}
    assert results["staging"]["id"] != results["production"]["id"]
    assert instances == {
        results["staging"]["id"]: {"deployment": "staging"},
        results["production"]["id"]: {"deployment": "production"},
    }
    table.record("cloudflare_instance_id", "run operator, 2 task states", "2 instances, each with its own payload")


def test_a_start_meeting_someone_elses_instance_id_is_refused(
    emulator: Any, set_connection: Any, table: SecurityTable
) -> None:
    from airflow_workflow_provider.core.errors import ConflictError

    hook = HOOKS["cloudflare"](set_connection("cloudflare"))
    emulator.script("cloudflare", "etl", WorkflowScript(duration=30))
    hook.start_execution("etl", {"deployment": "staging"}, instance_id="nightly-2026-11-30")
    error = _raised(lambda: hook.start_execution("etl", {"deployment": "production"}, instance_id="nightly-2026-11-30"))
    assert isinstance(error, ConflictError) and "not started by this task" in str(error), repr(error)
    # A resend of our own start (same params) still attaches, as a lost answer needs.
    assert hook.start_execution("etl", {"deployment": "staging"}, instance_id="nightly-2026-11-30") == (
        "nightly-2026-11-30"
    )
    [instance] = emulator.executions("cloudflare", "etl")
    assert instance["payload"] == {"deployment": "staging"}
    hook.close()
    table.record("cloudflare_instance_id", "hook, existing id", "other params: ConflictError; same params: attached")


# -- 8. answer sizes -----------------------------------------------------------------------------------


@cache
def _gzip_bomb(inflated: int) -> bytes:
    """gzip of ``inflated`` spaces, built in pieces (never holding the inflated bytes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = b" " * (1024 * 1024)
    parts = [compressor.compress(piece) for _ in range(inflated // len(piece))]
    return b"".join([*parts, compressor.flush()])


BOMB_INFLATED = 64 * 1024 * 1024
CAP_MB = 1


def _bomb_handler(seen: Seen) -> Answer | None:
    if seen.path.endswith("/oauth/token"):
        return None
    return Answer(200, _gzip_bomb(BOMB_INFLATED), {"Content-Type": "application/json", "Content-Encoding": "gzip"})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_decompression_bomb_stops_at_the_limit(vendor: str, stack: str, connect: Any, table: SecurityTable) -> None:
    assert len(_gzip_bomb(BOMB_INFLATED)) < 512 * 1024
    with HostileServer(_bomb_handler) as server:
        hook = connect(vendor, connection(vendor, server.url, max_response_mb=CAP_MB))
        tracemalloc.start()
        try:
            error = _raised(lambda: _call(hook, vendor, stack))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        hook.close()
    assert isinstance(error, ResponseTooLargeError), repr(error)
    assert "max_response_mb" in str(error)
    calls = [s for s in server.seen if not s.path.endswith("/oauth/token")]
    assert len(calls) == 1, "a too-large answer must not be fetched again"
    # Without the limit the 64 MB would be held (twice, while decoding); with it, a few MB at most.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB"
    table.record("decompression_bomb", f"{vendor}/{stack}", "ResponseTooLargeError after 1 request; peak below 16 MB")


@pytest.mark.parametrize("stack", STACKS)
def test_a_declared_oversized_body_is_refused_before_reading(stack: str, connect: Any, table: SecurityTable) -> None:
    body = b" " * (2 * 1024 * 1024)
    with HostileServer(lambda seen: Answer(200, body)) as server:
        hook = connect("cloudflare", connection("cloudflare", server.url, max_response_mb=CAP_MB))
        error = _raised(lambda: _call(hook, "cloudflare", stack))
        hook.close()
    assert isinstance(error, ResponseTooLargeError), repr(error)
    assert len(server.seen) == 1
    table.record("oversized_body", f"cloudflare/{stack}", "ResponseTooLargeError, not retried")


# -- 9. malformed answers --------------------------------------------------------------------------


def _execution_body(vendor: str, **fields: Any) -> dict[str, Any]:
    if vendor == "datadog":
        attributes = {"instanceStatus": {"detailsKind": fields.get("status", "SUCCEEDED")}}
        if "time" in fields:
            attributes["startTimestamp"] = fields["time"]
        return {"data": {"id": "exec-1", "type": "instance", "attributes": attributes}}
    if vendor == "cloudflare":
        result = {"id": "exec-1", "status": fields.get("status", "complete")}
        if "time" in fields:
            result["start"] = fields["time"]
        return {"success": True, "errors": [], "result": result}
    body = {"id": "exec-1", "workflowId": "wf", "status": fields.get("status", "Completed")}
    if "time" in fields:
        body["startTime"] = fields["time"]
    return body


MALFORMED: dict[str, Callable[[str], str]] = {
    "deep_nesting": lambda vendor: "[" * 100_000 + "]" * 100_000,
    "5000_digit_number": lambda vendor: '{"data": {"id": ' + "9" * 5000 + "}, " + '"result": ' + "9" * 5000 + "}",
    "status_object": lambda vendor: json.dumps(_execution_body(vendor, status={"nested": True})),
    "list_as_time": lambda vendor: json.dumps(_execution_body(vendor, time=[2026, 1, 1])),
    "epoch_1e300": lambda vendor: json.dumps(_execution_body(vendor, time=1e300)),
}


def _malformed_handler(vendor: str, shape: str) -> Callable[[Seen], Answer | None]:
    def answer(seen: Seen) -> Answer | None:
        if seen.path.endswith("/oauth/token"):
            return None
        return Answer.raw_json(MALFORMED[shape](vendor))

    return answer


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("shape", list(MALFORMED))
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_malformed_answer_is_an_invalid_response_error(
    vendor: str, shape: str, stack: str, connect: Any, table: SecurityTable
) -> None:
    with HostileServer(_malformed_handler(vendor, shape)) as server:
        hook = connect(vendor, connection(vendor, server.url))
        error = _raised(lambda: _call(hook, vendor, stack))
        hook.close()
    assert isinstance(error, InvalidResponseError), f"{shape}: {error!r}"
    assert error.__cause__ is None
    table.record("malformed_answer", f"{vendor}/{stack}/{shape}", "InvalidResponseError")


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_malformed_answer_ends_the_trigger_with_an_error_event(
    shape: str, connect: Any, table: SecurityTable
) -> None:
    from airflow_workflow_provider.triggers.datadog import DatadogWorkflowTrigger

    with HostileServer(_malformed_handler("datadog", shape)) as server:
        hook = connect("datadog", connection("datadog", server.url))
        trigger = DatadogWorkflowTrigger(
            datadog_conn_id=hook.connection_id,
            workflow=WORKFLOW_IDS["datadog"],
            execution_id="exec-1",
            poll_interval=0.1,
        )

        async def first_event() -> Any:
            return await asyncio.wait_for(anext(aiter(trigger.run())), timeout=30)

        event = run_async(first_event)
    assert event.payload["status"] == "error", event.payload
    assert "answer" in event.payload["message"], event.payload
    table.record("malformed_answer_trigger", f"datadog trigger/{shape}", "error event, trigger ended cleanly")


# -- 10. XCom sizes ------------------------------------------------------------------------------------

BIG_OUTPUT = {"blob": "x" * (3 * 1024 * 1024)}


@pytest.mark.timeout(600)
def test_a_large_output_is_left_out_of_the_xcom_with_a_note(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Any,  # noqa: F811
    output: Any,  # noqa: F811
    table: SecurityTable,
) -> None:
    from tests.conftest import vendor_connection

    monkeypatch.setenv(*connection_uri_env("datadog_workflows_default", vendor_connection("datadog", emulator)))
    workflow = WORKFLOW_IDS["datadog"]
    emulator.script("datadog", workflow, WorkflowScript(duration=0.3, queued_for=0.0, output=BIG_OUTPUT))
    operator = "from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator\n"
    tasks = "".join(
        f"DatadogRunWorkflowOperator(task_id={task!r}, workflow={workflow!r}, poll_interval=0.1, {arguments})\n"
        for task, arguments in (
            ("in_worker", ""),
            ("deferred", "deferrable=True"),
            ("small_limit", "max_output_bytes=1000"),
            ("no_limit", "max_output_bytes=None"),
        )
    )

    result = run_dag("security_big_output", operator + tasks)

    assert result.state == "success", output()[-3000:]
    for task in ("in_worker", "deferred", "small_limit"):
        returned = result.xcom(task)
        assert returned["state"] == "succeeded" and returned["output_truncated"] is True, task
        assert returned["output"] is None and "max_output_bytes" in returned["output_note"]
        assert len(json.dumps(returned)) < 4096, task
        table.record("xcom_output", f"datadog/{task}", "XCom row < 4 KB; output_truncated: true with a note")
    whole = result.xcom("no_limit")
    assert whole["output"] == BIG_OUTPUT and whole["output_truncated"] is False
    table.record("xcom_output", "datadog/max_output_bytes=None", "the whole output, as asked")


def test_a_list_summary_leaves_outputs_out(connect: Any, table: SecurityTable) -> None:
    from airflow_workflow_provider.operators.datadog import DatadogListWorkflowExecutionsOperator
    from tests.operators.support import context

    blob = "y" * (50 * 1024)

    def page(seen: Seen) -> Answer:
        number = int(seen.path.split("page%5Bnumber%5D=")[1].split("&")[0]) if "number" in seen.path else 0
        items = [
            {"id": f"exec-{number}-{i}", "type": "instance", "attributes": {"outputs": {"blob": blob}}}
            for i in range(100)
        ]
        return Answer.of_json({"data": items, "meta": {"page": {"totalCount": 300}}})

    with HostileServer(page) as server:
        hook = connect("datadog", connection("datadog", server.url))
        operator = DatadogListWorkflowExecutionsOperator(
            task_id="list", workflow=WORKFLOW_IDS["datadog"], datadog_conn_id=hook.connection_id, max_results=300
        )
        result = operator.execute(context())
    assert result["count"] == 300 and len(server.seen) == 3
    size = len(json.dumps(result))
    assert size < 300 * 1024, size  # 15 MB of outputs otherwise
    assert all("output" not in execution for execution in result["executions"])
    table.record("xcom_list", "datadog, 300 executions x 50 KB", f"XCom {size // 1024} KB, no outputs")


# -- 12. the emulator's control API ----------------------------------------------------------------------

CONTROL_ATTEMPTS = {
    # name: (Host header or None for the real one, token?, content type, expected status)
    "rebound_host": ("attacker.example:80", True, "application/json", 403),
    "rebound_host_with_port": ("evil.test:{port}", True, "application/json", 403),
    "no_token": (None, False, "application/json", 403),
    "wrong_token": (None, "wrong", "application/json", 403),
    "form_body": (None, True, "application/x-www-form-urlencoded", 415),
    "text_body": (None, True, "text/plain", 415),
}


@pytest.mark.parametrize("attempt", list(CONTROL_ATTEMPTS))
def test_the_emulator_control_api_refuses_what_a_web_page_could_send(
    attempt: str, emulator: Any, table: SecurityTable
) -> None:
    import requests

    host, token, content_type, status = CONTROL_ATTEMPTS[attempt]
    emulator.create_executions("datadog", "wf", 1)
    headers = {"Content-Type": content_type}
    if host:
        headers["Host"] = host.format(port=emulator.port)
    if token is True:
        headers.update(emulator.control_headers)
    elif token:
        headers["X-Emulator-Token"] = token
    answer = requests.post(f"{emulator.url}/_emulator/reset", data="{}", headers=headers, timeout=10)
    assert answer.status_code == status, answer.text
    assert emulator.executions("datadog", "wf"), "the reset went through"
    # The same call, as the test that started the emulator makes it, works.
    allowed = requests.post(f"{emulator.url}/_emulator/reset", json={}, headers=emulator.control_headers, timeout=10)
    assert allowed.status_code == 200 and not emulator.executions("datadog", "wf")
    table.record("emulator_control", attempt, f"HTTP {status}, nothing reset; with the token and JSON: 200")


# -- 13. dependency floors -------------------------------------------------------------------------


def test_dependency_floors_are_above_the_known_advisories(table: SecurityTable) -> None:
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for name, fixed_in in (("requests", "2.32.4"), ("aiohttp", "3.14.4"), ("urllib3", "2.6.3")):
        requirement = requirements.get(name)
        assert requirement is not None, f"{name} is not declared"
        release = Version(fixed_in).release
        vulnerable = (*release[:-1], release[-1] - 1)
        assert not requirement.specifier.contains(".".join(map(str, vulnerable))), f"{requirement} admits {vulnerable}"
        assert requirement.specifier.contains(fixed_in)
        assert Version(metadata.version(name)) >= Version(fixed_in)
    table.record(
        "dependency_floors", "requests, aiohttp, urllib3", "floors at the fixed releases; installed ones meet them"
    )
