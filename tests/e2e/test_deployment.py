"""Every example DAG in a real Airflow deployment: LocalExecutor on sqlite, one triggerer (``examples.py`` runs them).

The provider must also show up in ``airflow providers`` with everything it registers, and Airflow must mask the
connections' secrets wherever it shows them.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.examples import (
    SECRETS,
    ExampleRuns,
    check_deferrable_runs_waited_in_a_triggerer,
    check_expected_states,
    check_failed_runs_carry_the_vendor_reason,
    check_no_secret_in_logs_or_xcom,
    check_run_operators_store_the_vendor_link,
    run_every_example,
)
from tests.e2e.support import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def example_runs(airflow_deployment: Deployment) -> ExampleRuns:
    return run_every_example(airflow_deployment)


def test_every_example_dag_ends_in_its_expected_state(example_runs: ExampleRuns) -> None:
    check_expected_states(example_runs)


def test_deferrable_runs_waited_in_the_triggerer(example_runs: ExampleRuns) -> None:
    check_deferrable_runs_waited_in_a_triggerer(example_runs)


def test_failed_runs_carry_the_vendor_reason(example_runs: ExampleRuns) -> None:
    check_failed_runs_carry_the_vendor_reason(example_runs)


def test_run_operators_store_the_vendor_link(example_runs: ExampleRuns) -> None:
    check_run_operators_store_the_vendor_link(example_runs)


def test_no_secret_in_logs_or_xcom(example_runs: ExampleRuns) -> None:
    check_no_secret_in_logs_or_xcom(example_runs)


def test_airflow_masks_the_connection_secrets(airflow_deployment: Deployment) -> None:
    """What Airflow shows of the connections (REST API, hence the UI; the CLI) must not carry the secrets."""
    deployment = airflow_deployment
    shown = {
        conn_id: deployment.api("GET", f"/connections/{conn_id}")
        for conn_id in ("datadog_workflows_default", "cloudflare_workflows_default", "sailpoint_workflows_default")
    }
    for conn_id, conn in shown.items():
        assert conn["password"] == "***", conn_id
    sailpoint = shown["sailpoint_workflows_default"]
    assert sailpoint["login"] == "sp-client-emulator"  # a client id is no secret
    exposed = [
        f"{where}: {secret}"
        for where, text in [
            *((f"GET /api/v2/connections/{conn_id}", json.dumps(conn)) for conn_id, conn in shown.items()),
            ("`airflow connections add` output", deployment.log_file("cli").read_text()),
        ]
        for secret in SECRETS
        if secret in text
    ]
    assert not exposed, exposed


def _providers(deployment: Deployment, *commands: tuple[str, ...]) -> list[Any]:
    """``airflow providers <command> -o json`` for each command, run side by side (each takes seconds)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        runs = [pool.submit(deployment.airflow, "providers", *command, "-o", "json") for command in commands]
        return [json.loads(run.result().stdout) for run in runs]


def test_airflow_providers_lists_the_package(airflow_deployment: Deployment) -> None:
    provider_list, provider_get, hook_list, link_list, trigger_list, behaviour_list = _providers(
        airflow_deployment,
        ("list",),
        ("get", "airflow-workflow-provider", "--full"),
        ("hooks",),
        ("links",),
        ("triggers",),
        ("behaviours",),
    )
    listed = {item["package_name"]: item for item in provider_list}
    assert "airflow-workflow-provider" in listed, sorted(listed)
    assert listed["airflow-workflow-provider"]["version"] == "0.1.0"

    (info,) = provider_get
    assert info["package-name"] == "airflow-workflow-provider"
    vendors = ("datadog", "cloudflare", "sailpoint")
    for kind in ("hooks", "operators", "sensors", "triggers"):
        modules = {module for entry in info[kind] for module in entry["python-modules"]}
        assert modules == {f"airflow_workflow_provider.{kind}.{vendor}" for vendor in vendors}, (kind, modules)
    assert set(info["extra-links"]) == {
        "airflow_workflow_provider.links.DatadogWorkflowInstanceLink",
        "airflow_workflow_provider.links.CloudflareWorkflowInstanceLink",
        "airflow_workflow_provider.links.SailPointWorkflowExecutionLink",
    }
    conn_types = {entry["connection-type"]: entry for entry in info["connection-types"]}
    assert set(conn_types) == {"datadog_workflows", "cloudflare_workflows", "sailpoint_workflows"}
    assert conn_types["datadog_workflows"]["conn-fields"]["application_key_secret"]["schema"]["format"] == "password"

    # What Airflow itself discovered from that, not just what the package declares.
    hooks = {h["connection_type"]: h["class"] for h in hook_list}
    assert hooks["datadog_workflows"] == "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    assert hooks["cloudflare_workflows"] == "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
    assert hooks["sailpoint_workflows"] == "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    links = {item["extra_link_class_name"] for item in link_list}
    assert set(info["extra-links"]) <= links
    triggers = {t["class"] for t in trigger_list}
    assert {f"airflow_workflow_provider.triggers.{vendor}" for vendor in vendors} <= triggers
    behaviours = {item["field_behaviours"] for item in behaviour_list}
    assert set(conn_types) <= behaviours
