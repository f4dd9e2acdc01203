"""Worker-slot cost: seconds of a worker slot held while an execution runs 60 s in the emulator.

Ours: the deferrable run operator, in a fresh process as a worker runs it (the DAG-level imports and the
operator object exist before the clock starts): the time ``execute()`` holds the slot until it raises
``TaskDeferred``, plus the time of the resume (``resume_execution`` -> ``execute_complete``) on a fresh operator
object. The trigger runs in between, serialized and rebuilt as the triggerer would; its time is not slot time.

Baseline: the http provider's ``HttpSensor`` in poke mode doing the same wait (same poll interval), polling
the emulator's GET endpoint with the vendor's auth headers and a ``response_check`` for a terminal status:
the slot is held for the whole of ``execute()``.

Child processes: ``python -m benchmarks.worker_slot {operator|sensor} VENDOR OUT_DIR POLL_INTERVAL``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import rawapi
from benchmarks.common import (
    CONN_IDS,
    EmulatorProcess,
    Figure,
    Section,
    child_env,
    connection_env,
    log,
    percent,
    spawn,
    stop_process,
    wait_for_file,
)

VENDORS = ("datadog", "cloudflare", "sailpoint")
DURATION = 60.0  # real seconds of emulator time: not scaled
POLL_INTERVAL = 10.0  # the operators' default
GOAL_PERCENT = 1.0
OPERATORS = {
    "datadog": "airflow_workflow_provider.operators.datadog.DatadogRunWorkflowOperator",
    "cloudflare": "airflow_workflow_provider.operators.cloudflare.CloudflareRunWorkflowOperator",
    "sailpoint": "airflow_workflow_provider.operators.sailpoint.SailPointRunWorkflowOperator",
}
OURS_WORKFLOW, HTTP_WORKFLOW = "bench-slot", "bench-slot-http"


# -- in the child processes ------------------------------------------------------------------------------


class _TaskStateStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value


class _TaskInstance:
    """What the operator reads from ``context["ti"]``; XCom goes to a dict (a worker sends it to the API server)."""

    dag_id, task_id, run_id, map_index, try_number = "bench", "run", "manual__bench", -1, 1

    def __init__(self) -> None:
        import pendulum

        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}
        self.start_date = pendulum.now("UTC")

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _operator_child(vendor: str, out: Path, poll_interval: float) -> None:
    import asyncio
    from importlib import import_module

    # DAG parsing, done before the task runs: import the operator module and build the operator.
    module, _, name = OPERATORS[vendor].rpartition(".")
    operator_class = getattr(import_module(module), name)
    from airflow.providers.common.compat.sdk import TaskDeferred

    def build() -> Any:
        return operator_class(
            task_id="run",
            workflow=OURS_WORKFLOW,
            **{f"{vendor}_conn_id": CONN_IDS[vendor]},
            deferrable=True,
            poll_interval=poll_interval,
        )

    operator = build()
    context: dict[str, Any] = {"ti": _TaskInstance(), "task_state_store": _TaskStateStore()}

    started = time.perf_counter()
    try:
        operator.execute(context)
    except TaskDeferred as deferred:
        before_defer = time.perf_counter() - started
        trigger_path, trigger_kwargs = deferred.trigger.serialize()
        method_name, method_kwargs = deferred.method_name, deferred.kwargs
    else:
        raise RuntimeError("the deferrable operator did not defer")
    (out / f"deferred-{vendor}").write_text(f"{before_defer}")

    # The triggerer's part: not slot time.
    module, _, name = trigger_path.rpartition(".")
    trigger = getattr(import_module(module), name)(**trigger_kwargs)

    async def first_event() -> Any:
        payloads = [event.payload async for event in trigger.run()]  # as the triggerer iterates it
        await trigger.cleanup()
        if not payloads:
            raise RuntimeError("the trigger ended without an event")
        return payloads[0]

    waited = time.perf_counter()
    payload = asyncio.run(first_event())
    trigger_seconds = time.perf_counter() - waited

    # The resume: a fresh operator object, as a new task process would have after parsing the DAG again.
    resumed = build()
    started = time.perf_counter()
    result = resumed.resume_execution(method_name, {**(method_kwargs or {}), "event": payload}, context)
    resume = time.perf_counter() - started
    _write(
        out / f"operator-{vendor}.json",
        {
            "before_defer": before_defer,
            "resume": resume,
            "trigger_seconds": trigger_seconds,
            "state": result.get("state") if isinstance(result, dict) else None,
            "execution_id": context["ti"].xcom.get("execution_id"),
        },
    )


def _sensor_child(vendor: str, out: Path, poll_interval: float, emulator_url: str) -> None:
    import requests
    from airflow.providers.http.sensors.http import HttpSensor  # DAG parsing

    session = requests.Session()
    token = None
    if vendor == "sailpoint":  # HttpSensor cannot do OAuth: the token is fetched once, outside the slot time
        token = session.post(emulator_url + rawapi.TOKEN_PATH, data=rawapi.TOKEN_FORM, timeout=30).json()[
            "access_token"
        ]
    auth = rawapi.headers(vendor, token)
    answer = session.post(
        emulator_url + rawapi.start_path(vendor, HTTP_WORKFLOW),
        json=rawapi.start_body(vendor),
        headers=auth,
        timeout=30,
    )
    answer.raise_for_status()
    execution_id = rawapi.started_id(vendor, answer.json())
    pokes = []

    def terminal(response: Any) -> bool:
        status = rawapi.status(vendor, response.json())
        pokes.append(status)
        return status in rawapi.TERMINAL[vendor]

    sensor = HttpSensor(
        task_id="wait",
        http_conn_id=f"bench_http_{vendor}",
        method="GET",
        endpoint=rawapi.get_path(vendor, HTTP_WORKFLOW, execution_id).lstrip("/"),
        request_params=rawapi.get_params(vendor),
        headers=auth,
        response_check=terminal,
        poke_interval=poll_interval,
        timeout=3600,
        mode="poke",
    )
    (out / f"sensing-{vendor}").write_text("1")
    started = time.perf_counter()
    sensor.execute({"ti": _TaskInstance()})
    slot = time.perf_counter() - started
    _write(out / f"sensor-{vendor}.json", {"slot": slot, "pokes": len(pokes), "last_status": pokes[-1]})


def _write(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)


# -- in the parent ---------------------------------------------------------------------------------------


@dataclass
class RunningSlotBenchmark:
    """Started by :func:`start`; the 60 s waits go on while other benchmarks run; :meth:`finish` collects."""

    workdir: Path
    ours: EmulatorProcess
    http: EmulatorProcess
    duration: float
    poll_interval: float
    children: list[Any] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def abort(self) -> None:
        """Stop every process this benchmark started (an interrupted run)."""
        for child in self.children:
            stop_process(child)
        self.ours.stop()
        self.http.stop()

    def finish(self) -> Section:
        section = _section(self.duration, self.poll_interval)
        try:
            deadline = time.monotonic() + self.duration * 3 + 60
            for child in self.children:
                child.wait(timeout=max(1.0, deadline - time.monotonic()))
                if child.returncode != 0:
                    raise RuntimeError(f"worker-slot child {child.args[2:4]} failed; see {self.workdir}")
            records = self.ours.requests_log()
            _figures(section, self.workdir, records, self.duration, self.poll_interval)
        except Exception as exc:
            section.error = f"{type(exc).__name__}: {exc}"
            log(f"worker-slot: {section.error}")
            for path in sorted(self.workdir.glob("*.log")):
                print(path.read_text()[-3000:], file=sys.stderr)
        finally:
            self.abort()
        section.runtime = time.monotonic() - self.started
        return section


def start(workdir: Path, duration: float = DURATION, poll_interval: float = POLL_INTERVAL) -> RunningSlotBenchmark:
    workdir.mkdir(parents=True, exist_ok=True)
    ours = EmulatorProcess(workdir, "slot-ours")
    http = EmulatorProcess(workdir, "slot-http")
    running = RunningSlotBenchmark(workdir, ours, http, duration, poll_interval)
    try:
        for vendor in VENDORS:
            ours.script(vendor, OURS_WORKFLOW, duration=duration)
            http.script(vendor, HTTP_WORKFLOW, duration=duration)
        host, port = http.url.removeprefix("http://").rsplit(":", 1)
        http_conns = {
            f"AIRFLOW_CONN_BENCH_HTTP_{vendor.upper()}": json.dumps(
                {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
            )
            for vendor in VENDORS
        }
        # Baselines first, all at once: they are idle between pokes while ours start, one by one, below.
        for vendor in VENDORS:
            running.children.append(
                spawn(
                    ["-m", "benchmarks.worker_slot", "sensor", vendor, str(workdir), str(poll_interval), http.url],
                    child_env(workdir, http_conns),
                    workdir / f"sensor-{vendor}.log",
                )
            )
        for vendor, child in zip(VENDORS, running.children, strict=True):
            wait_for_file(workdir / f"sensing-{vendor}", child, 120, f"HttpSensor child ({vendor})")
        env = child_env(workdir, connection_env({v: ours.base_url(v) for v in VENDORS}))
        for vendor in VENDORS:
            child = spawn(
                ["-m", "benchmarks.worker_slot", "operator", vendor, str(workdir), str(poll_interval)],
                env,
                workdir / f"operator-{vendor}.log",
            )
            running.children.append(child)
            # One at a time, so that the cold execute() of one does not compete with another's start-up.
            wait_for_file(workdir / f"deferred-{vendor}", child, 120, f"operator child ({vendor})")
        log("worker-slot: every task is waiting (60 s); other benchmarks run meanwhile")
    except BaseException:
        for child in running.children:
            stop_process(child)
        ours.stop()
        http.stop()
        raise
    return running


def _section(duration: float, poll_interval: float) -> Section:
    return Section(
        title="Worker-slot cost",
        method=(
            f"An execution scripted to run {duration:g} s (real time, not scaled) per vendor; poll interval "
            f"{poll_interval:g} s on both sides. **Ours**: `<Vendor>RunWorkflowOperator(deferrable=True)` in a fresh "
            "process, DAG-level imports and the operator object made before the clock starts; slot time = "
            "`execute()` until it raises `TaskDeferred` (start, XCom push, one status check, building the "
            "trigger) + the resume (`resume_execution` -> `execute_complete`, on a fresh operator object). The "
            "trigger is serialized, rebuilt and run in between (triggerer time, not slot time). **Baseline**: "
            "`airflow.providers.http.sensors.http.HttpSensor(mode='poke')` in a fresh process doing the same wait "
            "on its own 60 s execution: GET of the execution with the vendor's auth headers (SailPoint: a bearer "
            "token fetched before the clock starts, since HttpSensor cannot do OAuth) and a `response_check` for "
            "a terminal status; slot time = its whole `execute()`. XCom pushes go to an in-memory stand-in, not "
            "through a task supervisor; the task runner's own start-up (process, DAG parse), paid by both sides "
            "and once more by any deferrable task on resume, is outside both figures."
        ),
    )


def _figures(
    section: Section, workdir: Path, records: list[dict[str, Any]], duration: float, poll_interval: float
) -> None:
    ideal = math.ceil(duration / poll_interval) + 2
    for vendor in VENDORS:
        ours = json.loads((workdir / f"operator-{vendor}.json").read_text())
        sensor = json.loads((workdir / f"sensor-{vendor}.json").read_text())
        slot = ours["before_defer"] + ours["resume"]
        met = 100.0 * slot / sensor["slot"] <= GOAL_PERCENT
        section.figures.append(
            Figure(
                section.title,
                f"{vendor}: slot-seconds, deferrable operator vs HttpSensor (poke)",
                f"{slot:.3f} s ({ours['before_defer']:.3f} s before defer + {ours['resume']:.4f} s resume)",
                f"{sensor['slot']:.2f} s ({sensor['pokes']} pokes)",
                percent(slot, sensor["slot"]),
                f"<= {GOAL_PERCENT:g} %",
                met,
                f"execution ended {ours['state']}; trigger waited {ours['trigger_seconds']:.1f} s",
            )
        )
        mine = [r for r in records if r["vendor"] == vendor]
        by_operation: dict[str, int] = {}
        for record in mine:
            by_operation[record["operation"]] = by_operation.get(record["operation"], 0) + 1
        section.details.append(
            f"{vendor}: requests for the one operator-driven execution: {len(mine)} "
            f"({', '.join(f'{op} {n}' for op, n in sorted(by_operation.items()))}); "
            f"ideal ceil({duration:g}/{poll_interval:g}) + 2 = {ideal}"
        )
        section.data.setdefault("requests_flow", {})[vendor] = (len(mine), by_operation, ideal)


def main(argv: list[str]) -> int:
    role, vendor, out, poll_interval = argv[0], argv[1], Path(argv[2]), float(argv[3])
    if role == "operator":
        _operator_child(vendor, out, poll_interval)
    else:
        _sensor_child(vendor, out, poll_interval, argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
