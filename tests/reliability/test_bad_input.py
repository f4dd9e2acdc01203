"""Bad input is refused before any request, with a message that names the field and says what is allowed.

Table-driven across the three vendors. Every case asserts that the emulator saw no request at all
(a SailPoint token request included). This goes beyond ``tests/unit/test_pure_parts.py`` (which checks
the validators on their own) and ``tests/hooks/test_hooks_common.py`` (a few ids on get and start):
here every hook operation, sync and async, meets every kind of bad value through a real connection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import NotFoundError, WorkflowInputError
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import SITES, DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook
from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator
from airflow_workflow_provider.operators.sailpoint import SailPointRunWorkflowOperator
from airflow_workflow_provider.testing.aio import run_async
from airflow_workflow_provider.testing.emulator import WorkflowEmulator
from tests.conftest import VENDORS, WORKFLOW_IDS

HOOKS = {"datadog": DatadogWorkflowsHook, "cloudflare": CloudflareWorkflowsHook, "sailpoint": SailPointWorkflowsHook}
OPERATORS = {
    "datadog": DatadogRunWorkflowOperator,
    "cloudflare": CloudflareRunWorkflowOperator,
    "sailpoint": SailPointRunWorkflowOperator,
}
GOOD_ID = "3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10"


# Every operation that takes an id, and which argument the bad value goes into.
def _calls(hook: Any, workflow: str) -> dict[tuple[str, str], Callable[[Any], Any]]:
    return {
        ("start_execution", "workflow"): lambda bad: hook.start_execution(bad, {"x": 1}),
        ("get_execution", "workflow"): lambda bad: hook.get_execution(bad, GOOD_ID),
        ("get_execution", "execution_id"): lambda bad: hook.get_execution(workflow, bad),
        ("cancel_execution", "workflow"): lambda bad: hook.cancel_execution(bad, GOOD_ID),
        ("cancel_execution", "execution_id"): lambda bad: hook.cancel_execution(workflow, bad),
        ("list_executions", "workflow"): lambda bad: hook.list_executions(bad),
        ("aget_execution", "workflow"): lambda bad: run_async(lambda: hook.aget_execution(bad, GOOD_ID)),
        ("aget_execution", "execution_id"): lambda bad: run_async(lambda: hook.aget_execution(workflow, bad)),
        ("acancel_execution", "execution_id"): lambda bad: run_async(lambda: hook.acancel_execution(workflow, bad)),
    }


# (bad value, what the message must say is wrong / allowed)
BAD_IDS = [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("a/b", "must not contain '/'", id="slash"),
    pytest.param("a\\b", "must not contain '/' or '\\'", id="backslash"),
    pytest.param("..", "must not contain '..'", id="dotdot"),
    pytest.param("a..b", "must not contain '..'", id="inner-dotdot"),
    pytest.param(" lead", "whitespace or control characters", id="leading-space"),
    pytest.param("trail ", "whitespace or control characters", id="trailing-space"),
    pytest.param("in side", "whitespace or control characters", id="inner-space"),
    pytest.param("tab\tbed", "whitespace or control characters", id="tab"),
    pytest.param("new\nline", "whitespace or control characters", id="newline"),
    pytest.param("nul\x00byte", "whitespace or control characters", id="nul"),
    pytest.param("del\x7fchar", "whitespace or control characters", id="del"),
    pytest.param("a" * 257, "at most 256 characters", id="overlong"),
    pytest.param(None, "must be a string", id="none"),
    pytest.param(42, "must be a string", id="int"),
]


@pytest.mark.parametrize(("bad", "says"), BAD_IDS)
@pytest.mark.parametrize("vendor_name", VENDORS)
def test_bad_ids_are_refused_everywhere(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, bad: Any, says: str
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name))
    for (operation, field), call in _calls(hook, WORKFLOW_IDS[vendor_name]).items():
        if vendor_name == "cloudflare" and field == "execution_id":
            continue  # Cloudflare's own rule: test_cloudflare_execution_ids_follow_cloudflares_rule
        with pytest.raises(WorkflowInputError) as caught:
            call(bad)
        assert caught.value.field == field, (operation, caught.value)
        assert says in str(caught.value), (operation, str(caught.value))
        assert str(caught.value).startswith(f"{field}: ")
    assert emulator.requests == []


# Ids a cron trigger could have made (letters, digits, spaces and , * / # _ -, up to 271 characters:
# cloudflare/workers-sdk validators.ts): Cloudflare is asked, and answers that no such instance exists.
CLOUDFLARE_ADDRESSABLE = {"a/b", " lead", "trail ", "in side", "a" * 257}


@pytest.mark.parametrize(("bad", "says"), BAD_IDS)
def test_cloudflare_execution_ids_follow_cloudflares_rule(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], bad: Any, says: str
) -> None:
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    calls = {key: call for key, call in _calls(hook, WORKFLOW_IDS["cloudflare"]).items() if key[1] == "execution_id"}
    for (operation, field), call in calls.items():
        if bad in CLOUDFLARE_ADDRESSABLE:
            with pytest.raises(NotFoundError):
                call(bad)
            continue
        with pytest.raises(WorkflowInputError) as caught:
            call(bad)
        assert caught.value.field == field, (operation, caught.value)
        assert str(caught.value).startswith(f"{field}: ")
    sent = [r.operation for r in emulator.requests]
    assert len(sent) == (len(calls) if bad in CLOUDFLARE_ADDRESSABLE else 0)


@pytest.mark.parametrize(
    ("instance_id", "says"),
    [
        pytest.param("-dash-first", "must not start with '-'", id="dash-first"),
        pytest.param("dotted.id", "letters, digits, '-' and '_'", id="dot"),
        pytest.param("plus+sign", "letters, digits, '-' and '_'", id="plus"),
        pytest.param("colon:id", "letters, digits, '-' and '_'", id="colon"),
        pytest.param("ünïcode", "letters, digits, '-' and '_'", id="unicode"),
        pytest.param("white space", "whitespace", id="space"),
        pytest.param("ctrl\x01", "whitespace or control", id="control"),
        pytest.param("a/b", "'/'", id="slash"),
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("x" * 101, "at most 100 characters", id="101-chars"),
        pytest.param("cf_" + "0" * 64, "reserved", id="reserved-lower"),
        pytest.param("cf_" + "abcdef0123456789" * 4, "reserved", id="reserved-lower-hex"),
    ],
)
def test_cloudflare_instance_ids_outside_the_pattern_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], instance_id: str, says: str
) -> None:
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    with pytest.raises(WorkflowInputError) as caught:
        hook.start_execution("etl", {"n": 1}, instance_id=instance_id)
    assert caught.value.field == "instance_id"
    assert says in caught.value.problem
    assert emulator.requests == []


@pytest.mark.parametrize(
    "instance_id",
    [
        "x" * 100,
        "_underscore-first",
        "cf_" + "a" * 63,
        "cf_" + "g" * 64,
        "cf_" + "a" * 65,
        "0",
    ],
)
def test_cloudflare_instance_ids_at_the_edges_are_accepted(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], instance_id: str
) -> None:
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    assert hook.start_execution("etl", instance_id=instance_id) == instance_id
    assert [e["id"] for e in emulator.executions("cloudflare", "etl")] == [instance_id]


def test_cloudflare_workflow_names_over_64_characters_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str]
) -> None:
    hook = CloudflareWorkflowsHook(set_connection("cloudflare"))
    for call in (
        lambda: hook.start_execution("w" * 65),
        lambda: hook.get_execution("w" * 65, "run-1"),
        lambda: hook.list_executions("w" * 65),
        lambda: hook.cancel_execution("w" * 65, "run-1"),
    ):
        with pytest.raises(WorkflowInputError, match="at most 64 characters") as caught:
            call()
        assert caught.value.field == "workflow"
    assert emulator.requests == []


def _circular() -> dict[str, Any]:
    payload: dict[str, Any] = {"name": "loop"}
    payload["self"] = payload
    return payload


def _deep(levels: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    node = payload
    for _ in range(levels):
        node["child"] = {}
        node = node["child"]
    return payload


BAD_PAYLOADS = [
    pytest.param({"when": object()}, "JSON-serializable", id="object"),
    pytest.param({"at": datetime(2026, 11, 23)}, "JSON-serializable", id="datetime"),
    pytest.param({"n": math.nan}, "JSON-serializable", id="nan"),
    pytest.param({"n": math.inf}, "JSON-serializable", id="inf"),
    pytest.param({"s": {1, 2}}, "JSON-serializable", id="set"),
    pytest.param({"b": b"bytes"}, "JSON-serializable", id="bytes"),
    pytest.param({(1, 2): "tuple key"}, "JSON-serializable", id="tuple-key"),
    pytest.param(_circular(), "JSON-serializable", id="circular"),
    pytest.param(["a", "list"], "must be a JSON object (dict)", id="list"),
    pytest.param("a string", "must be a JSON object (dict)", id="string"),
    pytest.param(42, "must be a JSON object (dict)", id="int"),
    pytest.param(_deep(5000), "JSON-serializable", id="nested-deeper-than-the-recursion-limit"),
]


@pytest.mark.parametrize(("payload", "says"), BAD_PAYLOADS)
@pytest.mark.parametrize("vendor_name", VENDORS)
def test_payloads_that_are_not_json_objects_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, payload: Any, says: str
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name))
    with pytest.raises(WorkflowInputError) as caught:
        hook.start_execution(WORKFLOW_IDS[vendor_name], payload)
    assert caught.value.field == "payload"
    assert says in caught.value.problem
    assert emulator.requests == []
    assert emulator.executions(vendor_name) == []


def _every_operation_refuses(emulator: WorkflowEmulator, hook: Any, workflow: str, field: str, says: str) -> None:
    """Each operation, and the Test button, refuses the connection before sending anything."""
    for call in (
        lambda: hook.start_execution(workflow),
        lambda: hook.get_execution(workflow, GOOD_ID),
        lambda: hook.cancel_execution(workflow, GOOD_ID),
        lambda: list(hook.list_executions(workflow)),
        lambda: run_async(lambda: hook.aget_execution(workflow, GOOD_ID)),
    ):
        with pytest.raises(WorkflowInputError) as caught:
            call()
        assert caught.value.field == field, caught.value
        assert says in caught.value.problem, caught.value
    ok, message = hook.test_connection()
    assert not ok and message.startswith("The connection is not usable:") and field in message
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("overrides", "extra", "says"),
    [
        pytest.param({"host": "datadoghq.org"}, {}, "unknown site 'datadoghq.org'", id="unknown-site"),
        pytest.param({"host": "us4.datadoghq.com"}, {}, "unknown site", id="us4"),
        pytest.param({"host": "example.com"}, {}, "unknown site", id="example.com"),
        pytest.param({"host": "datadoghq.com.evil.io"}, {}, "unknown site", id="suffix-trick"),
        pytest.param({"host": "ddog-gov.com"}, {}, "does not offer Workflow Automation", id="gov"),
        pytest.param({"host": "https://app.ddog-gov.com/"}, {}, "does not offer Workflow Automation", id="gov-url"),
        pytest.param({"host": "api.us2.ddog-gov.com"}, {}, "does not offer Workflow Automation", id="gov-us2-api"),
        pytest.param({"host": None}, {"site": "us2.ddog-gov.com"}, "does not offer", id="gov-in-extra-site"),
    ],
)
def test_datadog_sites_that_are_unknown_or_gov_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], overrides: dict, extra: dict, says: str
) -> None:
    hook = DatadogWorkflowsHook(set_connection("datadog", overrides=overrides, **extra))
    _every_operation_refuses(emulator, hook, WORKFLOW_IDS["datadog"], "host (Datadog site)", says)
    with pytest.raises(WorkflowInputError) as caught:
        hook.get_execution("wf", GOOD_ID)
    assert all(site in str(caught.value) for site in SITES), "the message lists the allowed sites"


BAD_BASE_URLS = [
    pytest.param("http://example.com/datadog", "must use https", id="http-remote"),
    pytest.param("http://10.0.0.5:8080/x", "must use https", id="http-private-ip"),
    pytest.param("http://0.0.0.0:8080/", "must use https", id="http-any-address"),
    pytest.param("http://127.0.0.1.nip.io/", "must use https", id="http-loopback-lookalike"),
    pytest.param("http://localhost.example.com/", "must use https", id="http-localhost-lookalike"),
    pytest.param("http://127.0.0.1@evil.example.com/", "must use https", id="http-userinfo-trick"),
    pytest.param("not a url", "absolute http(s) URL", id="not-a-url"),
    pytest.param("127.0.0.1:8080", "absolute http(s) URL", id="no-scheme"),
    pytest.param("ftp://127.0.0.1/", "absolute http(s) URL", id="ftp"),
    pytest.param("file:///etc/passwd", "absolute http(s) URL", id="file"),
    pytest.param("https://", "absolute http(s) URL", id="no-host"),
    pytest.param("https://user:pw@proxy.example.com", "must not carry credentials", id="credentials"),
    pytest.param("https://proxy.example.com/?token=x", "query string or fragment", id="query"),
]


@pytest.mark.parametrize(("base_url", "says"), BAD_BASE_URLS)
@pytest.mark.parametrize("vendor_name", VENDORS)
def test_base_url_overrides_that_are_not_https_or_not_urls_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, base_url: str, says: str
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name, base_url=base_url))
    _every_operation_refuses(emulator, hook, WORKFLOW_IDS[vendor_name], "extra.base_url", says)


# (vendor, connection overrides, extras, field, what the message says)
MISSING = [
    pytest.param("datadog", {"password": None}, {}, "password (API key)", "set the Datadog API key", id="dd-no-key"),
    pytest.param("datadog", {"password": ""}, {}, "password (API key)", "is empty", id="dd-empty-key"),
    pytest.param(
        "datadog",
        {},
        {"application_key_secret": "", "application_key": ""},
        "extra.application_key_secret",
        "Datadog application key",
        id="dd-no-app-key",
    ),
    pytest.param(
        "cloudflare", {"password": None}, {}, "password (API token)", "Cloudflare API token", id="cf-no-token"
    ),
    pytest.param(
        "cloudflare",
        {"login": "ops@example.com", "password": ""},
        {},
        "password (API token)",
        "Global API Key",
        id="cf-email-without-global-key",
    ),
    # An empty extra is dropped like a missing one: the message asks for it.
    pytest.param("cloudflare", {}, {"account_id": ""}, "extra.account_id (Account ID)", "is empty", id="cf-no-account"),
    pytest.param(
        "cloudflare", {}, {"account_id": "acc/../x"}, "extra.account_id (Account ID)", "'/'", id="cf-bad-account"
    ),
    pytest.param("sailpoint", {"password": None}, {}, "password (Client secret)", "client secret", id="sp-no-secret"),
    pytest.param("sailpoint", {"login": None}, {}, "login (Client ID)", "client id", id="sp-no-client-id"),
    pytest.param("sailpoint", {"host": None}, {}, "host (Tenant)", "set the tenant name", id="sp-no-tenant"),
    pytest.param("sailpoint", {"host": "ac me"}, {}, "host (Tenant)", "whitespace", id="sp-bad-tenant"),
    pytest.param("sailpoint", {}, {"api_version": "../v3"}, "extra.api_version", "v3, beta", id="sp-bad-version"),
    pytest.param("sailpoint", {}, {"start_mode": "prod"}, "extra.start_mode", "'external', 'test'", id="sp-mode"),
]


@pytest.mark.parametrize(("vendor_name", "overrides", "extra", "field", "says"), MISSING)
def test_missing_or_bad_credentials_in_the_connection_are_refused(
    emulator: WorkflowEmulator,
    set_connection: Callable[..., str],
    vendor_name: str,
    overrides: dict,
    extra: dict,
    field: str,
    says: str,
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name, overrides=overrides, **extra))
    _every_operation_refuses(emulator, hook, WORKFLOW_IDS[vendor_name], field, says)


# (vendor, list filters, field)
BAD_FILTERS = [
    pytest.param("datadog", {"page_size": 0}, "page_size", id="dd-page-size-0"),
    pytest.param("datadog", {"page_size": "10"}, "page_size", id="dd-page-size-str"),
    pytest.param("datadog", {"page_size": True}, "page_size", id="dd-page-size-bool"),
    pytest.param("cloudflare", {"per_page": 0}, "per_page", id="cf-per-page-0"),
    pytest.param("cloudflare", {"status": "done"}, "status", id="cf-status"),
    pytest.param("cloudflare", {"direction": "up"}, "direction", id="cf-direction"),
    pytest.param("cloudflare", {"date_start": "yesterday"}, "date_start", id="cf-date-str"),
    pytest.param("cloudflare", {"date_end": 1700000000}, "date_end", id="cf-date-int"),
    pytest.param("sailpoint", {"limit": 0}, "limit", id="sp-limit-0"),
    pytest.param("sailpoint", {"status": "Done"}, "status", id="sp-status"),
    pytest.param("sailpoint", {"start_time_gt": 1700000000}, "start_time_gt", id="sp-start-int"),
    pytest.param("sailpoint", {"start_time_gt": ""}, "start_time_gt", id="sp-start-empty"),
    pytest.param("sailpoint", {"start_time_gt": "yesterday"}, "start_time_gt", id="sp-start-not-iso"),
    pytest.param(
        "sailpoint",
        # would add a clause of its own to the filters expression if it were copied into it as is
        {"start_time_gt": '2000-01-01T00:00:00Z" and status eq "Failed'},
        "start_time_gt",
        id="sp-start-filter-injection",
    ),
]


@pytest.mark.parametrize(("vendor_name", "filters", "field"), BAD_FILTERS)
def test_bad_list_filters_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, filters: dict, field: str
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name))
    try:
        with pytest.raises(WorkflowInputError) as caught:
            list(hook.list_executions(WORKFLOW_IDS[vendor_name], **filters))
        assert caught.value.field == field
    finally:
        sent = [r for r in emulator.requests if r.operation == "list"]
    assert sent == [], f"sent to the vendor: {sent}"


@pytest.mark.parametrize(
    ("vendor_name", "options", "says"),
    [
        pytest.param("datadog", {"instance_id": "x"}, "no start options", id="datadog"),
        pytest.param("cloudflare", {"mode": "test"}, "options are: instance_id", id="cloudflare"),
        pytest.param("sailpoint", {"instance_id": "x"}, "options are: mode", id="sailpoint"),
        pytest.param("sailpoint", {"mode": "dry-run"}, "'external', 'test'", id="sailpoint-mode"),
    ],
)
def test_unknown_start_options_are_refused(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, options: dict, says: str
) -> None:
    hook = HOOKS[vendor_name](set_connection(vendor_name))
    with pytest.raises(WorkflowInputError, match=says):
        hook.start_execution(WORKFLOW_IDS[vendor_name], {}, **options)
    assert emulator.requests == []


BAD_SECONDS = [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(-0.5, id="negative-float"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param("10", id="string"),
    pytest.param(True, id="bool"),
]


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("argument", ["poll_interval", "timeout"])
@pytest.mark.parametrize("vendor_name", VENDORS)
def test_operators_refuse_bad_poll_intervals_and_timeouts(
    emulator: WorkflowEmulator, set_connection: Callable[..., str], vendor_name: str, argument: str, value: Any
) -> None:
    conn_id = set_connection(vendor_name)
    with pytest.raises(WorkflowInputError) as caught:
        OPERATORS[vendor_name](
            task_id="run", workflow=WORKFLOW_IDS[vendor_name], **{f"{vendor_name}_conn_id": conn_id, argument: value}
        )
    assert caught.value.field == argument
    assert "must be a positive number of seconds" in caught.value.problem
    assert emulator.requests == []


def test_operators_accept_good_wait_settings(set_connection: Callable[..., str]) -> None:
    for vendor_name, operator in OPERATORS.items():
        task = operator(
            task_id="run",
            workflow="w",
            poll_interval=0.5,
            timeout=60,
            **{f"{vendor_name}_conn_id": set_connection(vendor_name)},
        )
        assert (task.poll_interval, task.timeout) == (0.5, 60.0)
        assert operator(task_id="run2", workflow="w", timeout=None).timeout is None
        with pytest.raises(WorkflowInputError, match="poll_interval"):
            operator(task_id="run3", workflow="w", poll_interval=None)
