"""Every example DAG run in a real deployment, and the checks each deployment must pass (any topology).

The runs are started the way a user starts them, through the REST API (unpause, trigger), and followed there
until they end: ``*_fails`` DAGs must fail with the vendor's reason, every other DAG must succeed, and the
``*_deferrable`` DAGs must really have waited in a triggerer. ``test_deployment.py`` (LocalExecutor on sqlite)
and ``test_celery_deployment.py`` (PostgreSQL, Celery, two triggerers) run the same checks.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.e2e.support import Deployment, example_dag_ids

RUNS_DEADLINE = 360  # seconds for all example runs together (about 60 s on 2 idle cores)
POLL_EVERY = 3
TERMINAL = {"success", "failed"}
# The default fake credentials of the emulator, which the connections carry: none may leak anywhere.
SECRETS = ("dd-api-key-emulator", "dd-app-key-emulator", "cf-token-emulator", "sp-secret-emulator")
# Airflow's scheduler fails a resumed deferred task when the executor's "success" of the try's first half (the
# worker that deferred) is processed only after the task was queued or started again for its second half, with
# the same try number. Airflow 3.3.2 forgives that stale event only while the task is "scheduled"; "queued" is
# apache/airflow#67287 (fixed on main by #68741), "running" is apache/airflow#72716 (open). Only LocalExecutor
# is exposed: CeleryExecutor replaces the try's Celery result when it queues the second half, so the stale
# success is never read. docs/deployment.md tells the story.
STALE_DEFER_EXIT = "finished with state success, but the task instance's state attribute is"


def expected_state(dag_id: str) -> str:
    return "failed" if dag_id.endswith("_fails") else "success"


def log_events(content: list[dict[str, Any]]) -> list[str]:
    return [str(line.get("event", "")) for line in content]


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
        return list(answer["task_instances"])

    def task_log(self, dag_id: str, task_id: str, try_number: int = 1) -> list[dict[str, Any]]:
        """The task's log as Airflow serves it (the task's own lines plus its trigger's, if it deferred)."""
        answer = self.deployment.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{self.run_ids[dag_id]}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        return list(answer["content"])

    def wrong(self) -> list[str]:
        return [dag for dag, state in self.states.items() if state != expected_state(dag)]

    def stale_defer_exit_failures(self, dag_id: str) -> list[str]:
        """The scheduler's "state mismatch" audit entries of the run that are Airflow's stale-success race."""
        answer = self.deployment.api(
            "GET", "/eventLogs", params={"event": "state mismatch", "dag_id": dag_id, "run_id": self.run_ids[dag_id]}
        )
        return [str(entry["extra"]) for entry in answer["event_logs"] if STALE_DEFER_EXIT in str(entry["extra"])]

    def describe(self) -> str:
        lines = []
        for dag_id, state in sorted(self.states.items()):
            tis = ", ".join(f"{ti['task_id']}={ti['state']}" for ti in self.task_instances(dag_id))
            lines.append(f"  {dag_id}: {state} (expected {expected_state(dag_id)}); tasks: {tis}")
            if state != expected_state(dag_id):
                lines.extend(f"    scheduler: {entry}" for entry in self.stale_defer_exit_failures(dag_id))
                for ti in self.task_instances(dag_id):
                    if ti["state"] == "failed":
                        events = log_events(self.task_log(dag_id, ti["task_id"], max(ti["try_number"], 1)))
                        lines.extend(f"    {ti['task_id']} | {event}" for event in events[-40:])
        return "\n".join(lines)


def trigger_and_wait(deployment: Deployment, dag_ids: list[str]) -> ExampleRuns:
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
            raise AssertionError(f"example runs not finished within {RUNS_DEADLINE} s:\n{runs.describe()}")
        time.sleep(POLL_EVERY)
    runs.seconds = time.monotonic() - started
    print(f"\n{len(run_ids)} example runs finished in {runs.seconds:.0f} s ({deployment.topology.name})")
    return runs


def run_every_example(deployment: Deployment) -> ExampleRuns:
    """Trigger every example DAG and follow the runs to their end.

    A DAG whose run ended wrong only through Airflow's stale-success race (``STALE_DEFER_EXIT``) runs once more:
    that is Airflow's bug, not ours, and a second run tells it apart from a real failure. Any other wrong end
    is the test's verdict as it stands.
    """
    dag_ids = example_dag_ids(deployment.dags_folder)
    assert len(dag_ids) >= 10, f"expected the example DAGs, found {dag_ids}"
    runs = trigger_and_wait(deployment, dag_ids)
    raced = [dag for dag in runs.wrong() if runs.stale_defer_exit_failures(dag)]
    if raced:
        print(f"\nAirflow's stale-success race (apache/airflow#67287, #72716) hit {raced}; running those again:")
        print(runs.describe())
        again = trigger_and_wait(deployment, raced)
        runs.states.update(again.states)
        runs.run_ids.update(again.run_ids)
        for dag_id in raced:
            runs.seen[dag_id] = again.seen.get(dag_id, {})
    return runs


# -- the checks ------------------------------------------------------------------------------------------------


def check_expected_states(runs: ExampleRuns) -> None:
    wrong = {dag: runs.states[dag] for dag in runs.wrong()}
    assert not wrong, f"runs in an unexpected state: {wrong}\n{runs.describe()}"
    assert any(expected_state(dag) == "failed" for dag in runs.states), "no failing example DAG ran"


def check_deferrable_runs_waited_in_a_triggerer(runs: ExampleRuns) -> None:
    deferrable = [dag for dag in runs.states if dag.endswith("_deferrable")]
    assert len(deferrable) >= 3, f"expected a deferrable example per vendor, found {deferrable}"
    for dag_id in deferrable:
        (ti,) = runs.task_instances(dag_id)
        assert ti["state"] == "success" and ti["try_number"] == 1, ti
        events = log_events(runs.task_log(dag_id, ti["task_id"]))
        joined = "\n".join(events)
        # The worker handed the wait over ...
        assert "deferring the wait" in joined and "Pausing task as DEFERRED" in joined, joined[-3000:]
        # ... a triggerer ran the trigger (these lines come from the triggerer's log of this trigger) ...
        assert any(e.startswith("trigger ") and e.endswith("starting") for e in events), joined[-3000:]
        assert "Trigger fired event" in joined, joined[-3000:]
        # ... and a worker resumed the task with the trigger's event.
        assert "ended succeeded" in joined, joined[-3000:]
        assert any(source.endswith(".log") and ".log.trigger." in source for source in events), events[:6]
    seen_deferred = [dag for dag in deferrable if "deferred" in set().union(*runs.seen.get(dag, {}).values())]
    print(f"state 'deferred' also seen while polling for: {seen_deferred}")


def check_failed_runs_carry_the_vendor_reason(runs: ExampleRuns) -> None:
    failing = [dag for dag in runs.states if expected_state(dag) == "failed"]
    for dag_id in failing:
        failed = [ti for ti in runs.task_instances(dag_id) if ti["state"] == "failed"]
        assert failed, f"{dag_id}: no failed task"
        for ti in failed:
            joined = "\n".join(log_events(runs.task_log(dag_id, ti["task_id"], max(ti["try_number"], 1))))
            # The emulator's failing script: error "Simulated failure" in the last step, step_2.
            assert "Simulated failure" in joined and "step_2" in joined, f"{dag_id}.{ti['task_id']}:\n{joined[-3000:]}"


def check_run_operators_store_the_vendor_link(runs: ExampleRuns) -> None:
    hosts = {"datadog": "datadoghq.com", "cloudflare": "dash.cloudflare.com", "sailpoint": "acme.identitynow.com"}
    for vendor, host in hosts.items():
        dag_id = f"example_{vendor}_run_workflow"
        links = runs.deployment.api(
            "GET", f"/dags/{dag_id}/dagRuns/{runs.run_ids[dag_id]}/taskInstances/run_workflow/links"
        )
        urls = [url for url in links["extra_links"].values() if url]
        assert len(urls) == 1 and host in urls[0], links


def check_no_secret_in_logs_or_xcom(runs: ExampleRuns) -> None:
    deployment = runs.deployment
    leaks, scanned = [], 0
    for path in sorted((deployment.home / "logs").rglob("*")):
        # cli.log holds what our own `airflow connections add` calls printed: test_deployment.py checks it.
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
