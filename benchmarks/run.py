"""``python -m benchmarks.run``: every benchmark, then ``reports/benchmarks.md``.

Order, to stay well under 10 minutes on 2 cores without one benchmark disturbing another's figure:
the worker-slot benchmark starts its tasks (cold ``execute()`` timings, one at a time) and leaves them
waiting 60 s; the DAG-parse and listing benchmarks run during that wait (the waiting processes poll once
every 10 s); then the two triggerer-scale runs (ours, then the baseline) run alone.

Then the waits at the vendors' limits (1,000 and 10,000 waits, coalesced and per-execution, and two triggerer
processes sharing each credential), alone as well.

``--only NAME[,NAME]`` (slot, parse, listing, scale, limits) runs a subset; ``--report PATH`` writes elsewhere;
``--smoke`` runs every section with small numbers in seconds, goals not judged (CI runs it so that the
benchmarks cannot rot unnoticed). ``--limits-waits 1000`` and ``--limits-ours-only`` narrow the limits section
while iterating on the poller (the 1,000 coalesced waits alone: about three minutes).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks import limits, listing, parse_cost, triggerer, worker_slot
from benchmarks.common import ROOT, Figure, Section, log, workdir
from benchmarks.report import render

BENCHMARKS = ("slot", "parse", "listing", "scale", "limits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--report", default=str(ROOT / "reports" / "benchmarks.md"))
    parser.add_argument("--smoke", action="store_true", help="small numbers, seconds, no goals judged")
    parser.add_argument(
        "--limits-waits",
        default="",
        help="limits section: comma-separated wait counts to run (1000, 10000; smoke: 30), default all",
    )
    parser.add_argument(
        "--limits-ours-only",
        action="store_true",
        help="limits section: only the coalesced runs (no per-execution baseline, no two-triggerer run)",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = chosen - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started = time.monotonic()
    load_before = os.getloadavg()
    sections: list[Section] = []
    with workdir("awp-bench-") as work:
        slot_args = {"duration": 3.0, "poll_interval": 1.0} if smoke else {}
        running = worker_slot.start(work / "slot", **slot_args) if "slot" in chosen else None
        try:
            if "parse" in chosen:
                log("DAG-parse cost")
                sections.append(parse_cost.run(work / "parse", **({"runs": 1, "vendor_sdks": False} if smoke else {})))
            if "listing" in chosen:
                log("listing")
                sections.append(listing.run(work / "listing", **({"sizes": (100, 200)} if smoke else {})))
        except BaseException:
            if running is not None:
                running.abort()
            raise
        slot = None
        if running is not None:
            log("worker-slot: waiting for the 60 s executions to end")
            slot = running.finish()
            sections.insert(0, slot)
        if "scale" in chosen:
            scale_args = {"count": 30, "shortest": 2.0, "longest": 5.0, "poll_interval": 1.0} if smoke else {}
            scale, requests = triggerer.run(work / "scale", **scale_args)
            sections.insert(1 if slot else 0, scale)
            if slot is not None:
                _operator_flow_rows(requests, slot)
            sections.insert(2 if slot else 1, requests)
        elif slot is not None and "requests_flow" in slot.data:
            requests = Section("Requests per execution", "The operator-driven flow of the worker-slot run.")
            _operator_flow_rows(requests, slot)
            sections.insert(1, requests)
        if "limits" in chosen:
            sizes = tuple(int(n.strip().replace("_", "")) for n in args.limits_waits.split(",") if n.strip())
            sections.append(limits.run(work / "limits", smoke=smoke, sizes=sizes, ours_only=args.limits_ours_only))
    runtime = time.monotonic() - started
    context = {
        "runtime": runtime,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "airflow": importlib.metadata.version("apache-airflow"),
        "http_provider": importlib.metadata.version("apache-airflow-providers-http"),
        "platform": platform.platform(),
        "only": sorted(chosen) if chosen != set(BENCHMARKS) else None,
        "smoke": smoke,
    }
    if smoke:  # numbers too small to judge: only a section that could not run fails the smoke
        for section in sections:
            for figure in section.figures:
                figure.met = None
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(sections, context))
    missed = [f for s in sections for f in s.figures if f.met is False]
    errors = [s.title for s in sections if s.error]
    log(f"done in {runtime:.0f} s; {report} written; {len(missed)} goal(s) missed; {len(errors)} benchmark error(s)")
    for figure in missed:
        log(f"  missed: {figure.section}: {figure.name}: {figure.value} vs goal {figure.goal}")
    # Missed goals are findings, reported; only a benchmark that could not run fails the command.
    return 1 if errors else 0


def _operator_flow_rows(requests: Section, slot: Section) -> None:
    for vendor, (total, by_operation, ideal) in slot.data.get("requests_flow", {}).items():
        # SailPoint: a task runs in a process of its own, and one OAuth token per process is the floor.
        ideal += 1 if vendor == "sailpoint" else 0
        requests.figures.append(
            Figure(
                requests.title,
                f"{vendor}: requests for one operator-driven execution (worker-slot run)",
                str(total),
                f"ideal {ideal}",
                f"{total / ideal:.4g}x",
                "equal to ideal",
                total == ideal,
                ", ".join(f"{op} {n}" for op, n in sorted(by_operation.items())),
            )
        )


if __name__ == "__main__":
    sys.exit(main())
