"""Every example DAG in a real Airflow deployment: scheduler, triggerer, dag-processor and api-server processes.

The runs are started the way a user starts them, through the REST API (unpause, trigger), and followed there
until they end: ``*_fails`` DAGs must fail with the vendor's reason, every other DAG must succeed, and the
``*_deferrable`` DAGs must really have waited in the triggerer. The provider must also show up in
``airflow providers`` with everything it registers.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.e2e.support import Deployment, example_dag_ids

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RUNS_DEADLINE = 360  # seconds for all example runs together (about 60 s on 2 idle cores)
POLL_EVERY = 3
TERMINAL = {"success", "failed"}
# The default fake credentials of the emulator, which the connections carry: none may leak anywhere.
SECRETS = ("dd-api-key-emulator", "dd-app-key-emulator", "cf-token-emulator", "sp-secret-emulator")


def expected_state(dag_id: str) -> str:
    return "failed" if dag_id.endswith("_fails") else "success"


@dataclass
class ExampleRuns:
    deployment: Deployment
    run_ids: dict[str, str]
    states: dict[str, str]
    # Every task instance state seen while polling, per DAG and task.
    seen: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    seconds: float = 0.0

    def task_instances(self, dag_id: str) -> list[dict[str, Any]]:
        answer = self.deployment.api("GET", f"/dags/{dag_id}/dagRuns/{self.run_ids[dag_id]}/taskInstances")
        return answer["task_instances"]

    def task_log(self, dag_id: str, task_id: str, try_number: int = 1) -> list[dict[str, Any]]:
        """The task's log as Airflow serves it (the task's own lines plus its trigger's, if it deferred)."""
        answer = self.deployment.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{self.run_ids[dag_id]}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        return answer["content"]

    def describe(self) -> str:
        lines = []
        for dag_id, state in sorted(self.states.items()):
            tis = ", ".join(f"{ti['task_id']}={ti['state']}" for ti in self.task_instances(dag_id))
            lines.append(f"  {dag_id}: {state} (expected {expected_state(dag_id)}); tasks: {tis}")
            if state != expected_state(dag_id):
                for ti in self.task_instances(dag_id):
                    if ti["state"] == "failed":
                        events = _log_events(self.task_log(dag_id, ti["task_id"], max(ti["try_number"], 1)))
                        lines.extend(f"    {ti['task_id']} | {event}" for event in events[-40:])
        return "\n".join(lines)


def _log_events(content: list[dict[str, Any]]) -> list[str]:
    return [str(line.get("event", "")) for line in content]


def _trigger_and_wait(deployment: Deployment, dag_ids: list[str]) -> ExampleRuns:
    logical_date = datetime.now(timezone.utc).isoformat()
    nonce = uuid.uuid4().hex[:8]
    run_ids = {}
    started = time.monotonic()
    for dag_id in dag_ids:
        dag = deployment.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert dag["is_paused"] is False
        run = deployment.api(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": f"e2e__{dag_id}__{nonce}", "logical_date": logical_date},
        )
        run_ids[dag_id] = run["dag_run_id"]
    runs = ExampleRuns(deployment, run_ids, {dag_id: "queued" for dag_id in dag_ids})
    deadline = started + RUNS_DEADLINE
    while True:
        deployment.check_alive()
        for dag_id, run_id in run_ids.items():
            if runs.states[dag_id] in TERMINAL:
                continue
            runs.states[dag_id] = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            for ti in runs.task_instances(dag_id):
                runs.seen.setdefault(dag_id, {}).setdefault(ti["task_id"], set()).add(str(ti["state"]))
        if all(state in TERMINAL for state in runs.states.values()):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"example runs not finished within {RUNS_DEADLINE} s:\n{runs.describe()}")
        time.sleep(POLL_EVERY)
    runs.seconds = time.monotonic() - started
    print(f"\n{len(run_ids)} example runs finished in {runs.seconds:.0f} s")
    return runs


@pytest.fixture(scope="module")
def example_runs(airflow_deployment: Deployment) -> ExampleRuns:
    dag_ids = example_dag_ids(airflow_deployment.dags_folder)
    assert len(dag_ids) >= 10, f"expected the example DAGs, found {dag_ids}"
    runs = _trigger_and_wait(airflow_deployment, dag_ids)
    wrong = [dag for dag, state in runs.states.items() if state != expected_state(dag)]
    if wrong:
        # Seen once in five runs on a loaded 2-core machine: a resumed deferred task failed before its worker
        # started (Airflow answered 409 "invalid state failed"), with LocalExecutor on sqlite. One more run of
        # those DAGs tells that apart from a real failure, which would fail again; the first outcome is printed.
        print(f"\nUNEXPECTED on the first run, running again once:\n{runs.describe()}")
        again = _trigger_and_wait(airflow_deployment, wrong)
        runs.states.update(again.states)
        runs.run_ids.update(again.run_ids)
        for dag_id in wrong:
            runs.seen[dag_id] = again.seen.get(dag_id, {})
    return runs


def test_every_example_dag_ends_in_its_expected_state(example_runs: ExampleRuns) -> None:
    wrong = {dag: state for dag, state in example_runs.states.items() if state != expected_state(dag)}
    assert not wrong, f"runs in an unexpected state: {wrong}\n{example_runs.describe()}"
    assert any(expected_state(dag) == "failed" for dag in example_runs.states), "no failing example DAG ran"


def test_deferrable_runs_waited_in_the_triggerer(example_runs: ExampleRuns) -> None:
    deferrable = [dag for dag in example_runs.states if dag.endswith("_deferrable")]
    assert len(deferrable) >= 3, f"expected a deferrable example per vendor, found {deferrable}"
    for dag_id in deferrable:
        (ti,) = example_runs.task_instances(dag_id)
        assert ti["state"] == "success" and ti["try_number"] == 1, ti
        events = _log_events(example_runs.task_log(dag_id, ti["task_id"]))
        joined = "\n".join(events)
        # The worker handed the wait over ...
        assert "deferring the wait" in joined and "Pausing task as DEFERRED" in joined, joined[-3000:]
        # ... the triggerer ran the trigger (these lines come from the triggerer's log of this trigger) ...
        assert any(e.startswith("trigger ") and e.endswith("starting") for e in events), joined[-3000:]
        assert "Trigger fired event" in joined, joined[-3000:]
        # ... and a worker resumed the task with the trigger's event.
        assert "ended succeeded" in joined, joined[-3000:]
        assert any(source.endswith(".log") and ".log.trigger." in source for source in events), events[:6]
    seen_deferred = [dag for dag in deferrable if "deferred" in set().union(*example_runs.seen.get(dag, {}).values())]
    print(f"state 'deferred' also seen while polling for: {seen_deferred}")


def test_failed_runs_carry_the_vendor_reason(example_runs: ExampleRuns) -> None:
    failing = [dag for dag in example_runs.states if expected_state(dag) == "failed"]
    for dag_id in failing:
        failed = [ti for ti in example_runs.task_instances(dag_id) if ti["state"] == "failed"]
        assert failed, f"{dag_id}: no failed task"
        for ti in failed:
            joined = "\n".join(_log_events(example_runs.task_log(dag_id, ti["task_id"], max(ti["try_number"], 1))))
            # The emulator's failing script: error "Simulated failure" in the last step, step_2.
            assert "Simulated failure" in joined and "step_2" in joined, f"{dag_id}.{ti['task_id']}:\n{joined[-3000:]}"


def test_run_operators_store_the_vendor_link(example_runs: ExampleRuns) -> None:
    hosts = {"datadog": "datadoghq.com", "cloudflare": "dash.cloudflare.com", "sailpoint": "acme.identitynow.com"}
    for vendor, host in hosts.items():
        dag_id = f"example_{vendor}_run_workflow"
        links = example_runs.deployment.api(
            "GET", f"/dags/{dag_id}/dagRuns/{example_runs.run_ids[dag_id]}/taskInstances/run_workflow/links"
        )
        urls = [url for url in links["extra_links"].values() if url]
        assert len(urls) == 1 and host in urls[0], links


def test_no_secret_in_logs_or_xcom(example_runs: ExampleRuns) -> None:
    deployment = example_runs.deployment
    leaks, scanned = [], 0
    for path in sorted((deployment.home / "logs").rglob("*")):
        # cli.log holds what our own `airflow connections add` calls printed: see the next test.
        if path.is_file() and path != deployment.log_file("cli"):
            scanned += 1
            text = path.read_text(errors="replace")
            leaks += [f"{path}: {secret}" for secret in SECRETS if secret in text]
    assert scanned > 20, f"only {scanned} log files: the runs did not log?"
    entries = deployment.api("GET", "/dags/~/dagRuns/~/taskInstances/~/xcomEntries", params={"limit": 200})
    assert entries["total_entries"] > 0
    for entry in entries["xcom_entries"]:
        path = f"/dags/{entry['dag_id']}/dagRuns/{entry['run_id']}/taskInstances/{entry['task_id']}/xcomEntries"
        value = deployment.api("GET", f"{path}/{entry['key']}", params={"map_index": entry["map_index"]})
        text = json.dumps(value)
        leaks += [f"xcom {entry['dag_id']}.{entry['task_id']}.{entry['key']}: {s}" for s in SECRETS if s in text]
    assert not leaks, leaks


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
