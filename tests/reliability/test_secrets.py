"""No credential ever shows: not in errors, logs, output, reprs or models, and Airflow's masker knows each one.

The emulator here is one of our own, created with distinctive credentials (``EmulatorCredentials``),
and the Airflow connections are set with ``monkeypatch.setenv("AIRFLOW_CONN_...")`` as a deployment
may. Every hook operation runs, sync and async, including failures: wrong credentials, 401/403/429/500
faults, and vendor error bodies that echo a secret back.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    WorkflowApiError,
    WorkflowProviderError,
)
from airflow_workflow_provider.core.models import WorkflowExecution
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook
from airflow_workflow_provider.testing.aio import run_async
from airflow_workflow_provider.testing.emulator import EmulatorCredentials, WorkflowEmulator, WorkflowScript
from tests.conftest import VENDORS, WORKFLOW_IDS, connection_uri_env, vendor_connection

# Imported here, not in the tests: importing Airflow configures logging, which would drop caplog's handler.
HOOKS = {"datadog": DatadogWorkflowsHook, "cloudflare": CloudflareWorkflowsHook, "sailpoint": SailPointWorkflowsHook}
EMULATOR_LOGGER = "airflow_workflow_provider.testing.emulator"


def _redact(text: str) -> str:
    from airflow.providers.common.compat.sdk import redact

    return str(redact(text))


@dataclass
class Secrets:
    """Distinctive credentials, unique to one test so that the masker cannot have seen them before."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        t = self.tag
        self.credentials = EmulatorCredentials(
            datadog_api_key=f"DDAPIKEY-zq81{t}",
            datadog_application_key=f"DDAPPKEY-kw27{t}",
            cloudflare_api_token=f"CFAPITOKEN-xj55{t}",
            cloudflare_global_api_key=f"CFGLOBALKEY-vb93{t}",
            sailpoint_client_secret=f"SPCLIENTSECRET-mn46{t}",
        )
        # Wrong values a misconfigured connection may hold: secrets all the same.
        self.wrong = {
            "datadog": f"WRONGDDKEY-pp10{t}",
            "datadog_app": f"WRONGDDAPP-pp11{t}",
            "cloudflare": f"WRONGCFTOKEN-pp12{t}",
            "cloudflare_global": f"WRONGCFGLOBAL-pp13{t}",
            "sailpoint": f"WRONGSPSECRET-pp14{t}",
        }
        self.access_tokens: set[str] = set()  # SailPoint OAuth tokens, learnt as the hooks fetch them

    def of(self, vendor: str) -> list[str]:
        c = self.credentials
        own = {
            "datadog": [c.datadog_api_key, c.datadog_application_key],
            "cloudflare": [c.cloudflare_api_token, c.cloudflare_global_api_key],
            "sailpoint": [c.sailpoint_client_secret],
        }[vendor]
        wrong = [v for k, v in self.wrong.items() if k.startswith(vendor)]
        return [*own, *wrong, *(self.access_tokens if vendor == "sailpoint" else ())]

    def all(self) -> list[str]:
        return [s for v in VENDORS for s in self.of(v)]

    def learn_tokens(self, api: Any) -> None:
        """Keep every SailPoint access token a client held (``api.secrets`` lists the current one)."""
        self.access_tokens.update(s for s in api.secrets if s != self.credentials.sailpoint_client_secret)

    def found_in(self, text: str) -> list[str]:
        return [s for s in self.all() if s in text]


@dataclass
class Setup:
    emulator: WorkflowEmulator
    secrets: Secrets
    connect: Callable[..., str]


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    secrets = Secrets()
    with WorkflowEmulator(credentials=secrets.credentials) as server:

        def connect(vendor: str, conn_id: str | None = None, overrides: dict | None = None, **extra: Any) -> str:
            conn = vendor_connection(vendor, server, **extra)
            conn.update(overrides or {})
            conn_id = conn_id or f"{vendor}_secret_test"
            monkeypatch.setenv(*connection_uri_env(conn_id, conn))
            return conn_id

        yield Setup(server, secrets, connect)


def _current_token(api: Any, creds: EmulatorCredentials) -> str:
    # api.secrets: the client secret, then the current token, then the one before it
    return next(s for s in api.secrets if s != creds.sailpoint_client_secret)


def _exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args)]
    texts += [repr(v) for v in vars(exc).values()]
    return texts


def _every_operation(setup: Setup, vendor: str, conn_id: str) -> tuple[list[str], list[BaseException]]:
    """Run every hook operation, the failing ones too; return what they produced (texts) and raised."""
    emulator, secrets = setup.emulator, setup.secrets
    workflow = WORKFLOW_IDS[vendor]
    failing = f"{workflow[:40]}-fail"
    emulator.script(vendor, failing, WorkflowScript(duration=0.05, queued_for=0.0, outcome="failure"))
    emulator.script(vendor, workflow, WorkflowScript(duration=30))
    hook = HOOKS[vendor](conn_id)
    texts: list[str] = []
    errors: list[BaseException] = []

    def expect(error: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], Any]) -> None:
        with pytest.raises(error) as caught:
            call()
        errors.append(caught.value)

    texts.append(str(hook.test_connection()))
    execution_id = hook.start_execution(workflow, {"date": "2026-11-23"})
    executions: list[WorkflowExecution] = [hook.get_execution(workflow, execution_id)]
    executions += list(hook.list_executions(workflow))
    hook.cancel_execution(workflow, execution_id)
    executions.append(hook.get_execution(workflow, execution_id))
    failed_id = hook.start_execution(failing)
    emulator_wait(lambda: hook.get_execution(failing, failed_id).is_terminal)
    failed = hook.explain_failure(hook.get_execution(failing, failed_id))
    executions.append(failed)
    texts.append(failed.describe_failure())
    if vendor == "sailpoint":
        secrets.learn_tokens(hook.api)
        emulator.revoke_tokens()  # the next call gets 401 and fetches a new token
        executions.append(hook.get_execution(workflow, execution_id))
        secrets.learn_tokens(hook.api)
        assert len(secrets.access_tokens) == 2

    # async twins
    second = hook.start_execution(workflow)
    async_hook = HOOKS[vendor](conn_id)
    executions.append(run_async(lambda: async_hook.aget_execution(workflow, second)))
    run_async(lambda: async_hook.acancel_execution(workflow, second))

    async def async_failure() -> Any:
        emulator.inject_fault(vendor, "get", "500", times=100)
        return await async_hook.aget_execution(workflow, second)

    expect(ServerError, lambda: run_async(async_failure))
    emulator.reset()  # forgets the faults (and the executions: the calls below need none)
    if vendor == "sailpoint":
        secrets.learn_tokens(run_async(async_hook.get_async_api))

    # faults: each typed, each retried or not as the policy says
    second_get = (AuthenticationError, PermissionDeniedError)
    for fault, error in (("401", second_get), ("403", PermissionDeniedError), ("429", RateLimitedError)):
        emulator.inject_fault(vendor, "any", fault, times=100, retry_after=0)
        expect(error, lambda: hook.get_execution(workflow, execution_id))
        expect(error, lambda: hook.start_execution(workflow))
        expect(error, lambda: list(hook.list_executions(workflow)))
        expect(error, lambda: hook.cancel_execution(workflow, execution_id))
        texts.append(str(hook.test_connection()))
        emulator.reset()
    emulator.inject_fault(vendor, "any", "500", times=100)
    expect(ServerError, lambda: hook.get_execution(workflow, execution_id))
    expect(ServerError, lambda: hook.start_execution(workflow))
    emulator.reset()
    if vendor == "sailpoint":
        emulator.inject_fault(vendor, "token", "401", times=3)  # the token endpoint itself refuses the client
        emulator.revoke_tokens()
        expect(AuthenticationError, lambda: hook.get_execution(workflow, execution_id))
        emulator.reset()

    texts += [repr(hook), repr(hook.api), repr(async_hook), repr(hook.api.settings)]
    for execution in executions:
        texts += [repr(execution), str(execution.summary()), str(execution.model_dump()), execution.model_dump_json()]
    hook.close()
    return texts, errors


def emulator_wait(done: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.05)


def _wrong_credentials(setup: Setup, vendor: str) -> tuple[list[str], list[BaseException]]:
    """Connections holding wrong secrets: refused, and the wrong value is as secret as the right one."""
    creds, wrong = setup.secrets.credentials, setup.secrets.wrong
    workflow = WORKFLOW_IDS[vendor]
    variants: list[dict[str, Any]] = [{"overrides": {"password": wrong[vendor]}}]
    if vendor == "datadog":
        variants.append({"application_key_secret": wrong["datadog_app"]})
    if vendor == "cloudflare":
        variants.append({"overrides": {"login": creds.cloudflare_email, "password": wrong["cloudflare_global"]}})
    texts: list[str] = []
    errors: list[BaseException] = []
    for index, variant in enumerate(variants):
        conn_id = setup.connect(vendor, conn_id=f"wrong_{vendor}_{index}", **variant)
        hook = HOOKS[vendor](conn_id)
        ok, message = hook.test_connection()
        assert not ok
        texts += [message, repr(hook), repr(hook.api)]
        for call in (
            lambda h=hook: h.start_execution(workflow),
            lambda h=hook: h.get_execution(workflow, "some-id"),
            lambda h=hook: list(h.list_executions(workflow)),
            lambda h=hook: h.cancel_execution(workflow, "some-id"),
            lambda h=hook: run_async(lambda: h.aget_execution(workflow, "some-id")),
        ):
            with pytest.raises((AuthenticationError, PermissionDeniedError)) as caught:
                call()
            errors.append(caught.value)
        hook.close()
    return texts, errors


def _legacy_cloudflare(setup: Setup) -> list[str]:
    """Cloudflare's legacy scheme: account email and Global API Key."""
    creds = setup.secrets.credentials
    conn_id = setup.connect(
        "cloudflare",
        conn_id="cf_legacy",
        overrides={"login": creds.cloudflare_email, "password": creds.cloudflare_global_api_key},
    )
    hook = HOOKS["cloudflare"](conn_id)
    ok, message = hook.test_connection()
    assert ok
    execution_id = hook.start_execution("legacy-etl")
    execution = hook.get_execution("legacy-etl", execution_id)
    hook.close()
    return [message, repr(hook), repr(hook.api), str(execution.model_dump()), repr(execution)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("vendor", VENDORS)
def test_no_secret_anywhere(
    setup: Setup, vendor: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = setup.secrets
    conn_id = setup.connect(vendor)
    for secret in secrets.of(vendor):  # the masker cannot know them yet: what it knows later, the hooks told it
        assert secret in _redact(f"before {secret}")

    texts, errors = _every_operation(setup, vendor, conn_id)
    wrong_texts, wrong_errors = _wrong_credentials(setup, vendor)
    texts += wrong_texts
    errors += wrong_errors
    if vendor == "cloudflare":
        texts += _legacy_cloudflare(setup)

    assert errors and all(isinstance(e, WorkflowApiError) for e in errors)
    for exc in errors:
        for text in _exception_texts(exc):
            assert not secrets.found_in(text), f"secret in {type(exc).__name__}: {text}"
    for text in texts:
        assert not secrets.found_in(text), text

    # logs: every record of every logger (the hooks', the HTTP stack's, Airflow's and the emulator's own)
    assert any(r.name == EMULATOR_LOGGER for r in caplog.records), "the emulator's log was not captured"
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not secrets.found_in(rendered), f"secret in a log record of {record.name}: {rendered}"
    assert not secrets.found_in(caplog.text)
    out, err = capfd.readouterr()
    assert not secrets.found_in(out), out
    assert not secrets.found_in(err), err

    # and Airflow's secrets masker now knows every credential of a connection; SailPoint's access tokens stay
    # out of it (one pattern per token lifetime, for the life of a triggerer) and with the hook's redactor
    expected = [s for s in secrets.of(vendor) if s not in secrets.access_tokens]
    if vendor == "sailpoint":
        assert len(secrets.access_tokens) >= 2
    for secret in expected:
        masked = _redact(f"token={secret} end")
        assert secret not in masked, f"{secret[:8]}... is not registered with the secrets masker"


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_secret_echoed_by_the_vendor_is_redacted(setup: Setup, vendor: str, caplog: pytest.LogCaptureFixture) -> None:
    """Error bodies that quote the request back (an id in a 404) must not carry a secret into the error."""
    caplog.set_level(logging.DEBUG)
    secrets = setup.secrets
    creds = secrets.credentials
    workflow = WORKFLOW_IDS[vendor]
    if vendor == "cloudflare":
        # A valid token but another account: Cloudflare's 404 quotes the whole path, instance id included.
        conn_id = setup.connect(vendor, account_id="someone-elses-account")
    else:
        conn_id = setup.connect(vendor)
    hook = HOOKS[vendor](conn_id)
    echoed = {
        "datadog": [creds.datadog_api_key, creds.datadog_application_key],
        "cloudflare": [creds.cloudflare_api_token],
        "sailpoint": [creds.sailpoint_client_secret],
    }[vendor]
    sync_echoed, async_echoed = list(echoed), list(echoed)
    if vendor == "sailpoint":
        # Each client echoes its own OAuth token (the sync and the async client each fetch one).
        execution_id = hook.start_execution(workflow)
        sync_echoed.append(_current_token(hook.api, creds))
        run_async(lambda: hook.aget_execution(workflow, execution_id))
        async_echoed.append(_current_token(run_async(hook.get_async_api), creds))
        secrets.learn_tokens(hook.api)
        secrets.learn_tokens(run_async(hook.get_async_api))

    errors: list[BaseException] = []
    for secret in sync_echoed:
        with pytest.raises(NotFoundError) as caught:
            hook.get_execution(workflow, secret)
        errors.append(caught.value)
        with pytest.raises(NotFoundError) as caught:
            hook.cancel_execution(workflow, secret)
        errors.append(caught.value)
    for secret in async_echoed:
        with pytest.raises(NotFoundError) as caught:
            run_async(lambda s=secret: hook.aget_execution(workflow, s))
        errors.append(caught.value)
        with pytest.raises(NotFoundError) as caught:
            run_async(lambda s=secret: hook.acancel_execution(workflow, s))
        errors.append(caught.value)
    hook.close()

    for exc in errors:
        assert isinstance(exc, WorkflowProviderError)
        assert "***" in str(exc), f"the vendor did not echo the id, so this test proves nothing: {exc}"
        for text in _exception_texts(exc):
            assert not secrets.found_in(text), text
    # The request path itself carries the id (the test put the secret there): the emulator's request log
    # and urllib3's debug log show paths. Everything else must not show it.
    path_loggers = (EMULATOR_LOGGER, "urllib3")
    for record in caplog.records:
        if record.name.startswith(path_loggers):
            continue
        rendered = f"{record.getMessage()} {record.args!r}"
        assert not secrets.found_in(rendered), f"secret in a log record of {record.name}: {rendered}"


def test_sailpoint_tokens_do_not_grow_airflows_masker(setup: Setup) -> None:
    """A triggerer lives for months: a new token every ~12 minutes must not add a masker pattern each time."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import _secrets_masker

    conn_id = setup.connect("sailpoint")
    hook = SailPointWorkflowsHook(conn_id)
    execution_id = hook.start_execution(WORKFLOW_IDS["sailpoint"])
    patterns = len(_secrets_masker().patterns)
    tokens = set()
    for _ in range(5):
        setup.emulator.revoke_tokens()  # the next call meets 401 and fetches a new token
        hook.get_execution(WORKFLOW_IDS["sailpoint"], execution_id)
        tokens.add(_current_token(hook.api, setup.secrets.credentials))
    assert len(tokens) == 5
    assert len(_secrets_masker().patterns) == patterns
    for token in tokens:  # the hook's own redactor still knows the last two, and any Bearer value by its shape
        assert token not in hook.api.redact(f"Authorization: Bearer {token}")
