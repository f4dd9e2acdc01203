"""Triggerer scale: 1,000 concurrent deferred waits in one process, on one asyncio loop.

The trigger process runs real trigger instances the way Airflow's triggerer does: one asyncio task per
trigger that iterates ``trigger.run()`` and records its first event, then ``cleanup()``. The parent starts
the executions (one emulator process per vendor, so that each vendor is its own host:port, as in
production, and no emulator CPU is counted) and streams their ids to the trigger process, which starts each
trigger as its id arrives. The parent samples the trigger process with psutil from outside.

Child process: ``python -m benchmarks.triggerer {ours|baseline} OUT_DIR POLL_INTERVAL`` reading
``vendor workflow execution_id`` lines on stdin.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import rawapi
from benchmarks.common import (
    CONN_IDS,
    EmulatorProcess,
    Figure,
    ProcessSampler,
    Section,
    child_env,
    connection_env,
    load_object,
    log,
    percentile,
    ratio,
    spawn,
    stop_process,
    wait_for_file,
)

VENDORS = ("datadog", "cloudflare", "sailpoint")
COUNT = 1000
POLL_INTERVAL = 10.0  # the operators' default
TRIGGERS = {
    "datadog": "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger",
    "cloudflare": "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger",
    "sailpoint": "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger",
}
# Airflow's triggerer checks its loop the same way ([triggerer] blocked_main_thread_warning_threshold = 0.2).
PROBE_SLEEP, BLOCKED_THRESHOLD = 0.1, 0.2
GOAL_CPU_CORES = 1.0
GOAL_RSS_MB = 150.0
GOAL_CONNECTIONS = 20


def durations(count: int, shortest: float, longest: float, poll_interval: float) -> list[float]:
    """Scripted durations spread evenly over [shortest, longest], none within 0.5 s of a poll multiple.

    Keeping each duration 0.5 s or more away from a multiple of the poll interval makes the ideal poll
    count, ceil(duration / poll_interval) + 1, insensitive to the few milliseconds between an execution's
    start and its trigger's first poll.
    """
    spread = []
    for index in range(count):
        value = shortest + (longest - shortest) * index / max(1, count - 1)
        offset = value % poll_interval
        if offset < 0.5:
            value += 0.5 - offset
        elif offset > poll_interval - 0.5:
            value -= offset - (poll_interval - 0.5)
        spread.append(round(value, 3))
    # Interleave, so that long and short executions start side by side and ends spread over the run.
    return [spread[(index * 7919) % count] for index in range(count)]


def ideal_requests(duration: float, lag: float, poll_interval: float) -> int:
    """One start, then checks at lag, lag + P, ... up to the first at or after the end: ceil((D - lag) / P) + 2.

    ``lag`` is the time from the start of the execution to the start of its waiter; with the durations above
    it stays under 0.5 s and the ideal is ceil(D / P) + 2.
    """
    return math.ceil(max(0.0, duration - max(0.0, lag)) / poll_interval) + 2


# -- the trigger process ---------------------------------------------------------------------------------


def _child(mode: str, out: Path, poll_interval: float) -> None:
    import asyncio
    from importlib import import_module

    # What a triggerer has imported before the first trigger arrives.
    import aiohttp  # noqa: F401
    from airflow.triggers.base import BaseTrigger  # noqa: F401

    if mode == "ours":
        classes = {v: load_object(path) for v, path in TRIGGERS.items()}
        for module in (
            "airflow_workflow_provider.hooks.datadog",
            "airflow_workflow_provider.hooks.cloudflare",
            "airflow_workflow_provider.hooks.sailpoint",
            "airflow_workflow_provider.core.http",
            "airflow.providers.common.compat.connection",
        ):
            import_module(module)
    else:
        from benchmarks.baseline_trigger import SessionPerPollTrigger

        base_urls = json.loads(os.environ["BENCH_EMULATOR_URLS"])

    def make(vendor: str, workflow: str, execution_id: str) -> Any:
        if mode == "ours":
            return classes[vendor](
                **{f"{vendor}_conn_id": CONN_IDS[vendor]},
                workflow=workflow,
                execution_id=execution_id,
                poll_interval=poll_interval,
            )
        return SessionPerPollTrigger(
            vendor=vendor,
            base_url=base_urls[vendor],
            workflow=workflow,
            execution_id=execution_id,
            poll_interval=poll_interval,
        )

    events: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    blocked: list[tuple[float, float]] = []  # (wall time, seconds) of the loop probe's overruns

    async def probe() -> None:
        """The triggerer's own watchdog: sleep 0.1 s, warn when the loop came back after more than 0.2 s."""
        while True:
            last = time.monotonic()
            await asyncio.sleep(PROBE_SLEEP)
            elapsed = time.monotonic() - last
            if elapsed > BLOCKED_THRESHOLD:
                blocked.append((time.time(), elapsed))

    async def follow(vendor: str, workflow: str, execution_id: str) -> None:
        # Built from its serialized form, as the triggerer gets it from the database.
        path, kwargs = make(vendor, workflow, execution_id).serialize()
        trigger = load_object(path)(**kwargs)
        started[execution_id] = time.time()
        try:
            async for event in trigger.run():
                if execution_id not in events:
                    events[execution_id] = {"at": time.time(), "status": event.payload.get("status")}
        except Exception as exc:  # recorded, never silently lost
            events[execution_id] = {"at": time.time(), "status": f"raised {type(exc).__name__}: {exc}"}
        finally:
            await trigger.cleanup()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def read_stdin() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read_stdin, name="ids", daemon=True).start()
        watchdog = asyncio.create_task(probe())
        (out / f"ready-{mode}").write_text("1")
        tasks = []
        while (line := await lines.get()) is not None:
            vendor, workflow, execution_id = line.split()
            tasks.append(asyncio.create_task(follow(vendor, workflow, execution_id)))
        await asyncio.gather(*tasks)
        watchdog.cancel()

    asyncio.run(main())
    masker = _masker_state()
    temporary = out / f"events-{mode}.tmp"
    temporary.write_text(json.dumps({"events": events, "started": started, "blocked": blocked, "masker": masker}))
    temporary.replace(out / f"events-{mode}.json")
    # Stay alive until the parent has taken its last sample and ends us (SIGTERM); bounded all the same.
    time.sleep(600)


def _masker_state() -> dict[str, float]:
    """How many patterns Airflow's secrets masker holds now, and what adding one more secret costs (median of 5)."""
    import secrets

    try:
        from airflow.sdk._shared.secrets_masker.secrets_masker import _secrets_masker
        from airflow.sdk.log import mask_secret
    except ImportError:  # another Airflow layout: the figure is only informative
        return {}
    patterns = len(_secrets_masker().patterns)
    costs = []
    for _ in range(5):
        started = time.perf_counter()
        mask_secret(secrets.token_urlsafe(32))
        costs.append(time.perf_counter() - started)
    return {"patterns": patterns, "next_add": sorted(costs)[len(costs) // 2]}


# -- the parent ------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    mode: str
    cpu_cores: float
    window: float
    rss_ready_mb: float
    rss_growth_mb: float
    connections: dict[str, int]  # vendor -> peak ESTABLISHED connections to that vendor's host
    distinct_connections: dict[str, int]  # vendor -> distinct client connections seen over the run
    time_wait: dict[str, int]  # vendor -> peak TIME_WAIT sockets towards that vendor's host
    delays: list[float]
    failures: list[str]
    requests: dict[str, dict[str, int]]  # vendor -> operation -> count, the harness's starts and token included
    ideal: dict[str, int]  # vendor -> sum of the ideal request counts of its executions
    late_starts: int  # executions whose trigger started too late for ceil(D / P) + 2 to be the ideal
    first_check_lags: list[float]  # per execution: seconds from building its trigger to its first check
    long_gaps: int  # consecutive checks of one execution 1.5 intervals or more apart (a skipped slot)
    check_deltas: dict[str, dict[int, int]]  # vendor -> (status checks - ideal checks) -> executions
    blocked: list[float]  # loop probe overruns over 0.2 s
    blocked_at_start: list[float]  # those while the triggers were starting (up to 2 s after the last one)
    start_window: float  # seconds from the first trigger's start to the last one's, + 2 s
    masker: dict[str, float]  # secrets-masker patterns at the end, and the cost of adding one more
    executions: dict[str, int]


def run_once(workdir: Path, mode: str, count: int, shortest: float, longest: float, poll_interval: float) -> RunResult:
    import requests

    emulators = {v: EmulatorProcess(workdir, f"scale-{mode}-{v}") for v in VENDORS}
    child = None
    sampler = None
    try:
        plan = []
        for index, duration in enumerate(durations(count, shortest, longest, poll_interval)):
            vendor = VENDORS[index % len(VENDORS)]
            workflow = f"bench-{index:04d}"
            emulators[vendor].script(vendor, workflow, duration=duration)
            plan.append((vendor, workflow, duration))
        env = child_env(
            workdir,
            {
                # This section measures the triggerer (CPU, memory, connections, delay) against emulators that
                # enforce no limit, with one workflow per wait (nothing to coalesce): the connections lift the
                # client's rate budget, or it would pace these 1,000 lone waits at the documented limits (the
                # section "Waits at the vendors' limits" measures those).
                **connection_env({v: e.base_url(v) for v, e in emulators.items()}, rate_limit_requests=1_000_000),
                "BENCH_EMULATOR_URLS": json.dumps({v: e.url for v, e in emulators.items()}),
            },
        )
        child = spawn(
            ["-m", "benchmarks.triggerer", mode, str(workdir), str(poll_interval)],
            env,
            workdir / f"trigger-{mode}.log",
            stdin=subprocess.PIPE,
        )
        wait_for_file(workdir / f"ready-{mode}", child, 180, f"trigger process ({mode})")
        ports = {e.port: v for v, e in emulators.items()}
        sampler = ProcessSampler(child.pid, list(ports))
        ready = sampler.sample()
        assert ready is not None
        sampler.start()

        sessions = {v: requests.Session() for v in VENDORS}
        auth = {v: rawapi.headers(v) for v in VENDORS}
        token = (
            sessions["sailpoint"]
            .post(emulators["sailpoint"].url + rawapi.TOKEN_PATH, data=rawapi.TOKEN_FORM, timeout=30)
            .json()["access_token"]
        )
        auth["sailpoint"] = rawapi.headers("sailpoint", token)
        ids: dict[str, tuple[str, float]] = {}
        assert child.stdin is not None
        for vendor, workflow, duration in plan:
            answer = sessions[vendor].post(
                emulators[vendor].url + rawapi.start_path(vendor, workflow),
                json=rawapi.start_body(vendor),
                headers=auth[vendor],
                timeout=30,
            )
            answer.raise_for_status()
            execution_id = rawapi.started_id(vendor, answer.json())
            ids[execution_id] = (vendor, duration)
            child.stdin.write(f"{vendor} {workflow} {execution_id}\n".encode())
            child.stdin.flush()
        child.stdin.close()
        for session in sessions.values():
            session.close()
        log(f"triggerer ({mode}): {count} executions started and handed over; waiting for every event")

        events_file = workdir / f"events-{mode}.json"
        wait_for_file(events_file, child, longest + 10 * poll_interval + 120, f"trigger process ({mode})")
        final = sampler.sample()
        sampler.stop()
        assert final is not None
        outcome = json.loads(events_file.read_text())
        samples = [ready, *sampler.samples, final]

        created: dict[str, float] = {}
        requests_by_vendor: dict[str, dict[str, int]] = {}
        checks: dict[str, list[float]] = {}  # execution id -> its status checks' arrival times (GET paths end with it)
        for vendor, emulator in emulators.items():
            for item in emulator.executions(vendor):
                created[item["id"]] = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).timestamp()
            counts: dict[str, int] = {}
            for record in emulator.requests_log():
                counts[record["operation"]] = counts.get(record["operation"], 0) + 1
                if record["operation"] == "get":
                    execution_id = record["path"].rsplit("/", 1)[1]
                    checks.setdefault(execution_id, []).append(record["at"])
            requests_by_vendor[vendor] = counts
        # A waiter's grid starts when its trigger is built (given no first_check_at, the trigger anchors it there).
        waiter_lag = {i: outcome["started"][i] - created[i] for i in ids}
        check_deltas: dict[str, dict[int, int]] = {v: {} for v in VENDORS}
        for execution_id, (vendor, duration) in ids.items():
            ideal_checks = ideal_requests(duration, waiter_lag[execution_id], poll_interval)
            delta = len(checks.get(execution_id, [])) - (ideal_checks - 1)
            check_deltas[vendor][delta] = check_deltas[vendor].get(delta, 0) + 1
        delays, failures = [], []
        for execution_id, (vendor, duration) in ids.items():
            event = outcome["events"].get(execution_id)
            if event is None or event["status"] != "success":
                failures.append(f"{vendor} {execution_id}: {event}")
                continue
            delays.append(event["at"] - (created[execution_id] + duration))

        def by_vendor(per_port: dict[int, int]) -> dict[str, int]:
            return {ports[port]: n for port, n in per_port.items()}

        peak: dict[str, int] = dict.fromkeys(VENDORS, 0)
        waits: dict[str, int] = dict.fromkeys(VENDORS, 0)
        distinct: dict[str, set[int]] = {v: set() for v in VENDORS}
        for sample in samples:
            for vendor, n in by_vendor(sample.established).items():
                peak[vendor] = max(peak[vendor], n)
            for vendor, n in by_vendor(sample.time_wait).items():
                waits[vendor] = max(waits[vendor], n)
            for port, local in sample.local_ports:
                distinct[ports[port]].add(local)
        return RunResult(
            mode=mode,
            cpu_cores=(final.cpu - ready.cpu) / (final.at - ready.at),
            window=final.at - ready.at,
            rss_ready_mb=ready.rss / 2**20,
            rss_growth_mb=(max(s.rss for s in samples) - ready.rss) / 2**20,
            connections=peak,
            distinct_connections={v: len(s) for v, s in distinct.items()},
            time_wait=waits,
            delays=delays,
            failures=failures,
            requests=requests_by_vendor,
            ideal={
                v: sum(ideal_requests(d, waiter_lag[i], poll_interval) for i, (x, d) in ids.items() if x == v)
                for v in VENDORS
            },
            late_starts=sum(
                1
                for i, (_, d) in ids.items()
                if ideal_requests(d, waiter_lag[i], poll_interval) != math.ceil(d / poll_interval) + 2
            ),
            first_check_lags=[min(checks[i]) - outcome["started"][i] for i in ids if checks.get(i)],
            long_gaps=sum(
                1
                for times in checks.values()
                for a, b in itertools.pairwise(sorted(times))
                if b - a >= 1.5 * poll_interval
            ),
            executions={v: sum(1 for x in ids.values() if x[0] == v) for v in VENDORS},
            check_deltas=check_deltas,
            blocked=[seconds for _, seconds in outcome["blocked"]],
            blocked_at_start=[
                seconds for at, seconds in outcome["blocked"] if at <= max(outcome["started"].values()) + 2.0
            ],
            start_window=max(outcome["started"].values()) - min(outcome["started"].values()) + 2.0,
            masker=outcome.get("masker", {}),
        )
    finally:
        if sampler is not None:
            sampler.stop()
        if child is not None:
            stop_process(child)
        for emulator in emulators.values():
            emulator.stop()


def run(
    workdir: Path,
    count: int = COUNT,
    shortest: float = 20.0,
    longest: float = 140.0,
    poll_interval: float = POLL_INTERVAL,
) -> tuple[Section, Section]:
    """Ours, then the baseline; returns the scale section and the requests-per-execution section."""
    started = time.monotonic()
    section = Section(
        title="Triggerer scale",
        method=(
            f"{count} concurrent deferred waits in one process on one asyncio loop, split round-robin over the "
            f"three vendors ({', '.join(f'{v} {len(range(i, count, 3))}' for i, v in enumerate(VENDORS))}), "
            f"poll interval {poll_interval:g} s, scripted durations spread evenly over {shortest:g}-{longest:g} s "
            "of real emulator time (not scaled), so executions end at spread times over the run. Each vendor "
            "has its own emulator process (its own host:port, as in production; its CPU is not counted). "
            "**Ours**: the provider's trigger classes, each built from its `serialize()` output, run as the "
            "triggerer runs them (`async for event in trigger.run()`, then `cleanup()`), connections from "
            "`AIRFLOW_CONN_*` variables. **Baseline**: a trivial trigger that opens a new `aiohttp.ClientSession` "
            "per poll (what the dbt Cloud provider's trigger does), same endpoints and interval. The harness "
            "starts each execution and hands its id to the trigger process at once. Sampled from outside with "
            "psutil every 0.5 s: CPU time over the window from the first trigger to the last event, RSS growth "
            "over the RSS after imports, ESTABLISHED TCP connections of the process per vendor host, and "
            "TIME_WAIT sockets on the machine towards each host (connection churn). Delay = time of the "
            "trigger's event - (emulator's created_at + scripted duration)."
        ),
    )
    requests_section = Section(
        title="Requests per execution",
        method=(
            "Every request each emulator logged (`GET /_emulator/requests`) per waited execution, against the "
            "ideal ceil(duration / poll_interval) + 2: one start, a status check at the start and one per poll "
            "interval until the first check at or after the end. The start is made by the harness (standing in "
            "for the operator), the rest by the triggers; the harness's one SailPoint token request is left "
            "out. A second row per vendor counts the whole operator-driven flow of the worker-slot benchmark "
            "(start, the check before deferring, the trigger's polls)."
        ),
    )
    results = {}
    try:
        for mode in ("ours", "baseline"):
            log(f"triggerer scale: {mode} run ({count} waits, {shortest:g}-{longest:g} s)")
            results[mode] = run_once(workdir, mode, count, shortest, longest, poll_interval)
    except Exception as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        log(f"triggerer scale: {section.error}")
        for path in sorted(workdir.glob("trigger-*.log")):
            print(path.read_text()[-3000:], file=sys.stderr)
        section.runtime = time.monotonic() - started
        return section, requests_section
    _scale_figures(section, results["ours"], results["baseline"], poll_interval)
    _request_figures(requests_section, results["ours"], results["baseline"])
    section.runtime = time.monotonic() - started
    return section, requests_section


def _scale_figures(section: Section, ours: RunResult, base: RunResult, poll_interval: float) -> None:
    title = section.title
    section.figures.append(
        Figure(
            title,
            "mean CPU of the trigger process",
            f"{ours.cpu_cores:.3f} cores",
            f"{base.cpu_cores:.3f} cores",
            ratio(ours.cpu_cores, base.cpu_cores),
            f"<= {GOAL_CPU_CORES:g} core",
            ours.cpu_cores <= GOAL_CPU_CORES,
            f"over {ours.window:.0f} s (baseline {base.window:.0f} s)",
        )
    )
    section.figures.append(
        Figure(
            title,
            "peak RSS growth",
            f"{ours.rss_growth_mb:.1f} MB",
            f"{base.rss_growth_mb:.1f} MB",
            ratio(ours.rss_growth_mb, base.rss_growth_mb),
            f"<= {GOAL_RSS_MB:g} MB",
            ours.rss_growth_mb <= GOAL_RSS_MB,
            f"over {ours.rss_ready_mb:.0f} MB after imports (baseline {base.rss_ready_mb:.0f} MB)",
        )
    )
    for vendor in VENDORS:
        section.figures.append(
            Figure(
                title,
                f"peak open TCP connections to the {vendor} host",
                str(ours.connections[vendor]),
                str(base.connections[vendor]),
                ratio(ours.connections[vendor], base.connections[vendor]),
                f"<= {GOAL_CONNECTIONS}",
                ours.connections[vendor] <= GOAL_CONNECTIONS,
                f"distinct connections over the run: {ours.distinct_connections[vendor]} (baseline: one per poll); "
                f"peak TIME_WAIT: {ours.time_wait[vendor]} (baseline {base.time_wait[vendor]})",
            )
        )
    section.figures.append(
        Figure(
            title,
            "event loop blocked > 0.2 s (the triggerer's own warning), count / longest",
            f"{len(ours.blocked)} / {max(ours.blocked, default=0.0):.2f} s",
            f"{len(base.blocked)} / {max(base.blocked, default=0.0):.2f} s",
            ratio(len(ours.blocked), len(base.blocked)),
            "info",
            None,
            f"a probe task sleeping {PROBE_SLEEP:g} s in the trigger loop, as Airflow's triggerer does; total "
            f"overrun {sum(ours.blocked):.1f} s (baseline {sum(base.blocked):.1f} s); while the triggers were "
            f"starting (first {ours.start_window:.0f} s): {len(ours.blocked_at_start)} stalls, "
            f"{sum(ours.blocked_at_start):.1f} s (baseline {len(base.blocked_at_start)}, "
            f"{sum(base.blocked_at_start):.1f} s)",
        )
    )
    goal = poll_interval + 1.0
    for name, q in (("p50", 50), ("p99", 99)):
        mine, theirs = percentile(ours.delays, q), percentile(base.delays, q)
        section.figures.append(
            Figure(
                title,
                f"{name} delay, execution end -> trigger event",
                f"{mine:.2f} s",
                f"{theirs:.2f} s",
                ratio(mine, theirs),
                f"<= {goal:g} s (poll interval + 1 s)" if q == 99 else "info",
                (mine <= goal) if q == 99 else None,
                f"max {max(ours.delays, default=float('nan')):.2f} s (baseline "
                f"{max(base.delays, default=float('nan')):.2f} s)"
                if q == 99
                else "",
            )
        )
    for result in (ours, base):
        if result.failures:
            section.details.append(
                f"{result.mode}: {len(result.failures)} waits without a success event, e.g. {result.failures[:3]}"
            )
    section.details.append(
        f"events: ours {len(ours.delays)}/{sum(ours.executions.values())} succeeded, baseline "
        f"{len(base.delays)}/{sum(base.executions.values())}"
    )


def _request_figures(section: Section, ours: RunResult, base: RunResult) -> None:
    for vendor in VENDORS:
        counts = _without_harness_token(vendor, ours.requests[vendor])
        total = sum(counts.values())
        # SailPoint: one OAuth token per process is the floor (shared by every trigger, fetched once).
        executions, ideal = ours.executions[vendor], ours.ideal[vendor] + (1 if vendor == "sailpoint" else 0)
        base_counts = _without_harness_token(vendor, base.requests[vendor])
        section.figures.append(
            Figure(
                section.title,
                f"{vendor}: requests per execution, {executions} trigger waits",
                f"{total / executions:.3f}",
                f"ideal {ideal / executions:.3f}",
                ratio(total, ideal, 4),
                "equal to ideal",
                total == ideal,
                f"{', '.join(f'{op} {n}' for op, n in sorted(counts.items()) if n)}; status checks vs ideal, "
                f"executions: {_deltas(ours.check_deltas[vendor])}; session-per-poll baseline "
                f"{sum(base_counts.values()) / executions:.3f} ({_deltas(base.check_deltas[vendor])})",
            )
        )
        section.data.setdefault("counts", {})[vendor] = counts
        section.data.setdefault("executions", {})[vendor] = executions
        section.data.setdefault("check_deltas", {})[vendor] = ours.check_deltas[vendor]
    section.data["blocked"] = ours.blocked
    section.data["baseline_blocked"] = base.blocked
    section.data["blocked_at_start"] = ours.blocked_at_start
    section.data["baseline_blocked_at_start"] = base.blocked_at_start
    section.data["start_window"] = ours.start_window
    section.data["masker"] = ours.masker
    if ours.masker:
        section.details.append(
            f"Airflow's secrets masker in the trigger process after the run: {ours.masker['patterns']:.0f} patterns; "
            f"adding one more secret then took {1000 * ours.masker['next_add']:.0f} ms (median of 5; it recompiles "
            "one regex of all patterns, on the event loop when called from a trigger)"
        )
    if ours.late_starts:
        section.details.append(
            f"{ours.late_starts} trigger(s) started 0.5 s or more after their execution; their ideal counts "
            "the checks a waiter starting that late needs, ceil((D - lag) / P) + 2"
        )
    lags = sorted(ours.first_check_lags)
    if lags:
        section.details.append(
            "first check after the trigger was built (as the emulator saw it arrive): "
            f"p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s, max {lags[-1]:.2f} s; "
            f"checks of one execution 1.5 intervals or more apart (a skipped slot): {ours.long_gaps} "
            f"(baseline {base.long_gaps})"
        )


def _deltas(deltas: dict[int, int]) -> str:
    names = {0: "as ideal", -1: "1 fewer", 1: "1 more"}
    return ", ".join(f"{n} {names.get(d, f'{d:+d}')}" for d, n in sorted(deltas.items(), key=lambda x: -x[1]))


def _without_harness_token(vendor: str, counts: dict[str, int]) -> dict[str, int]:
    counts = dict(counts)
    if vendor == "sailpoint":
        counts["token"] -= 1  # the harness fetched one to start the executions
    return counts


def main(argv: list[str]) -> int:
    _child(argv[0], Path(argv[1]), float(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
