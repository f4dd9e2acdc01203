"""``make demo``: the provider end to end against the offline emulator, in a throwaway Airflow of its own.

Part 1 starts one succeeding and one failing execution per vendor through the hooks; part 2 runs the
example DAGs with ``airflow dags test``, as a user would. Everything happens in a temporary Airflow home
with its own sqlite database, Fernet key and connections, created here and deleted at the end: the
Airflow settings of the environment the demo runs in (``AIRFLOW_HOME``, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``,
a Fernet key, ``AIRFLOW_CONN_*``, a secrets backend...) are never read, so the demo cannot touch a
database or a connection it did not create.

From a checkout it runs ``example_dags/``; from an installed wheel, the copy shipped in the package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEMO_WORKFLOWS = {
    "datadog": ("3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10", "Datadog"),
    "cloudflare": ("order-fulfilment", "Cloudflare"),
    "sailpoint": ("b393f4e2-4785-4d7f-ab27-3a6b8ded4c81", "SailPoint"),
}
# Set in the demo's own process once its environment is the throwaway one.
ISOLATED_MARKER = "AIRFLOW_WORKFLOW_PROVIDER_DEMO_HOME"
DAG_RUN_FINISHED = re.compile(r"DagRun Finished: .*?, state=(\w+),")


def example_dags_folder() -> Path | None:
    """The example DAGs: the checkout's ``example_dags/``, else the copy shipped in the wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parents[1] / "example_dags", package / "example_dags"):
        if any(candidate.glob("example_*.py")):
            return candidate
    return None


def example_dag_ids(dags_folder: Path) -> list[str]:
    pattern = re.compile(r"""DAG\(\s*["']([a-z0-9_]+)["']""")
    return [m for path in sorted(dags_folder.glob("example_*.py")) for m in pattern.findall(path.read_text())]


def isolated_environment(home: Path) -> dict[str, str]:
    """The parent's environment without any Airflow setting, plus a complete Airflow of the demo's own."""
    from cryptography.fernet import Fernet

    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The examples poll every 30 s, as fits real workflows; the emulated ones end within seconds.
            "EXAMPLE_WORKFLOW_POLL_SECONDS": "1",
            ISOLATED_MARKER: str(home),
        }
    )
    return env


# -- inside the throwaway Airflow --------------------------------------------------------------------


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
    from airflow_workflow_provider.testing.emulator import WorkflowScript

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


def _airflow(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, check=check, timeout=600
    )


def run_example_dags(emulator: Any, dags_folder: Path, dag_ids: list[str]) -> int:
    """Part 2: example DAGs through ``airflow dags test``, with the connections in the demo's own database."""
    from airflow_workflow_provider.testing.emulator import WorkflowScript

    print("\nexample DAGs, each with `airflow dags test`")
    _airflow("db", "migrate")
    for conn in _connections(emulator).values():
        conn_id = f"{conn['conn_type']}_default"
        _airflow("connections", "add", conn_id, "--conn-json", json.dumps(conn))
        print(f"  connection {conn_id} -> {conn['extra']['base_url']}")
    # What the example DAGs expect of their workflows, beyond the emulator's defaults.
    emulator.script("cloudflare", "expense-approval", WorkflowScript(duration=2.0, wait_for_event="approval"))
    emulator.script("sailpoint", "7c1e2f10-draft-4b1a-9d3e-5a6b7c8d9e0f", WorkflowScript(duration=1.5, enabled=False))
    failures = 0
    for dag_id in dag_ids:
        expected = "failed" if dag_id.endswith("_fails") else "success"
        started = time.monotonic()
        run = _airflow("dags", "test", dag_id, check=False)
        finished = DAG_RUN_FINISHED.findall(run.stdout + run.stderr)
        state = finished[-1] if finished else "no run"
        verdict = "OK" if state == expected else "UNEXPECTED"
        failures += verdict != "OK"
        print(f"  {dag_id:<48} {state:<8} (expected {expected:<7}) {verdict:<10} {time.monotonic() - started:5.1f} s")
        if verdict != "OK" and not finished:
            print("    " + "\n    ".join((run.stderr or run.stdout).strip().splitlines()[-5:]))
    return failures


def run_inside(home: Path, hooks_only: bool, dag_ids: list[str]) -> int:
    """Runs in the demo's own process, whose environment holds only the throwaway Airflow."""
    from airflow_workflow_provider.testing.emulator import WorkflowEmulator

    with WorkflowEmulator() as emulator:
        print(f"emulator listening on {emulator.url}")
        # Part 1 reads the connections from the environment, part 2 from the demo's database.
        for conn in _connections(emulator).values():
            os.environ[f"AIRFLOW_CONN_{conn['conn_type'].upper()}_DEFAULT"] = json.dumps(conn)
        _hooks()  # importing Airflow configures logging; quieten the emulator's request log after that
        logging.getLogger("airflow_workflow_provider.testing.emulator").setLevel(logging.WARNING)
        failures = run_hooks_demo(emulator)
        for conn in _connections(emulator).values():
            del os.environ[f"AIRFLOW_CONN_{conn['conn_type'].upper()}_DEFAULT"]
        if not hooks_only:
            failures += run_example_dags(emulator, home / "dags", dag_ids)
    return failures


# -- the entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_workflow_provider.testing.demo",
        description="The provider end to end against the offline emulator, in a throwaway Airflow of its own.",
    )
    parser.add_argument("--hooks-only", action="store_true", help="run part 1 only (no example DAGs)")
    parser.add_argument("--dag-id", action="append", default=[], help="run only this example DAG (repeatable)")
    parser.add_argument("--dags-folder", type=Path, help="run the example_*.py DAGs of this folder instead")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway Airflow home for inspection")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)  # the demo's own process
    args = parser.parse_args(argv)

    if args.inside is not None:
        if os.environ.get(ISOLATED_MARKER) != str(args.inside):
            parser.error("--inside is for the demo's own process")
        return run_inside(args.inside, args.hooks_only, args.dag_id)

    dags_source = args.dags_folder or example_dags_folder()
    dag_ids: list[str] = []
    if not args.hooks_only:
        available = example_dag_ids(dags_source) if dags_source else []
        dag_ids = args.dag_id or available
        if not dag_ids:
            print(f"no example DAGs found (looked in {dags_source or 'example_dags/ and the package'})")
            print("demo: nothing to run, so no outcome to vouch for")
            return 1
    home = Path(tempfile.mkdtemp(prefix="airflow-workflow-provider-demo-"))
    try:
        (home / "dags").mkdir()
        if dags_source and not args.hooks_only:
            for path in dags_source.glob("example_*.py"):
                shutil.copy(path, home / "dags" / path.name)
        print(f"throwaway Airflow home: {home} (its own sqlite database, Fernet key and connections)")
        if not args.hooks_only:
            print(f"example DAGs from {dags_source}")
        command = [sys.executable, "-m", "airflow_workflow_provider.testing.demo", "--inside", str(home)]
        command += ["--hooks-only"] if args.hooks_only else [f"--dag-id={dag_id}" for dag_id in dag_ids]
        failures = subprocess.run(command, env=isolated_environment(home), check=False).returncode
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    ran = "the hooks" if args.hooks_only else f"the hooks and {len(dag_ids)} example DAG(s)"
    if failures == 0:
        print(f"\ndemo finished: every outcome as expected ({ran})")
        return 0
    print(f"\ndemo: {failures} unexpected outcome(s) ({ran})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
