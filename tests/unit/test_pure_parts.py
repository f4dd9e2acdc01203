"""The parts that do no I/O: states, validation, error envelopes, settings, provider info."""

from __future__ import annotations

import json
import logging

import pendulum
import pytest

from airflow_workflow_provider import get_provider_info
from airflow_workflow_provider.core.api import ClientSettings
from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    WorkflowInputError,
)
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, parse_retry_after
from airflow_workflow_provider.core.models import WorkflowExecution
from airflow_workflow_provider.core.states import ExecutionState, StatusMap
from airflow_workflow_provider.core.validation import path_segment, require_base_url, require_id
from airflow_workflow_provider.hooks.cloudflare import CloudflareApi, require_instance_id
from airflow_workflow_provider.hooks.datadog import DatadogApi, normalize_site
from airflow_workflow_provider.hooks.sailpoint import SailPointApi, tenant_hosts

SETTINGS = ClientSettings()


def datadog() -> DatadogApi:
    return DatadogApi(site="datadoghq.com", api_key="k" * 32, application_key="a" * 40, settings=SETTINGS)


def cloudflare() -> CloudflareApi:
    return CloudflareApi(account_id="acc", api_token="cf-token-123456", settings=SETTINGS)


def sailpoint() -> SailPointApi:
    return SailPointApi(tenant="acme", client_id="cid", client_secret="csecret-123456", settings=SETTINGS)


def answer(status: int, body: object, vendor: str = "X", headers: dict[str, str] | None = None) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(vendor=vendor, operation="get_execution", status=status, headers=headers or {}, body=raw)


REQUEST = ApiRequest(operation="get_execution", method="GET", path="/x")


def test_terminal_states() -> None:
    terminal = {s for s in ExecutionState if s.is_terminal}
    assert terminal == {ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELED}
    assert not ExecutionState.UNKNOWN.is_terminal
    assert ExecutionState.CANCELED.is_failure and not ExecutionState.SUCCEEDED.is_failure


def test_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    statuses = StatusMap("Acme", {"done": ExecutionState.SUCCEEDED})
    with caplog.at_level(logging.WARNING):
        assert statuses.normalize("DONE") is ExecutionState.SUCCEEDED
        assert statuses.normalize("warp") is ExecutionState.UNKNOWN
        assert statuses.normalize("warp") is ExecutionState.UNKNOWN
    assert [r.getMessage().count("warp") for r in caplog.records] == [1]


@pytest.mark.parametrize(
    ("api", "status", "state"),
    [
        (datadog, "IN_PROGRESS", ExecutionState.RUNNING),
        (datadog, None, ExecutionState.RUNNING),
        (datadog, "SUCCEEDED", ExecutionState.SUCCEEDED),
        (datadog, "CANCELED", ExecutionState.CANCELED),
        (cloudflare, "waiting", ExecutionState.WAITING),
        (cloudflare, "waitingForPause", ExecutionState.RUNNING),
        (cloudflare, "complete", ExecutionState.SUCCEEDED),
        (cloudflare, "errored", ExecutionState.FAILED),
        (cloudflare, "terminated", ExecutionState.CANCELED),
        (cloudflare, "unknown", ExecutionState.UNKNOWN),
        (sailpoint, "Executing", ExecutionState.RUNNING),
        (sailpoint, "Completed", ExecutionState.SUCCEEDED),
        (sailpoint, "Failed", ExecutionState.FAILED),
    ],
)
def test_status_maps(api, status: str | None, state: ExecutionState) -> None:
    assert api().status_map.normalize(status) is state


@pytest.mark.parametrize(
    ("value", "site"),
    [
        (None, "datadoghq.com"),
        ("app.datadoghq.eu", "datadoghq.eu"),
        ("https://us5.datadoghq.com/", "us5.datadoghq.com"),
        ("AP2.datadoghq.com", "ap2.datadoghq.com"),
    ],
)
def test_datadog_sites(value: str | None, site: str) -> None:
    assert normalize_site(value) == site


@pytest.mark.parametrize("gov", ["ddog-gov.com", "app.ddog-gov.com", "us2.ddog-gov.com"])
def test_datadog_gov_sites_are_refused(gov: str) -> None:
    with pytest.raises(WorkflowInputError, match="does not offer Workflow Automation"):
        normalize_site(gov)


def test_datadog_unknown_site_lists_the_allowed_ones() -> None:
    with pytest.raises(WorkflowInputError, match=r"datadoghq\.eu"):
        normalize_site("datadoghq.org")


def test_datadog_ui_links() -> None:
    assert datadog().execution_url("wf", "i 1") == "https://app.datadoghq.com/workflow/wf?instance=i%201"
    eu = DatadogApi(site="datadoghq.eu", api_key="k", application_key="a", settings=SETTINGS)
    assert eu.execution_url("wf", "i").startswith("https://app.datadoghq.eu/workflow/wf")
    us3 = DatadogApi(site="us3.datadoghq.com", api_key="k", application_key="a", settings=SETTINGS)
    assert us3.base_url == "https://api.us3.datadoghq.com"
    assert us3.execution_url("wf", "i").startswith("https://us3.datadoghq.com/workflow/wf")


def test_cloudflare_and_sailpoint_links() -> None:
    assert (
        cloudflare().execution_url("etl", "run-1")
        == "https://dash.cloudflare.com/acc/workers/workflows/etl/instance/run-1"
    )
    assert sailpoint().execution_url("wf-1", "x") == "https://acme.identitynow.com/ui/a/admin/workflows/wf-1"


@pytest.mark.parametrize(
    ("tenant", "api_host", "ui_host"),
    [
        ("acme", "acme.api.identitynow.com", "acme.identitynow.com"),
        ("https://acme.api.identitynow.com/", "acme.api.identitynow.com", "acme.identitynow.com"),
        ("acme.identitynow-demo.com", "acme.api.identitynow-demo.com", "acme.identitynow-demo.com"),
    ],
)
def test_sailpoint_tenant_hosts(tenant: str, api_host: str, ui_host: str) -> None:
    assert tenant_hosts(tenant) == (api_host, ui_host)


@pytest.mark.parametrize(
    "bad",
    ["-starts-with-dash", "has space", "a/b", "x" * 101, "cf_" + "a" * 64, "ünïcode", ""],
)
def test_cloudflare_instance_ids(bad: str) -> None:
    with pytest.raises(WorkflowInputError, match="instance_id"):
        require_instance_id(bad)
    assert require_instance_id("cf_" + "a" * 63) == "cf_" + "a" * 63
    assert require_instance_id("_run-2026_11_23") == "_run-2026_11_23"


def test_ids_are_path_escaped() -> None:
    assert path_segment(require_id("workflow", "a?b#c%d")) == "a%3Fb%23c%25d"
    request = datadog().get_request("wf?x", "id#1")
    assert request.path == "/api/v2/workflows/wf%3Fx/instances/id%231"


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "ftp://127.0.0.1", "not a url", "https://user:pw@proxy.example.com", "https://h/?q=1"],
)
def test_base_url_override_is_checked(url: str) -> None:
    with pytest.raises(WorkflowInputError, match="base_url"):
        require_base_url("extra.base_url", url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/datadog", "http://localhost:1", "http://[::1]:2", "https://p.example.com/"]
)
def test_base_url_override_allowed(url: str) -> None:
    assert not require_base_url("extra.base_url", url).endswith("/")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"read_timeout": "soon"}, "read_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_client_settings_are_checked(extra: dict, field: str) -> None:
    with pytest.raises(WorkflowInputError, match=field):
        ClientSettings.from_extra(extra)


def test_client_settings_from_strings() -> None:
    settings = ClientSettings.from_extra({"connect_timeout": "3", "read_timeout": 7, "max_attempts": "2"})
    assert (settings.timeouts.connect, settings.timeouts.read, settings.retry_policy.max_attempts) == (3, 7, 2)


def test_missing_secrets_name_the_field() -> None:
    with pytest.raises(WorkflowInputError, match="application_key_secret"):
        DatadogApi(site="datadoghq.com", api_key="k", application_key="", settings=SETTINGS)
    with pytest.raises(WorkflowInputError, match="API token"):
        CloudflareApi(account_id="acc", api_token="", settings=SETTINGS)
    with pytest.raises(WorkflowInputError, match="Client secret"):
        SailPointApi(tenant="acme", client_id="c", client_secret=None, settings=SETTINGS)  # type: ignore[arg-type]
    with pytest.raises(WorkflowInputError, match="account_id"):
        CloudflareApi(account_id=None, api_token="t", settings=SETTINGS)  # type: ignore[arg-type]


def test_datadog_error_envelopes() -> None:
    api = datadog()
    strings = api.error_for(REQUEST, answer(400, {"errors": ["Bad Request", "payload too big"]}))
    assert isinstance(strings, BadRequestError) and strings.message == "Bad Request; payload too big"
    objects = api.error_for(REQUEST, answer(404, {"errors": [{"code": "INSTANCE_NOT_FOUND", "detail": "gone"}]}))
    assert isinstance(objects, NotFoundError) and objects.code == "INSTANCE_NOT_FOUND" and objects.message == "gone"
    limited = api.error_for(REQUEST, answer(429, {"errors": ["slow down"]}, headers={"x-ratelimit-reset": "7"}))
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 7
    assert str(objects) == "Datadog get_execution failed: HTTP 404 [INSTANCE_NOT_FOUND] gone"


def test_cloudflare_error_envelope() -> None:
    api = cloudflare()
    body = {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}], "result": None}
    error = api.error_for(REQUEST, answer(403, body, headers={"cf-ray": "8c1f-AMS"}))
    assert isinstance(error, PermissionDeniedError)
    assert (error.code, error.message, error.tracking_id) == ("10000", "Authentication error", "8c1f-AMS")
    # success:false inside a 200 is an error too
    assert api.is_error(REQUEST, answer(200, body))
    conflict = api.error_for(REQUEST, answer(409, {"success": False, "errors": [{"code": 1, "message": "exists"}]}))
    assert isinstance(conflict, ConflictError)


def test_sailpoint_error_envelopes() -> None:
    api = sailpoint()
    body = {
        "detailCode": "400.1 Bad Request Content",
        "trackingId": "e7eab60924f64aa284175b9fa3309599",
        "messages": [{"locale": "en-US", "localeOrigin": "DEFAULT", "text": "Workflow must be disabled to test"}],
        "causes": [],
    }
    error = api.error_for(REQUEST, answer(400, body))
    assert error.tracking_id == "e7eab60924f64aa284175b9fa3309599"
    assert "tracking id e7eab60924f64aa284175b9fa3309599" in str(error)
    assert error.message == "Workflow must be disabled to test"
    expired = api.error_for(REQUEST, answer(401, {"error": "JWT validation failed: JWT is expired"}))
    assert isinstance(expired, AuthenticationError) and "JWT is expired" in expired.message
    limited = api.error_for(REQUEST, answer(429, {"message": "Rate Limit Exceeded"}, headers={"retry-after": "3"}))
    assert (
        isinstance(limited, RateLimitedError) and limited.retry_after == 3 and limited.message == "Rate Limit Exceeded"
    )
    server = api.error_for(REQUEST, answer(502, b"<html>bad gateway</html>"))
    assert isinstance(server, ServerError) and "not valid JSON" in server.message


def test_error_messages_never_carry_a_secret() -> None:
    api = cloudflare()
    echo = {"success": False, "errors": [{"code": 9106, "message": "bad token cf-token-123456"}]}
    error = api.error_for(REQUEST, answer(400, echo))
    assert "cf-token-123456" not in str(error) and "***" in str(error)
    assert "cf-token-123456" not in repr(api)


def test_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None
    http_date = pendulum.now("UTC").add(seconds=30).format("ddd, DD MMM YYYY HH:mm:ss [GMT]")
    assert 25 <= parse_retry_after(http_date) <= 31  # type: ignore[operator]


def test_execution_model_is_tolerant() -> None:
    execution = WorkflowExecution(
        vendor="X", workflow="w", id="1", started_at=1700000000000, ended_at="2026-11-23T10:00:00Z", surprise=1
    )
    assert execution.started_at == pendulum.datetime(2023, 11, 14, 22, 13, 20)
    assert isinstance(execution.ended_at, pendulum.DateTime)
    assert execution.state is ExecutionState.UNKNOWN
    assert json.dumps(execution.summary())


def test_provider_info_lists_connection_types() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-workflow-provider"
    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(types) == {"datadog_workflows", "cloudflare_workflows", "sailpoint_workflows"}
    for entry in types.values():
        module, _, cls = entry["hook-class-name"].rpartition(".")
        assert getattr(__import__(module, fromlist=[cls]), cls).conn_type == entry["connection-type"]
    from airflow_workflow_provider import _airflow_reads_declarative_forms

    if not _airflow_reads_declarative_forms():
        assert "conn-fields" not in types["datadog_workflows"]  # Airflow 3.0/3.1 ask the hooks instead
        return
    fields = types["datadog_workflows"]["conn-fields"]
    assert fields["application_key_secret"]["schema"]["format"] == "password"
    assert "format" not in fields["base_url"]["schema"]


def test_hook_forms_for_older_airflow() -> None:
    from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook

    assert "get_ui_field_behaviour" in SailPointWorkflowsHook.__dict__
    behaviour = SailPointWorkflowsHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "Client secret"
    # wtforms alone (a dependency) is enough: Airflow 3.0/3.1 run without Flask-AppBuilder unless FAB is installed.
    from wtforms import PasswordField, StringField

    from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook

    widgets = SailPointWorkflowsHook.get_connection_form_widgets()
    assert set(widgets) == {
        "user_client_id",
        "user_client_secret",
        "api_version",
        "base_url",
        "proxy_url",
        "use_environment_proxy",
        "max_response_mb",
    }
    assert widgets["api_version"].field_class is StringField and widgets["api_version"].kwargs["default"] == "v3"
    assert widgets["user_client_secret"].field_class is PasswordField
    secret = DatadogWorkflowsHook.get_connection_form_widgets()["application_key_secret"]
    assert secret.field_class is PasswordField
