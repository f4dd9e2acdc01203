"""Waits at the vendors' limits: thousands of concurrent deferred waits in one triggerer, each vendor's
documented rate limit enforced per credential, coalesced polling side by side with per-execution polling.

Each vendor has its own emulator process started with ``--documented-limits`` (SailPoint 100 per 10 s,
Cloudflare 1,200 per 5 minutes then blocked for 5 minutes, Datadog an assumed 1,000 per 60 s announced in
its headers). The executions are seeded through the emulator's control API (not counted against the limit:
the start is the operator's, one request per execution, and is added to the requests-per-execution figure
as such), spread over the three vendors and several workflows each, with durations spread over minutes.

**Coalesced**: the provider's trigger classes, rebuilt from ``serialize()`` and run as the triggerer runs
them; every wait of a workflow shares one poller, and the credential one rate budget. **Per-execution**: the
provider as it polled before, one GET per execution per interval through the hook, 429s retried by the
bounded retry policy, no shared budget (the connection's limit set far above the vendor's).

Child process: ``python -m benchmarks.limits MODE OUT_DIR POLL_INTERVAL CUTOFF TAG`` reading
``vendor workflow execution_id`` lines on stdin; it writes ``events-TAG.json`` when every wait has its event
or at the cutoff (waits without an event by then are counted as unfinished).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CONN_IDS,
    EmulatorProcess,
    Figure,
    ProcessSampler,
    Section,
    child_env,
    connection,
    load_object,
    log,
    percentile,
    spawn,
    stop_process,
    wait_for_file,
)

VENDORS = ("datadog", "cloudflare", "sailpoint")
WORKFLOWS_PER_VENDOR = 5
POLL_INTERVAL = 10.0
TRIGGERS = {
    "datadog": "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger",
    "cloudflare": "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger",
    "sailpoint": "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger",
}
HOOKS = {
    "datadog": "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook",
    "cloudflare": "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook",
    "sailpoint": "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook",
}
# What the limits allow per second to the provider's budget (90 % of the documented figure), for the bounds.
BUDGET_PER_SECOND = {"datadog": 0.9 * 1000 / 60, "cloudflare": 0.9 * 1200 / 300, "sailpoint": 0.9 * 100 / 10}
# Whether an ended execution costs a GET (the list item lacks the output): see docs/scale.md.
GET_PER_END = {"datadog": True, "cloudflare": True, "sailpoint": False}
GOAL_THROTTLED = 1.0  # percent
GOAL_THROTTLED_SHARED = 2.0
GOAL_REQUESTS = 3.0
GOAL_CPU = 1.0
GOAL_RSS_MB = 300.0
NOT_RUN = "not run"


@dataclass(frozen=True)
class Plan:
    count: int
    shortest: float
    longest: float
    poll_interval: float
    cutoff: float  # seconds the trigger process waits at most for every event


FULL = {
    1_000: Plan(1_000, 30.0, 150.0, POLL_INTERVAL, 150.0 + 180.0),
    10_000: Plan(10_000, 60.0, 240.0, POLL_INTERVAL, 240.0 + 180.0),
}
SMOKE = {30: Plan(30, 2.0, 6.0, 1.0, 40.0)}


# -- the trigger process ---------------------------------------------------------------------------------


class PerExecutionTrigger:
    """The provider's trigger as it polled before coalescing: one GET per execution per interval, not patient."""

    def __init__(self, vendor: str, workflow: str, execution_id: str, poll_interval: float) -> None:
        self.vendor, self.workflow, self.execution_id, self.poll_interval = (
            vendor,
            workflow,
            execution_id,
            poll_interval,
        )

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        import asyncio

        from airflow_workflow_provider.core.errors import WorkflowProviderError
        from airflow_workflow_provider.core.http import async_session_lease

        hook = load_object(HOOKS[self.vendor])(CONN_IDS[self.vendor])
        async with async_session_lease():
            try:
                while True:
                    execution = await hook.aget_execution(self.workflow, self.execution_id)
                    if execution.is_terminal:
                        yield {"status": "success" if execution.succeeded else "failure"}
                        return
                    await asyncio.sleep(self.poll_interval)
            except WorkflowProviderError as exc:
                yield {"status": "error", "message": str(exc)}


def _child(mode: str, out: Path, poll_interval: float, cutoff: float, tag: str) -> None:
    import asyncio

    import aiohttp  # noqa: F401  (what a triggerer has imported before the first trigger arrives)

    if os.environ.get("BENCH_POLLER_DEBUG"):  # round timings in the child's log, for iterating on the poller
        import logging

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
        poller_log = logging.getLogger("airflow_workflow_provider.triggers.poller")
        poller_log.addHandler(handler)
        poller_log.setLevel(logging.DEBUG)
        poller_log.propagate = False
    classes = {v: load_object(path) for v, path in TRIGGERS.items()}
    events: dict[str, dict[str, Any]] = {}

    async def follow(vendor: str, workflow: str, execution_id: str) -> None:
        if mode == "coalesced":
            made = classes[vendor](
                **{f"{vendor}_conn_id": CONN_IDS[vendor]},
                workflow=workflow,
                execution_id=execution_id,
                poll_interval=poll_interval,
            )
            path, kwargs = made.serialize()
            trigger = load_object(path)(**kwargs)
            stream = (event.payload async for event in trigger.run())
        else:
            stream = PerExecutionTrigger(vendor, workflow, execution_id, poll_interval).run()
        try:
            async for payload in stream:
                events.setdefault(execution_id, {"at": time.time(), "status": payload.get("status")})
                if payload.get("status") == "error":
                    events[execution_id]["message"] = str(payload.get("message"))[:300]
        except Exception as exc:  # recorded, never silently lost
            events[execution_id] = {"at": time.time(), "status": f"raised {type(exc).__name__}: {exc}"}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def read_stdin() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read_stdin, name="ids", daemon=True).start()
        (out / f"ready-{tag}").write_text("1")
        tasks = []
        while (line := await lines.get()) is not None:
            vendor, workflow, execution_id = line.split()
            tasks.append(asyncio.create_task(follow(vendor, workflow, execution_id)))
        _, pending = await asyncio.wait(tasks, timeout=cutoff)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    asyncio.run(main())
    temporary = out / f"events-{tag}.tmp"
    temporary.write_text(json.dumps(events))
    temporary.replace(out / f"events-{tag}.json")
    time.sleep(600)  # until the parent has taken its last sample and ends us


# -- the parent ------------------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    processes: int
    executions: dict[str, int]  # vendor -> executions
    outcomes: dict[str, int]  # success / failure / error / unfinished ...
    errors: list[str]
    requests: dict[str, dict[str, int]]  # vendor -> operation (or "throttled") -> count
    delays: dict[str, list[float]]  # vendor -> end -> event delays
    end_rate: dict[str, float]  # vendor -> executions ending per second, at the peak minute
    cpu_cores: float
    rss_growth_mb: float
    window: float


def _seed(emulators: dict[str, EmulatorProcess], plan: Plan) -> list[tuple[str, str, str, float]]:
    """Executions spread over vendors and workflows, durations interleaved over [shortest, longest]."""
    seeded = []
    per_vendor = {v: len(range(i, plan.count, len(VENDORS))) for i, v in enumerate(VENDORS)}
    for vendor, count in per_vendor.items():
        for w in range(WORKFLOWS_PER_VENDOR):
            n = len(range(w, count, WORKFLOWS_PER_VENDOR))
            if n == 0:
                continue
            durations = [
                plan.shortest + (plan.longest - plan.shortest) * ((k * 7919) % n) / max(1, n - 1) for k in range(n)
            ]
            workflow = f"limits-{vendor[:2]}-{w}"
            ids = emulators[vendor].control(
                "POST", "/executions", {"vendor": vendor, "workflow": workflow, "durations": durations}
            )["ids"]
            seeded += [(vendor, workflow, i, d) for i, d in zip(ids, durations, strict=True)]
    return seeded


def run_once(workdir: Path, mode: str, plan: Plan, processes: int = 1) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    emulators = {
        v: EmulatorProcess(workdir, f"limits-{mode}-{processes}-{v}", args=["--documented-limits"]) for v in VENDORS
    }
    children: list[subprocess.Popen[bytes]] = []
    samplers: list[ProcessSampler] = []
    try:
        extra = {} if mode == "coalesced" else {"rate_limit_requests": 1_000_000, "rate_limit_period": 1}
        env = child_env(
            workdir,
            {
                f"AIRFLOW_CONN_{CONN_IDS[v].upper()}": json.dumps(connection(v, e.base_url(v), **extra))
                for v, e in emulators.items()
            },
        )
        tags = [f"{mode}-{processes}-{n}" for n in range(processes)]
        for tag in tags:
            (workdir / f"events-{tag}.json").unlink(missing_ok=True)
            children.append(
                spawn(
                    ["-m", "benchmarks.limits", mode, str(workdir), str(plan.poll_interval), str(plan.cutoff), tag],
                    env,
                    workdir / f"limits-{tag}.log",
                    stdin=subprocess.PIPE,
                )
            )
        for tag, child in zip(tags, children, strict=True):
            wait_for_file(workdir / f"ready-{tag}", child, 180, f"trigger process {tag}")
        ports = [e.port for e in emulators.values()]
        samplers = [ProcessSampler(child.pid, ports) for child in children]
        ready = [s.sample() for s in samplers]
        for sampler in samplers:
            sampler.start()
        seeded = _seed(emulators, plan)
        for index, (vendor, workflow, execution_id, _) in enumerate(seeded):
            stdin = children[index % processes].stdin
            assert stdin is not None
            stdin.write(f"{vendor} {workflow} {execution_id}\n".encode())
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
        log(f"limits ({mode}, {processes} process(es)): {len(seeded)} waits handed over; waiting for the events")
        outcome: dict[str, dict[str, Any]] = {}
        for tag, child in zip(tags, children, strict=True):
            events_file = workdir / f"events-{tag}.json"
            wait_for_file(events_file, child, plan.cutoff + plan.longest + 300, f"trigger process {tag}")
            outcome.update(json.loads(events_file.read_text()))
        finals = [s.sample() for s in samplers]
        for sampler in samplers:
            sampler.stop()
        return _result(mode, processes, plan, emulators, seeded, outcome, samplers, ready, finals)
    finally:
        for sampler in samplers:
            sampler.stop()
        for child in children:
            stop_process(child)
        for emulator in emulators.values():
            emulator.stop()


def _result(
    mode: str,
    processes: int,
    plan: Plan,
    emulators: dict[str, EmulatorProcess],
    seeded: list[tuple[str, str, str, float]],
    outcome: dict[str, dict[str, Any]],
    samplers: list[ProcessSampler],
    ready: list[Any],
    finals: list[Any],
) -> Result:
    created: dict[str, float] = {}
    requests: dict[str, dict[str, int]] = {}
    for vendor, emulator in emulators.items():
        for item in emulator.executions(vendor):
            created[item["id"]] = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).timestamp()
        counts: dict[str, int] = {}
        for record in emulator.requests_log():
            key = "throttled" if record["status"] == 429 else record["operation"]
            counts[key] = counts.get(key, 0) + 1
        requests[vendor] = counts
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    delays: dict[str, list[float]] = {v: [] for v in VENDORS}
    ends: dict[str, list[float]] = {v: [] for v in VENDORS}
    for vendor, _, execution_id, duration in seeded:
        event = outcome.get(execution_id)
        status = "unfinished" if event is None else str(event["status"])
        outcomes[status] = outcomes.get(status, 0) + 1
        end = created[execution_id] + duration
        ends[vendor].append(end)
        if event is not None and status == "success":
            delays[vendor].append(event["at"] - end)
        elif event is not None and len(errors) < 3:
            errors.append(f"{vendor} {execution_id}: {status} {event.get('message', '')}")
    end_rate = {}
    for vendor, times in ends.items():
        times.sort()
        peak = max((sum(1 for t in times if s <= t < s + 60) for s in times), default=0) if times else 0
        end_rate[vendor] = peak / 60
    cpu = sum(f.cpu - r.cpu for f, r in zip(finals, ready, strict=True) if f and r)
    window = max((f.at - r.at for f, r in zip(finals, ready, strict=True) if f and r), default=1.0)
    rss = sum(
        (max(x.rss for x in [r, *s.samples, f]) - r.rss)
        for s, r, f in zip(samplers, ready, finals, strict=True)
        if r and f
    )
    return Result(
        mode=mode,
        processes=processes,
        executions={v: sum(1 for x in seeded if x[0] == v) for v in VENDORS},
        outcomes=outcomes,
        errors=errors,
        requests=requests,
        delays=delays,
        end_rate=end_rate,
        cpu_cores=cpu / window,
        rss_growth_mb=rss / 2**20,
        window=window,
    )


def _throttled_percent(result: Result) -> float:
    total = sum(sum(c.values()) for c in result.requests.values())
    throttled = sum(c.get("throttled", 0) for c in result.requests.values())
    return 100.0 * throttled / total if total else 0.0


def _requests_per_execution(result: Result) -> float:
    """Every request the emulators answered (the trigger process's), plus the start each execution needs."""
    total = sum(sum(c.values()) for c in result.requests.values())
    executions = sum(result.executions.values())
    return (total + executions) / executions


def _failed(result: Result) -> int:
    return sum(n for status, n in result.outcomes.items() if status not in ("success", "unfinished"))


def run(workdir: Path, smoke: bool = False, sizes: tuple[int, ...] = (), ours_only: bool = False) -> Section:
    """The section; ``sizes`` keeps only those wait counts, ``ours_only`` skips the baseline and the shared run
    (for iterating on the poller: the 1,000-wait coalesced run alone takes about three minutes)."""
    started = time.monotonic()
    plans = SMOKE if smoke else FULL
    if sizes:
        unknown = sorted(set(sizes) - set(plans))
        if unknown:
            raise ValueError(f"limits: sizes {unknown} are not planned; allowed: {sorted(plans)}")
        plans = {size: plan for size, plan in plans.items() if size in sizes}
    section = Section(
        title="Waits at the vendors' limits",
        method=(
            "Concurrent deferred waits in one triggerer process, split round-robin over the three vendors and "
            f"{WORKFLOWS_PER_VENDOR} workflows each, durations spread over minutes, poll interval "
            f"{next(iter(plans.values())).poll_interval:g} s; one emulator process per vendor enforcing the vendor's "
            "documented limit per credential (SailPoint 100 per 10 s, Cloudflare 1,200 per 5 minutes then blocked "
            "5 minutes, Datadog an assumed 1,000 per 60 s announced in X-RateLimit-*). Executions seeded through "
            "the emulator's control API; each one's start is counted as one request. **Coalesced**: the provider's "
            "triggers (one poller per workflow, one rate budget per credential). **Per-execution**: the same hooks "
            "polling one GET per execution per interval with the bounded retry policy and no shared budget (as "
            "before). Waits without an event at the cutoff are *unfinished* (none failed). Delay = event time - "
            "(created + duration). CPU and RSS sampled from outside every 0.5 s."
            + (" SMOKE RUN: small numbers, no goals." if smoke else "")
        ),
    )
    results: dict[tuple[int, str, int], Result] = {}
    try:
        for size, plan in plans.items():
            for mode in ("coalesced",) if ours_only else ("coalesced", "per-execution"):
                log(f"limits: {size} waits, {mode}")
                results[(size, mode, 1)] = run_once(workdir / f"{size}-{mode}", mode, plan)
        if not ours_only:
            shared_plan = next(iter(plans.values()))
            log(f"limits: {shared_plan.count} waits, two triggerer processes sharing each credential")
            results[(shared_plan.count, "coalesced", 2)] = run_once(workdir / "shared", "coalesced", shared_plan, 2)
    except Exception as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        log(f"limits: {section.error}")
        for path in sorted(workdir.glob("**/limits-*.log")):
            print(path.read_text()[-3000:], file=sys.stderr)
        section.runtime = time.monotonic() - started
        return section
    for size, plan in plans.items():
        _figures(section, size, plan, results[(size, "coalesced", 1)], results.get((size, "per-execution", 1)), smoke)
    if not ours_only:
        shared_plan = next(iter(plans.values()))
        _shared_figures(section, results[(shared_plan.count, "coalesced", 2)], smoke)
    section.runtime = time.monotonic() - started
    return section


def _goal(smoke: bool, text: str, met: bool) -> tuple[str, bool | None]:
    return ("info (smoke)", None) if smoke else (text, met)


def _figures(section: Section, size: int, plan: Plan, ours: Result, base: Result | None, smoke: bool) -> None:
    """``base`` is None when the baseline was skipped (``ours_only``)."""
    title = section.title
    add = section.figures.append
    goal, met = _goal(smoke, "0", _failed(ours) == 0)
    add(
        Figure(
            title,
            f"{size:,} waits: failed waits",
            str(_failed(ours)),
            str(_failed(base)) if base else NOT_RUN,
            "n/a",
            goal,
            met,
            f"ours {ours.outcomes}"
            + (f"; per-execution {base.outcomes}" if base else "")
            + (f"; e.g. {base.errors[0]}" if base and base.errors else "")
            + (f"; ours e.g. {ours.errors[0]}" if ours.errors else ""),
        )
    )
    goal, met = _goal(smoke, f"<= {GOAL_THROTTLED:g} %", _throttled_percent(ours) <= GOAL_THROTTLED)
    add(
        Figure(
            title,
            f"{size:,} waits: throttled answers (429)",
            f"{_throttled_percent(ours):.2f} %",
            f"{_throttled_percent(base):.2f} %" if base else NOT_RUN,
            "n/a",
            goal,
            met,
            "; ".join(f"{v}: {ours.requests[v]}" for v in VENDORS),
        )
    )
    rpe, base_rpe = _requests_per_execution(ours), _requests_per_execution(base) if base else 0.0
    ideal = math.ceil((plan.shortest + plan.longest) / 2 / plan.poll_interval) + 2
    goal, met = _goal(smoke or size < 10_000, f"<= {GOAL_REQUESTS:g} at 10,000", rpe <= GOAL_REQUESTS)
    add(
        Figure(
            title,
            f"{size:,} waits: requests per execution (start included)",
            f"{rpe:.3f}",
            f"{base_rpe:.3f}" if base else NOT_RUN,
            f"{rpe / base_rpe:.3g}x" if base_rpe else "n/a",
            goal,
            met,
            f"per-execution polling needs ceil(duration / interval) + 2, {ideal} for the mean duration, when "
            "nothing is throttled",
        )
    )
    for vendor in VENDORS:
        delays = ours.delays[vendor]
        p99 = percentile(delays, 99) if delays else float("nan")
        allowed = plan.poll_interval + 2.0
        ends_per_second = ours.end_rate[vendor]
        limit_bound = GET_PER_END[vendor] and ends_per_second > BUDGET_PER_SECOND[vendor]
        if limit_bound:
            note = (
                f"bound by the limit: every ended {vendor} execution costs a GET (its list item has no output) and "
                f"the peak minute ended {ends_per_second:.1f} a second against the {BUDGET_PER_SECOND[vendor]:.1f} "
                f"requests a second the limit allows; the backlog drains at that rate"
            )
            goal, met = _goal(smoke, "bounded by the limit (see note)", True)
        else:
            note = (
                f"peak {ends_per_second:.1f} ends a second; the limit allows {BUDGET_PER_SECOND[vendor]:.1f} requests"
            )
            goal, met = _goal(smoke, f"<= {allowed:g} s", p99 <= allowed)
        base_delays = base.delays[vendor] if base else []
        add(
            Figure(
                title,
                f"{size:,} waits: {vendor} p99 delay, end -> event",
                f"{p99:.1f} s",
                f"{percentile(base_delays, 99):.1f} s" if base_delays else "no successes" if base else NOT_RUN,
                "n/a",
                goal,
                met,
                f"{len(delays)} of {ours.executions[vendor]} events; p50 {percentile(delays, 50):.1f} s; {note}"
                if delays
                else note,
            )
        )
    goal, met = _goal(smoke, f"<= {GOAL_CPU:g} core", ours.cpu_cores <= GOAL_CPU)
    add(
        Figure(
            title,
            f"{size:,} waits: mean CPU of the trigger process",
            f"{ours.cpu_cores:.3f} cores",
            f"{base.cpu_cores:.3f} cores" if base else NOT_RUN,
            "n/a",
            goal,
            met,
            f"over {ours.window:.0f} s",
        )
    )
    goal, met = _goal(smoke, f"<= {GOAL_RSS_MB:g} MB", ours.rss_growth_mb <= GOAL_RSS_MB)
    add(
        Figure(
            title,
            f"{size:,} waits: peak RSS growth",
            f"{ours.rss_growth_mb:.1f} MB",
            f"{base.rss_growth_mb:.1f} MB" if base else NOT_RUN,
            "n/a",
            goal,
            met,
        )
    )


def _shared_figures(section: Section, shared: Result, smoke: bool) -> None:
    total = sum(shared.executions.values())
    goal, met = _goal(smoke, "0", _failed(shared) == 0)
    section.figures.append(
        Figure(
            section.title,
            f"two triggerers sharing each credential, {total:,} waits: failed waits",
            str(_failed(shared)),
            "n/a",
            "n/a",
            goal,
            met,
            f"{shared.outcomes}",
        )
    )
    goal, met = _goal(smoke, f"<= {GOAL_THROTTLED_SHARED:g} %", _throttled_percent(shared) <= GOAL_THROTTLED_SHARED)
    section.figures.append(
        Figure(
            section.title,
            f"two triggerers sharing each credential, {total:,} waits: throttled answers",
            f"{_throttled_percent(shared):.2f} %",
            "n/a",
            "n/a",
            goal,
            met,
            "; ".join(f"{v}: {shared.requests[v]}" for v in VENDORS),
        )
    )


def main(argv: list[str]) -> int:
    _child(argv[0], Path(argv[1]), float(argv[2]), float(argv[3]), argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
