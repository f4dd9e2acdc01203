"""``make demo``: one succeeding and one failing execution per vendor, through the real hooks, against the emulator.

Runs fully offline: the emulator listens on 127.0.0.1 and the hooks reach it through Airflow
connections defined in the environment, exactly as a deployment could define them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_workflow_provider.testing.emulator import WorkflowScript

DEMO_WORKFLOWS = {
    "datadog": ("3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10", "Datadog"),
    "cloudflare": ("order-fulfilment", "Cloudflare"),
    "sailpoint": ("b393f4e2-4785-4d7f-ab27-3a6b8ded4c81", "SailPoint"),
}


def _connections(emulator: Any) -> dict[str, dict[str, Any]]:
    creds = emulator.credentials
    return {
        "datadog": {
            "conn_type": "datadog_workflows",
            "host": "datadoghq.com",
            "password": creds.datadog_api_key,
            "extra": {
                "application_key_secret": creds.datadog_application_key,
                "base_url": emulator.base_url("datadog"),
            },
        },
        "cloudflare": {
            "conn_type": "cloudflare_workflows",
            "password": creds.cloudflare_api_token,
            "extra": {"account_id": creds.cloudflare_account_id, "base_url": emulator.base_url("cloudflare")},
        },
        "sailpoint": {
            "conn_type": "sailpoint_workflows",
            "host": "acme",
            "login": creds.sailpoint_client_id,
            "password": creds.sailpoint_client_secret,
            "extra": {"base_url": emulator.base_url("sailpoint")},
        },
    }


def _hooks() -> dict[str, Any]:
    from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
    from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
    from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook

    return {
        "datadog": DatadogWorkflowsHook(),
        "cloudflare": CloudflareWorkflowsHook(),
        "sailpoint": SailPointWorkflowsHook(),
    }


def follow(hook: Any, label: str, workflow: str, payload: dict[str, Any], poll: float = 0.2) -> Any:
    """Start an execution and print every state change until it is terminal."""
    execution_id = hook.start_execution(workflow, payload)
    started = time.monotonic()
    print(f"[{label}] started execution {execution_id}")
    last = None
    while True:
        execution = hook.get_execution(workflow, execution_id)
        if execution.state is not last:
            elapsed = time.monotonic() - started
            print(f"[{label}]   {elapsed:5.1f} s  {execution.state.value:<9} ({execution.vendor_status})")
            last = execution.state
        if execution.is_terminal:
            return execution
        time.sleep(poll)


def run_hooks_demo(emulator: Any) -> int:
    """Part 1: one succeeding and one failing execution per vendor, straight through the hooks."""
    failures = 0
    for vendor, hook in _hooks().items():
        workflow, label = DEMO_WORKFLOWS[vendor]
        failing = f"{workflow[:40]}-fail"
        emulator.script(vendor, workflow, WorkflowScript(duration=1.5, output={"processed": 128}))
        emulator.script(
            vendor,
            failing,
            WorkflowScript(duration=1.0, outcome="failure", failing_step="notify", error_message="SMTP relay refused"),
        )
        ok = follow(hook, label, workflow, {"requested_by": "make demo"})
        print(f"[{label}] result: {ok.state.value}, output={json.dumps(ok.output)}, link={ok.url}")
        bad = follow(hook, label, failing, {"requested_by": "make demo"})
        print(f"[{label}] result: {bad.state.value}, reason: {hook.explain_failure(bad).describe_failure()}")
        if not (ok.succeeded and bad.state.is_failure):
            failures += 1
    return failures


DAG_RUN_FINISHED = re.compile(r"DagRun Finished: .*?, state=(\w+),")


def _airflow(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=check, timeout=600
    )


def example_dag_ids(dags_folder: Path) -> list[str]:
    pattern = re.compile(r"""DAG\(\s*["']([a-z0-9_]+)["']""")
    return [m for path in sorted(dags_folder.glob("example_*.py")) for m in pattern.findall(path.read_text())]


def run_example_dags(emulator: Any, repo: Path) -> int:
    """Part 2: every example DAG through ``airflow dags test``, as a user would run it."""
    home = repo / "airflow-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The examples poll every 30 s, as fits real workflows; the emulated ones end within seconds.
        "EXAMPLE_WORKFLOW_POLL_SECONDS": "1",
    }
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    print(f"\nexample DAGs (AIRFLOW_HOME={home})")
    _airflow("db", "migrate", env=env)
    for conn in _connections(emulator).values():
        conn_id = f"{conn['conn_type']}_default"
        _airflow("connections", "delete", conn_id, env=env, check=False)  # the emulator's port changes per run
        _airflow("connections", "add", conn_id, "--conn-json", json.dumps(conn), env=env)
        print(f"  connection {conn_id} -> {conn['extra']['base_url']}")
    # What the example DAGs expect of their workflows, beyond the emulator's defaults.
    emulator.script("cloudflare", "expense-approval", WorkflowScript(duration=2.0, wait_for_event="approval"))
    emulator.script("sailpoint", "7c1e2f10-draft-4b1a-9d3e-5a6b7c8d9e0f", WorkflowScript(duration=1.5, enabled=False))
    failures = 0
    for dag_id in example_dag_ids(repo / "example_dags"):
        expected = "failed" if dag_id.endswith("_fails") else "success"
        started = time.monotonic()
        run = _airflow("dags", "test", dag_id, env=env, check=False)
        finished = DAG_RUN_FINISHED.findall(run.stdout + run.stderr)
        state = finished[-1] if finished else "no run"
        verdict = "OK" if state == expected else "UNEXPECTED"
        failures += verdict != "OK"
        print(f"  {dag_id:<48} {state:<8} (expected {expected:<7}) {verdict:<10} {time.monotonic() - started:5.1f} s")
    return failures


def main() -> int:
    repo = Path(__file__).resolve().parents[2]
    os.environ.setdefault("AIRFLOW_HOME", str(repo / "airflow-home"))
    from airflow_workflow_provider.testing.emulator import WorkflowEmulator

    with WorkflowEmulator() as emulator:
        print(f"emulator listening on {emulator.url}")
        _hooks()  # importing Airflow configures logging; quieten the emulator's request log after that
        logging.getLogger("airflow_workflow_provider.testing.emulator").setLevel(logging.WARNING)
        for conn in _connections(emulator).values():
            os.environ[f"AIRFLOW_CONN_{conn['conn_type'].upper()}_DEFAULT"] = json.dumps(conn)
        failures = run_hooks_demo(emulator)
        if "--hooks-only" not in sys.argv:
            failures += run_example_dags(emulator, repo)
    print("\ndemo finished: every outcome as expected" if not failures else f"\ndemo: {failures} unexpected outcome(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
