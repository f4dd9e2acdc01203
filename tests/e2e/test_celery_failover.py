"""Crash safety in the production-shaped deployment (PostgreSQL, Celery, two triggerers).

Triggerer failover: 50 deferred waits spread over both triggerers; one of them is killed with SIGKILL. The other
must take its triggers over (Airflow reassigns the triggers of a triggerer whose heartbeat is older than
``[triggerer] triggerer_health_check_threshold``), every execution must be followed to its end exactly once and
none canceled, and no second execution may be started. The takeover time is measured, printed and written to
reports/deployment.md.

Worker loss: a Celery worker is killed (the worker, its pool and the task running in it) while a non-deferrable
run operator waits; the retry runs on the other worker and reattaches to the execution the first try started.

Both use Cloudflare or Datadog workflows scripted in the emulator; the waits are released by sending the event
their executions wait for (``step.waitForEvent``), so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from airflow_workflow_provider.testing.emulator import EmulatorCredentials
from tests.e2e.support import REPO, Deployment, component_command

pytestmark = [pytest.mark.e2e_celery, pytest.mark.timeout(600)]

FAILOVER_DAG = "celery_failover_deferred_waits"
WORKER_LOSS_DAG = "celery_worker_killed"
WAITS = 50
FAILOVER_WORKFLOW = "failover-waits"
RELEASE_EVENT = "release"
DATADOG_WORKFLOW = "6f2d9c1e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"
WORKER_EXECUTION_SECONDS = 25.0
POLL_EVERY = 0.5  # while timing the takeover
SLOW_POLL = 3.0  # while 50 tasks start: each poll costs the busy api-server a 50-row query
# Deadlines (seconds); each test stops itself well within its pytest timeout.
ALL_DEFERRED_TIMEOUT = 360  # 50 task starts on 2 workers x 2 slots, on 2 busy cores
TAKEOVER_TIMEOUT = 120  # Airflow needs triggerer_health_check_threshold (10 s) plus a loop or two
RUN_END_TIMEOUT = 240
WORKER_LOSS_TIMEOUT = 300
REPORT = REPO / "reports" / "deployment.md"

DAG_FILE = f'''
"""Written by tests/e2e/test_celery_failover.py."""

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator
from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator

COMMON = {{"schedule": None, "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"), "catchup": False}}

with DAG("{FAILOVER_DAG}", max_active_tasks={WAITS}, **COMMON):
    for number in range({WAITS}):
        CloudflareRunWorkflowOperator(
            task_id=f"wait_{{number:02d}}",
            workflow="{FAILOVER_WORKFLOW}",
            payload={{"wait": number}},
            poll_interval=2,
            deferrable=True,
        )

with DAG("{WORKER_LOSS_DAG}", **COMMON):
    DatadogRunWorkflowOperator(
        task_id="run_workflow",
        workflow="{DATADOG_WORKFLOW}",
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
'''


@pytest.fixture(scope="module")
def crash_dags(celery_deployment: Deployment) -> Deployment:
    deployment = celery_deployment
    # Each execution waits for the test's "release" event, then runs one more second and completes.
    deployment.script_workflow(
        "cloudflare", FAILOVER_WORKFLOW, duration=1.5, queued_for=0.1, wait_for_event=RELEASE_EVENT, wait_after=0.2
    )
    deployment.script_workflow("datadog", DATADOG_WORKFLOW, duration=WORKER_EXECUTION_SECONDS)
    deployment.add_dags("celery_failover_dags.py", DAG_FILE, [FAILOVER_DAG, WORKER_LOSS_DAG])
    return deployment


# -- helpers ------------------------------------------------------------------------------------------------


def task_instances(deployment: Deployment, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    answer = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return list(answer["task_instances"])


def session_of(pid: int) -> int:
    return os.getsid(pid)


def triggerer_job_ids(deployment: Deployment) -> dict[int, str]:
    """Triggerer job id -> component name, from the trigger log files each triggerer's processes hold open.

    A triggerer writes the log of each trigger it runs to ``...attempt=N.log.trigger.<its job id>.log``.
    """
    found: dict[int, str] = {}
    for name in deployment.topology.triggerer_names:
        if name not in deployment.processes:
            continue
        session = deployment.processes[name].pid
        for proc in psutil.process_iter():
            try:
                if session_of(proc.pid) != session:
                    continue
                paths = [item.path for item in proc.open_files()]
            except (psutil.Error, OSError):
                continue
            for path in paths:
                match = re.search(r"\.log\.trigger\.(\d+)\.log$", path)
                if match:
                    found[int(match.group(1))] = name
    return found


def requests_for(log: list[dict[str, Any]], execution_id: str, operation: str) -> list[dict[str, Any]]:
    return [r for r in log if r["vendor"] == "cloudflare" and r["operation"] == operation and execution_id in r["path"]]


def listings_of(log: list[dict[str, Any]], workflow: str) -> list[dict[str, Any]]:
    return [
        r
        for r in log
        if r["vendor"] == "cloudflare" and r["operation"] == "list" and f"/workflows/{workflow}/instances" in r["path"]
    ]


def send_event(deployment: Deployment, execution_id: str) -> None:
    """``POST .../instances/{id}/events/{type}`` as the system the workflow waits for would send it."""
    creds = EmulatorCredentials()
    url = (
        f"{deployment.emulator_url}/cloudflare/client/v4/accounts/{creds.cloudflare_account_id}/workflows/"
        f"{FAILOVER_WORKFLOW}/instances/{execution_id}/events/{RELEASE_EVENT}"
    )
    answer = requests.post(
        url, json={"approved": True}, headers={"Authorization": f"Bearer {creds.cloudflare_api_token}"}, timeout=10
    )
    assert answer.status_code == 200, f"event for {execution_id}: {answer.status_code} {answer.text[:300]}"


def trigger_log_files(deployment: Deployment, run_id: str, task_id: str) -> list[Path]:
    folder = deployment.home / "logs" / f"dag_id={FAILOVER_DAG}" / f"run_id={run_id}" / f"task_id={task_id}"
    return sorted(folder.glob("attempt=1.log.trigger.*.log"))


def trigger_started_on(deployment: Deployment, run_id: str, task_id: str) -> set[int]:
    """The triggerer jobs whose log file for this wait records Airflow starting its trigger."""
    return {
        int(path.name.split(".")[-2])
        for path in trigger_log_files(deployment, run_id, task_id)
        if re.search(r'"event":\s*"trigger [^"]* starting"', path.read_text(errors="replace"))
    }


def fired_events(deployment: Deployment, run_id: str) -> dict[str, int]:
    """How many events each wait's trigger fired, over both triggerers.

    The triggerer logs "Trigger fired event" into the trigger's own log file, or, when that file's handler is
    gone by then, into its component log with the trigger's name (``<dag>/<run>/<task>/<map index>/<try>``).
    """
    counts = {f"wait_{number:02d}": 0 for number in range(WAITS)}
    for task_id in counts:
        for path in trigger_log_files(deployment, run_id, task_id):
            counts[task_id] += path.read_text(errors="replace").count('"event":"Trigger fired event"')
    named = re.compile(rf"Trigger fired event .*name='{FAILOVER_DAG}/{re.escape(run_id)}/(wait_\d+)/")
    for name in deployment.topology.triggerer_names:
        for match in named.finditer(deployment.log_file(name).read_text(errors="replace")):
            counts[match.group(1)] += 1
    return counts


@dataclass
class Takeover:
    killed: str
    survivor: str
    orphans: int
    spread: dict[str, int]
    reassigned_after: float  # seconds from the kill until Airflow had given every orphan to the survivor
    followed_after: float  # ... until the survivor had polled every orphaned execution at the vendor
    deferred_after: float  # seconds from the trigger of the run until all 50 waits ran in the triggerers
    run_seconds: float

    def markdown(self) -> str:
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        return f"""# Production-shaped deployment: measurements

Written by `tests/e2e/test_celery_failover.py` (`make e2e-celery`): PostgreSQL 15, CeleryExecutor on Redis with
two workers (2 slots each), two triggerers, scheduler, dag-processor and api-server on 127.0.0.1; Airflow's
failover settings as in `tests/e2e/support.py` (`CELERY_POSTGRES`): triggerer heartbeat every 1 s,
`triggerer_health_check_threshold` 10 s, at most 5 triggers claimed per triggerer loop.
Machine load average when measured: {load} (on {os.cpu_count()} cores).

## Triggerer failover

{WAITS} deferred Cloudflare waits (`CloudflareRunWorkflowOperator(deferrable=True)`, polling every 2 s), spread
over the two triggerers ({", ".join(f"{name}: {count}" for name, count in self.spread.items())}); `kill -9` of
{self.killed} and everything it had started.

| what | seconds |
| --- | ---: |
| all {WAITS} waits running in the triggerers, from the trigger of the run | {self.deferred_after:.1f} |
| Airflow gave the {self.orphans} orphaned triggers to {self.survivor}, from the kill | {self.reassigned_after:.1f} |
| {self.survivor} polled every orphaned execution, from the kill (**takeover time**) | {self.followed_after:.1f} |
| the whole run, trigger to end | {self.run_seconds:.1f} |

Every execution ended `complete`, one execution per task (none started twice), no cancel or terminate request
reached the vendor, every task instance succeeded in its first try, and each trigger fired exactly one event.
The takeover time is bounded below by `triggerer_health_check_threshold`: lower it for faster failover, at the
price of false takeovers when a busy triggerer misses heartbeats (a takeover then runs the trigger twice for a
while; our triggers only read, so that costs requests, not correctness).
"""


def write_report(takeover: Takeover) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(takeover.markdown())


# -- tests --------------------------------------------------------------------------------------------------


def test_triggerer_failover_follows_every_execution_exactly_once(crash_dags: Deployment) -> None:
    deployment = crash_dags
    started = time.monotonic()
    assert deployment.emulator_executions("cloudflare", FAILOVER_WORKFLOW) == []
    run_id = deployment.trigger(FAILOVER_DAG)

    # 1. All 50 tasks deferred, their triggers assigned and running: each execution waits for its event and
    #    has been polled by a trigger at least once.
    deadline = started + ALL_DEFERRED_TIMEOUT
    while True:
        deployment.check_alive()
        tis = task_instances(deployment, FAILOVER_DAG, run_id)
        wrong = [ti for ti in tis if ti["state"] in ("failed", "upstream_failed", "up_for_retry", "success")]
        assert not wrong, f"tasks ended before the release: {wrong}"
        executions = deployment.emulator_executions("cloudflare", FAILOVER_WORKFLOW)
        log = deployment.emulator_requests()
        assigned = [ti for ti in tis if ti["state"] == "deferred" and (ti.get("trigger") or {}).get("triggerer_id")]
        polled = [e for e in executions if e["status"] == "waiting" and requests_for(log, e["id"], "get")]
        # Assigned is not yet running: a trigger the doomed triggerer claimed but had not started when killed
        # would never have run there. Each must be running on the triggerer it is assigned to.
        running = [
            ti
            for ti in assigned
            if ti["trigger"]["triggerer_id"] in trigger_started_on(deployment, run_id, ti["task_id"])
        ]
        if len(assigned) == WAITS and len(polled) == WAITS and len(running) == WAITS:
            break
        assert time.monotonic() < deadline, (
            f"after {ALL_DEFERRED_TIMEOUT} s: {len(assigned)}/{WAITS} deferred with a triggerer, "
            f"{len(running)}/{WAITS} triggers started there, "
            f"{len(polled)}/{WAITS} executions waiting and polled; states: {sorted(ti['state'] for ti in tis)}"
        )
        time.sleep(SLOW_POLL)
    deferred_after = time.monotonic() - started
    execution_of = {e["payload"]["wait"]: e["id"] for e in executions}
    assert len(execution_of) == WAITS, f"expected one execution per wait: {executions}"
    task_execution = {ti["task_id"]: execution_of[int(ti["task_id"].removeprefix("wait_"))] for ti in tis}

    # 2. Which triggerer runs what. Airflow spreads a burst of deferrals over both (at most 5 claimed per loop),
    #    but a triggerer stalled by a loaded machine may get few or none; the failover is tested either way.
    by_job: dict[int, list[str]] = {}
    for ti in tis:
        by_job.setdefault(ti["trigger"]["triggerer_id"], []).append(ti["task_id"])
    names = triggerer_job_ids(deployment)
    assert set(by_job) <= set(names), f"triggers on jobs {sorted(by_job)}; triggerer processes hold {names}"
    killed_job = max(by_job, key=lambda job: len(by_job[job]))
    killed = names[killed_job]
    (survivor,) = [name for name in deployment.topology.triggerer_names if name != killed]
    triggerer_jobs = deployment.api("GET", "/jobs", params={"job_type": "TriggererJob", "limit": 100})["jobs"]
    running_jobs = {job["id"] for job in triggerer_jobs if job["end_date"] is None}
    (survivor_job,) = running_jobs - {killed_job}
    orphans = sorted(by_job[killed_job])
    spread = {killed: len(orphans), survivor: WAITS - len(orphans)}
    if spread[survivor] == 0:
        print(f"\nnote: {killed} held all {WAITS} waits before the kill")

    # 3. kill -9 the triggerer with the larger share; time Airflow's reassignment and the survivor's first polls.
    deployment.kill(killed)
    killed_at = time.monotonic()
    deadline = killed_at + TAKEOVER_TIMEOUT
    reassigned_after: float | None = None
    mark = 0
    waiting_for = {task_execution[task] for task in orphans}
    while waiting_for:
        deployment.check_alive()
        now = time.monotonic()
        if reassigned_after is None:
            current = {ti["task_id"]: ti for ti in task_instances(deployment, FAILOVER_DAG, run_id)}
            owners = {(current[task].get("trigger") or {}).get("triggerer_id") for task in orphans}
            assert all(current[task]["state"] == "deferred" for task in orphans), [current[t] for t in orphans]
            if owners == {survivor_job}:
                reassigned_after = now - killed_at
                mark = len(deployment.emulator_requests())  # polls from here on can only be the survivor's
        else:
            fresh = deployment.emulator_requests()[mark:]
            waiting_for = {ex for ex in waiting_for if not requests_for(fresh, ex, "get")}
            # Coalesced polling: the survivor's poller learns the waiting instances of the workflow from its
            # listing, without a GET per instance. The second listing after the reassignment comes from a
            # round that already holds the orphaned triggers (they join the poller when they start).
            if len(listings_of(fresh, FAILOVER_WORKFLOW)) >= 2:
                waiting_for = set()
        assert now < deadline, (
            f"no takeover within {TAKEOVER_TIMEOUT} s: reassigned after {reassigned_after}; "
            f"{len(waiting_for)} orphaned executions not polled since"
        )
        time.sleep(POLL_EVERY)
    followed_after = time.monotonic() - killed_at
    assert reassigned_after is not None
    print(
        f"\ntriggerer failover: killed {killed} with {len(orphans)} of {WAITS} triggers; Airflow reassigned them"
        f" after {reassigned_after:.1f} s; {survivor} polled every orphaned execution {followed_after:.1f} s"
        " after the kill (takeover time)"
    )

    # 4. Release every execution, then everything must end well, each exactly once.
    for execution_id in task_execution.values():
        send_event(deployment, execution_id)
    state = deployment.wait_for_run_end(FAILOVER_DAG, run_id, time.monotonic() + RUN_END_TIMEOUT)
    run_seconds = time.monotonic() - started

    tis = task_instances(deployment, FAILOVER_DAG, run_id)
    executions = deployment.emulator_executions("cloudflare", FAILOVER_WORKFLOW)
    log = deployment.emulator_requests()
    assert state == "success", [f"{ti['task_id']}={ti['state']}" for ti in tis]
    assert all(ti["state"] == "success" and ti["try_number"] == 1 for ti in tis), tis
    assert len(executions) == WAITS, f"a second execution was started: {len(executions)} executions"
    assert all(e["status"] == "complete" for e in executions), [e for e in executions if e["status"] != "complete"]
    assert all(len(e["events"]) == 1 for e in executions), "an execution got more or less than the one event"
    fired = fired_events(deployment, run_id)
    assert set(fired.values()) == {1}, f"triggers that did not fire exactly one event: {fired}"
    for task_id, execution_id in task_execution.items():
        stops = requests_for(log, execution_id, "status") + requests_for(log, execution_id, "cancel")
        assert not stops, f"{task_id}: somebody paused or terminated {execution_id}: {stops}"
        if task_id in orphans:  # the trigger ran on both: each triggerer writes a log file of its own
            jobs = {int(path.name.split(".")[-2]) for path in trigger_log_files(deployment, run_id, task_id)}
            assert {killed_job, survivor_job} <= jobs, f"{task_id}: trigger logs of jobs {jobs}"
    # One start request per task (a start's path names the workflow, not the instance it creates).
    assert len([r for r in log if r["operation"] == "start" and FAILOVER_WORKFLOW in r["path"]]) == WAITS

    write_report(
        Takeover(killed, survivor, len(orphans), spread, reassigned_after, followed_after, deferred_after, run_seconds)
    )

    # The deployment gets its second triggerer back for the tests after this one.
    deployment.start(killed, component_command(deployment, killed))
    deployment.wait_healthy("triggerer", time.monotonic() + 60)


def test_killed_celery_worker_retry_reattaches_to_the_same_execution(crash_dags: Deployment) -> None:
    deployment = crash_dags
    started = time.monotonic()
    deadline = started + WORKER_LOSS_TIMEOUT
    assert deployment.emulator_executions("datadog", DATADOG_WORKFLOW) == []
    run_id = deployment.trigger(WORKER_LOSS_DAG)
    while True:
        deployment.check_alive()
        ti = deployment.task_instance(WORKER_LOSS_DAG, run_id, "run_workflow")
        executions = deployment.emulator_executions("datadog", DATADOG_WORKFLOW)
        if (
            ti["state"] == "running"
            and ti.get("pid")
            and len(executions) == 1
            and deployment.execution_id_stored(WORKER_LOSS_DAG, run_id, "run_workflow", executions[0]["id"])
        ):
            break
        assert ti["state"] in (None, "scheduled", "queued", "running"), ti
        assert time.monotonic() < started + 120, f"the task never ran with its execution started: {ti}"
        time.sleep(POLL_EVERY)
    assert ti["try_number"] == 1, ti
    (execution,) = executions
    assert execution["status"] == "IN_PROGRESS", execution
    workers = {deployment.processes[name].pid: name for name in deployment.topology.worker_names}
    worker = workers.get(session_of(ti["pid"]))
    assert worker is not None, f"task process {ti['pid']} belongs to no Celery worker {workers}"
    ready_marks = deployment.log_file(worker).read_text().count(f"{worker}@127.0.0.1 ready.")

    # The whole worker dies at once (Celery's main process, its pool, the task): nobody reports anything.
    deployment.kill(worker)
    killed_at = time.monotonic()
    state = deployment.wait_for_run_end(WORKER_LOSS_DAG, run_id, deadline)

    ti = deployment.task_instance(WORKER_LOSS_DAG, run_id, "run_workflow")
    executions = deployment.emulator_executions("datadog", DATADOG_WORKFLOW)
    second_log = deployment.task_log(WORKER_LOSS_DAG, run_id, "run_workflow", 2)
    details = f"task: {ti}\nexecutions: {executions}\nsecond try's log:\n{second_log[-3000:]}"
    assert state == "success", details
    assert ti["state"] == "success" and ti["try_number"] == 2, details
    assert [e["id"] for e in executions] == [execution["id"]], f"a second execution was started\n{details}"
    assert executions[0]["status"] == "SUCCEEDED", details
    assert "started by an earlier try" in second_log, details
    cancels = [r for r in deployment.emulator_requests() if r["operation"] == "cancel" and execution["id"] in r["path"]]
    assert not cancels, f"somebody canceled the execution: {cancels}\n{details}"
    ended_after = time.monotonic() - killed_at
    print(f"\nCelery worker {worker} killed; the retry reattached to {execution['id']} ({ended_after:.0f} s)")
    heartbeat_timeout = deployment.env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]
    with REPORT.open("a") as report:
        report.write(
            f"""
## Worker loss

A Datadog run operator (`deferrable=False`, `retries=1`) waiting in {worker}; `kill -9` of that worker's
Celery main process, its pool and the task. The scheduler failed the try after
`task_instance_heartbeat_timeout` ({heartbeat_timeout} s in the test), the retry ran on the other worker and
reattached to the execution the first try had started: one execution at the vendor, none canceled, the task
succeeded in its second try **{ended_after:.0f} s** after the kill.
"""
        )

    deployment.start(worker, component_command(deployment, worker))
    while deployment.log_file(worker).read_text().count(f"{worker}@127.0.0.1 ready.") <= ready_marks:
        deployment.check_alive()
        assert time.monotonic() < killed_at + WORKER_LOSS_TIMEOUT, f"{worker} did not come back"
        time.sleep(POLL_EVERY)
