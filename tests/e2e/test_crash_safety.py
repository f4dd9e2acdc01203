"""Crash safety in a real deployment: a worker killed mid-wait, a triggerer restarted while a task is deferred.

Both must end with exactly one remote execution: the retry of the killed task reattaches to the execution the
first try started (``ResumableJobMixin`` + ``task_state_store``), and a trigger handed to a new triggerer keeps
following its execution instead of canceling it (``cleanup()`` is no ``on_kill()``).

The DAGs live in a file this module writes into the deployment's dags folder; ``airflow dags reserialize``
parses it at once (the dag-processor would only notice a new file after its refresh interval).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.e2e.support import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

WORKER_DAG = "crash_safety_worker_killed"
TRIGGERER_DAG = "crash_safety_triggerer_restarted"
USER_KILL_DAG = "crash_safety_user_marks_failed"
USER_KILL_WORKFLOW = "crash-safety-user-kill"
TASK_ID = "run_workflow"
DATADOG_WORKFLOW = "0c4b7e1e-2f6a-4d8b-9a3e-5b1c7d9e2f40"
CLOUDFLARE_WORKFLOW = "crash-safety-deferred"
WORKER_EXECUTION_SECONDS = 25.0
DEFERRED_EXECUTION_SECONDS = 20.0
# Lowered for the scheduler of the first test only, so that it notices the dead task in seconds, not 5 minutes.
HEARTBEAT_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
}
TEST_DEADLINE = 200  # seconds per test, under the 4 minutes each may take
POLL_EVERY = 1.0

DAG_FILE = f'''
"""Written by tests/e2e/test_crash_safety.py."""

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator

COMMON = {{"schedule": None, "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"), "catchup": False}}

with DAG("{WORKER_DAG}", **COMMON):
    DatadogRunWorkflowOperator(
        task_id="{TASK_ID}",
        workflow="{DATADOG_WORKFLOW}",
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG("{TRIGGERER_DAG}", **COMMON):
    CloudflareRunWorkflowOperator(
        task_id="{TASK_ID}",
        workflow="{CLOUDFLARE_WORKFLOW}",
        poll_interval=1,
        deferrable=True,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG("{USER_KILL_DAG}", **COMMON):
    CloudflareRunWorkflowOperator(
        task_id="{TASK_ID}", workflow="{USER_KILL_WORKFLOW}", poll_interval=1, deferrable=True
    )
'''


@pytest.fixture(scope="module")
def crash_dags(airflow_deployment: Deployment) -> Deployment:
    deployment = airflow_deployment
    deployment.script_workflow("datadog", DATADOG_WORKFLOW, duration=WORKER_EXECUTION_SECONDS)
    deployment.script_workflow("cloudflare", CLOUDFLARE_WORKFLOW, duration=DEFERRED_EXECUTION_SECONDS)
    deployment.script_workflow("cloudflare", USER_KILL_WORKFLOW, duration=TEST_DEADLINE)
    deployment.add_dags("crash_safety_dags.py", DAG_FILE, [WORKER_DAG, TRIGGERER_DAG, USER_KILL_DAG])
    return deployment


# -- helpers ------------------------------------------------------------------------------------------------


def vendor_requests(deployment: Deployment, vendor: str, operation: str, execution_id: str) -> list[dict[str, Any]]:
    """The requests of ``operation`` the emulator received for the execution (a Cloudflare terminate is "cancel")."""
    return [
        r
        for r in deployment.emulator_requests()
        if r["vendor"] == vendor and r["operation"] == operation and execution_id in r["path"]
    ]


def task_instance(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, Any]:
    return deployment.task_instance(dag_id, run_id, TASK_ID)


def task_log(deployment: Deployment, dag_id: str, run_id: str, try_number: int) -> str:
    return deployment.task_log(dag_id, run_id, TASK_ID, try_number)


def trigger_starts(deployment: Deployment, dag_id: str, run_id: str) -> list[str]:
    """The trigger log files of try 1 that record the trigger starting: one per triggerer that ran it."""
    folder = deployment.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={TASK_ID}"
    return sorted(
        path.name
        for path in folder.glob("attempt=1.log.trigger.*.log")
        if re.search(r'"event":\s*"trigger [^"]* starting"', path.read_text(errors="replace"))
    )


def task_processes(ti_id: str) -> tuple[psutil.Process, psutil.Process]:
    """The task runner (its title is ``airflow worker -- <ti id>``) and its supervisor, a LocalExecutor worker."""
    runners = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if ti_id in cmdline and "LocalExecutor" not in cmdline:
            runners.append(proc)
    assert len(runners) == 1, f"expected one task runner for TI {ti_id}, found {[p.info for p in runners]}"
    (runner,) = runners
    supervisor = runner.parent()
    assert supervisor is not None and "LocalExecutor" in " ".join(supervisor.cmdline()), (
        f"the task runner's parent is no LocalExecutor worker: {supervisor and supervisor.cmdline()}"
    )
    return runner, supervisor


@contextlib.contextmanager
def scheduler_env(deployment: Deployment, env: dict[str, str]) -> Iterator[None]:
    """Run the scheduler with ``env`` in the block, then restart it with the deployment's settings again."""
    deployment.restart("scheduler", env=env)
    try:
        deployment.wait_healthy("scheduler", time.monotonic() + 60)
        yield
    finally:
        deployment.restart("scheduler")
        deployment.wait_healthy("scheduler", time.monotonic() + 60)


# -- tests --------------------------------------------------------------------------------------------------


def test_killed_worker_retry_reattaches_to_the_same_execution(crash_dags: Deployment) -> None:
    deployment = crash_dags
    started = time.monotonic()
    deadline = started + TEST_DEADLINE
    assert deployment.emulator_executions("datadog", DATADOG_WORKFLOW) == []
    with scheduler_env(deployment, HEARTBEAT_SETTINGS):
        run_id = deployment.trigger(WORKER_DAG)
        # Wait until the first try runs, the execution exists and its id is in the task_state_store: then the
        # worker dies, mid-wait. The first status line is logged after the store write; a kill between the
        # vendor's answer and that write is the window Airflow's ResumableJobMixin documents as unclosable.
        while True:
            deployment.check_alive()
            ti = task_instance(deployment, WORKER_DAG, run_id)
            executions = deployment.emulator_executions("datadog", DATADOG_WORKFLOW)
            if (
                ti["state"] == "running"
                and len(executions) == 1
                and deployment.execution_id_stored(WORKER_DAG, run_id, TASK_ID, executions[0]["id"])
            ):
                break
            assert ti["state"] in (None, "scheduled", "queued", "running"), ti
            assert time.monotonic() < started + 90, f"the task never ran with its execution started: {ti}"
            time.sleep(0.5)
        assert ti["try_number"] == 1, ti
        (execution,) = executions
        assert execution["status"] == "IN_PROGRESS", execution
        runner, supervisor = task_processes(ti["id"])
        # The whole worker dies at once: no supervisor is left to report anything, Airflow must notice alone.
        supervisor.send_signal(signal.SIGKILL)
        runner.send_signal(signal.SIGKILL)
        psutil.wait_procs([runner, supervisor], timeout=10)
        killed_at = time.monotonic()
        state = deployment.wait_for_run_end(WORKER_DAG, run_id, deadline)

    ti = task_instance(deployment, WORKER_DAG, run_id)
    executions = deployment.emulator_executions("datadog", DATADOG_WORKFLOW)
    second_log = task_log(deployment, WORKER_DAG, run_id, 2)
    details = f"task: {ti}\nexecutions: {executions}\nsecond try's log:\n{second_log[-3000:]}"
    assert state == "success", details
    assert ti["state"] == "success" and ti["try_number"] == 2, details
    assert [e["id"] for e in executions] == [execution["id"]], f"a duplicate execution was started\n{details}"
    assert executions[0]["status"] == "SUCCEEDED", details
    xcom_path = f"/dags/{WORKER_DAG}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries"
    assert deployment.api("GET", f"{xcom_path}/execution_id")["value"] == execution["id"], details
    result = deployment.api("GET", f"{xcom_path}/return_value")["value"]
    result = json.loads(result) if isinstance(result, str) else result
    assert result["id"] == execution["id"] and result["state"] == "succeeded", result
    assert not vendor_requests(deployment, "datadog", "cancel", execution["id"]), details
    assert "started by an earlier try" in second_log, details
    print(
        f"\nworker killed; retry reattached to {execution['id']}; run ended {time.monotonic() - killed_at:.0f} s"
        f" after the kill, {time.monotonic() - started:.0f} s in all"
    )


def test_restarted_triggerer_keeps_following_the_execution(crash_dags: Deployment) -> None:
    deployment = crash_dags
    started = time.monotonic()
    deadline = started + TEST_DEADLINE
    assert deployment.emulator_executions("cloudflare", CLOUDFLARE_WORKFLOW) == []
    run_id = deployment.trigger(TRIGGERER_DAG)
    while True:
        deployment.check_alive()
        ti = task_instance(deployment, TRIGGERER_DAG, run_id)
        if ti["state"] == "deferred":
            break
        assert ti["state"] in (None, "scheduled", "queued", "running"), ti
        assert time.monotonic() < started + 90, f"the task never deferred: {ti}"
        time.sleep(0.5)
    # Deferred is not enough: the restart must hit a trigger the first triggerer is already running.
    while not trigger_starts(deployment, TRIGGERER_DAG, run_id):
        deployment.check_alive()
        ti = task_instance(deployment, TRIGGERER_DAG, run_id)
        assert ti["state"] == "deferred", f"the task left 'deferred' before its trigger was seen running: {ti}"
        assert time.monotonic() < started + 90, f"no triggerer started the trigger: {ti}"
        time.sleep(0.5)
    (execution,) = deployment.emulator_executions("cloudflare", CLOUDFLARE_WORKFLOW)
    assert execution["status"] in ("queued", "running"), execution
    try:
        deployment.restart("triggerer", sig=signal.SIGTERM)
        restarted_at = time.monotonic()
        still = deployment.emulator_executions("cloudflare", CLOUDFLARE_WORKFLOW)
        assert [e["status"] for e in still] in (["queued"], ["running"]), f"stopping the triggerer ended it: {still}"
        state = deployment.wait_for_run_end(TRIGGERER_DAG, run_id, deadline)
    finally:
        deployment.wait_healthy("triggerer", time.monotonic() + 60)

    ti = task_instance(deployment, TRIGGERER_DAG, run_id)
    executions = deployment.emulator_executions("cloudflare", CLOUDFLARE_WORKFLOW)
    details = f"task: {ti}\nexecutions: {executions}\nlog:\n{task_log(deployment, TRIGGERER_DAG, run_id, 1)[-3000:]}"
    assert state == "success", details
    assert ti["state"] == "success" and ti["try_number"] == 1, details
    assert [e["id"] for e in executions] == [execution["id"]], f"a duplicate execution was started\n{details}"
    assert executions[0]["status"] == "complete", f"the execution did not complete (terminated?)\n{details}"
    # Both triggerers ran the trigger, each writing its own trigger log for the try.
    starts = trigger_starts(deployment, TRIGGERER_DAG, run_id)
    assert len(starts) == 2, f"expected one trigger start per triggerer, found {starts}\n{details}"
    # The emulator records a terminate as "cancel", every other status change (pause, resume) as "status".
    stops = [r for op in ("cancel", "status") for r in vendor_requests(deployment, "cloudflare", op, execution["id"])]
    assert not stops, f"somebody terminated or paused the execution: {stops}"
    print(
        f"\ntriggerer restarted; execution {execution['id']} completed; run ended"
        f" {time.monotonic() - restarted_at:.0f} s after the restart, {time.monotonic() - started:.0f} s in all"
    )


def test_user_marking_a_deferred_task_failed_cancels_its_execution(crash_dags: Deployment) -> None:
    """The other side of the triggerer tests: a user's kill reaches the vendor, through the trigger's on_kill.

    Airflow 3.3 calls ``on_kill`` on a hand-over between triggerers too (apache/airflow#73454), so the trigger
    asks Airflow whether the task is still deferred; here it is not (the user marked it failed): it cancels.
    """
    deployment = crash_dags
    started = time.monotonic()
    run_id = deployment.trigger(USER_KILL_DAG)
    while not trigger_starts(deployment, USER_KILL_DAG, run_id):
        deployment.check_alive()
        ti = task_instance(deployment, USER_KILL_DAG, run_id)
        assert ti["state"] in (None, "scheduled", "queued", "running", "deferred"), ti
        assert time.monotonic() < started + 90, f"no triggerer started the trigger: {ti}"
        time.sleep(0.5)
    (execution,) = deployment.emulator_executions("cloudflare", USER_KILL_WORKFLOW)
    assert execution["status"] in ("queued", "running"), execution

    deployment.api(
        "PATCH",
        f"/dags/{USER_KILL_DAG}/dagRuns/{run_id}/taskInstances/{TASK_ID}",
        json={"new_state": "failed"},
    )
    while True:
        (execution,) = deployment.emulator_executions("cloudflare", USER_KILL_WORKFLOW)
        if execution["status"] == "terminated":
            break
        assert time.monotonic() < started + TEST_DEADLINE, f"the user's kill never reached the vendor: {execution}"
        time.sleep(POLL_EVERY)
    folder = deployment.home / "logs" / f"dag_id={USER_KILL_DAG}" / f"run_id={run_id}" / f"task_id={TASK_ID}"
    trigger_log = "\n".join(p.read_text(errors="replace") for p in folder.glob("attempt=1.log.trigger.*.log"))
    assert "Trigger cancelled by user action" in trigger_log, trigger_log[-3000:]
    assert "could not ask Airflow" not in trigger_log, trigger_log[-3000:]
    assert len(vendor_requests(deployment, "cloudflare", "cancel", execution["id"])) == 1
    assert task_instance(deployment, USER_KILL_DAG, run_id)["state"] == "failed"
