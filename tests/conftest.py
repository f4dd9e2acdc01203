"""Test set-up: an isolated AIRFLOW_HOME, the emulator, and Airflow connections pointing at it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# Airflow reads its home at import time: point it at a throwaway folder before anything imports airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="awp-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

from airflow_workflow_provider.hooks.sailpoint import forget_sailpoint_routes
from airflow_workflow_provider.testing.emulator import EmulatorCredentials, WorkflowEmulator

# Fast retries: the policy is the same, only the waits are short. The rate budget is set far above what any
# test sends, so that only the tests about rate limits (which set their own) are paced by it.
FAST_RETRIES = {
    "retry_initial_backoff": 0.01,
    "retry_max_backoff": 0.05,
    "max_retry_seconds": 20,
    "read_timeout": 5,
    "rate_limit_requests": 100_000,
    "rate_limit_period": 1,
}


@pytest.fixture(autouse=True)
def _fresh_rate_budgets() -> Iterator[None]:
    """Each test starts with the process's rate budgets unused (an emulator port may be reused)."""
    from airflow_workflow_provider.core.ratelimit import BUDGETS

    BUDGETS.clear()
    yield
    BUDGETS.clear()


@pytest.fixture
def emulator() -> Iterator[WorkflowEmulator]:
    # What the last emulator on this port served says nothing about this one.
    forget_sailpoint_routes()
    with WorkflowEmulator() as server:
        yield server


def connection_uri_env(conn_id: str, conn: dict[str, Any]) -> tuple[str, str]:
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)


def vendor_connection(vendor: str, emulator: WorkflowEmulator, **extra: Any) -> dict[str, Any]:
    """The Airflow connection a user would create for ``vendor``, pointed at the emulator."""
    creds: EmulatorCredentials = emulator.credentials
    base = {"base_url": emulator.base_url(vendor), **FAST_RETRIES}
    if vendor == "datadog":
        return {
            "conn_type": "datadog_workflows",
            "host": "datadoghq.com",
            "password": creds.datadog_api_key,
            "extra": {**base, "application_key_secret": creds.datadog_application_key, **extra},
        }
    if vendor == "cloudflare":
        return {
            "conn_type": "cloudflare_workflows",
            "password": creds.cloudflare_api_token,
            "extra": {**base, "account_id": creds.cloudflare_account_id, **extra},
        }
    if vendor == "sailpoint":
        return {
            "conn_type": "sailpoint_workflows",
            "host": "acme",
            "login": creds.sailpoint_client_id,
            "password": creds.sailpoint_client_secret,
            "extra": {**base, **extra},
        }
    raise ValueError(vendor)


@dataclass
class Vendor:
    """What a test needs to drive one vendor through its hook."""

    name: str
    hook_class: type
    conn_id: str
    workflow: str
    emulator: WorkflowEmulator
    set_connection: Callable[..., str] = field(repr=False)

    def hook(self, conn_id: str | None = None) -> Any:
        return self.hook_class(conn_id or self.conn_id)

    def executions(self, workflow: str | None = None) -> list[dict[str, Any]]:
        return self.emulator.executions(self.name, workflow or self.workflow)


VENDORS = ("datadog", "cloudflare", "sailpoint")
WORKFLOW_IDS = {
    "datadog": "5d1e8a3c-0000-4000-8000-00000000dd01",
    "cloudflare": "nightly-export",
    "sailpoint": "9f1a2b3c-0000-4000-8000-0000000000a1",
}


def _hook_class(vendor: str) -> type:
    if vendor == "datadog":
        from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook

        return DatadogWorkflowsHook
    if vendor == "cloudflare":
        from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook

        return CloudflareWorkflowsHook
    from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook

    return SailPointWorkflowsHook


@pytest.fixture
def set_connection(emulator: WorkflowEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an Airflow connection (through the environment, as a deployment may) and return its id."""

    def define(vendor: str, conn_id: str | None = None, overrides: dict[str, Any] | None = None, **extra: Any) -> str:
        conn = vendor_connection(vendor, emulator, **extra)
        conn.update(overrides or {})
        conn_id = conn_id or f"{conn['conn_type']}_default"
        monkeypatch.setenv(*connection_uri_env(conn_id, conn))
        return conn_id

    return define


@pytest.fixture(params=VENDORS)
def vendor(request: pytest.FixtureRequest, emulator: WorkflowEmulator, set_connection: Callable[..., str]) -> Vendor:
    name = request.param
    return Vendor(
        name=name,
        hook_class=_hook_class(name),
        conn_id=set_connection(name),
        workflow=WORKFLOW_IDS[name],
        emulator=emulator,
        set_connection=set_connection,
    )
