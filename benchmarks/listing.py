"""Listing: requests and peak memory of ``hook.list_executions`` over 1,000 and 10,000 executions per vendor.

The emulator runs in its own process, seeded in-process with finished executions. The listing runs in a
child process: a warm-up listing first (imports, connection lookup), then for each size a fresh hook (as an
operator would make) consumes the lazy iterator while ``tracemalloc`` traces it. Requests are read from the
emulator's log around each listing.

Child process: ``python -m benchmarks.listing OUT_FILE``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import CONN_IDS, EmulatorProcess, Figure, Section, child_env, connection_env, log, ratio, spawn

VENDORS = ("datadog", "cloudflare", "sailpoint")
SIZES = (1_000, 10_000)
WARM_UP = 300
# SailPoint's list answer is a bare JSON array; a total comes only in X-Total-Count when count=true is asked.
NO_TOTAL_IN_ANSWER = ("sailpoint",)
FLAT_RATIO = 1.25  # "flat in n": the peak for 10x the executions at most 25 % above the smaller one
HOOKS = {
    "datadog": "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook",
    "cloudflare": "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook",
    "sailpoint": "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook",
}


def workflow(n: int) -> str:
    return f"list-{n}"


# -- the child -------------------------------------------------------------------------------------------


def _child(out: Path, emulator_url: str, sizes: list[int]) -> None:
    import tracemalloc
    from importlib import import_module

    import requests

    from airflow_workflow_provider.hooks import cloudflare, datadog, sailpoint

    page_max = {
        "datadog": datadog.MAX_PAGE_SIZE,
        "cloudflare": cloudflare.MAX_PER_PAGE,
        "sailpoint": sailpoint.MAX_LIMIT,
    }
    control = requests.Session()
    control.headers["X-Emulator-Token"] = os.environ["EMULATOR_CONTROL_TOKEN"]

    def log_length() -> int:
        return len(control.get(f"{emulator_url}/_emulator/requests", timeout=120).json())

    def new_records(since: int) -> list[dict[str, Any]]:
        return control.get(f"{emulator_url}/_emulator/requests", timeout=120).json()[since:]

    results: dict[str, Any] = {"page_max": page_max, "runs": []}
    for vendor in VENDORS:
        module, _, name = HOOKS[vendor].rpartition(".")
        hook_class = getattr(import_module(module), name)
        warm = hook_class(CONN_IDS[vendor])
        assert sum(1 for _ in warm.list_executions(workflow(WARM_UP))) == WARM_UP
        warm.close()
        for n in sizes:
            since = log_length()
            tracemalloc.start()
            tracemalloc.reset_peak()
            started = time.perf_counter()
            hook = hook_class(CONN_IDS[vendor])
            seen = sum(1 for _ in hook.list_executions(workflow(n)))
            hook.close()
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            by_operation: dict[str, int] = {}
            for record in new_records(since):
                if record["vendor"] == vendor:
                    by_operation[record["operation"]] = by_operation.get(record["operation"], 0) + 1
            results["runs"].append(
                {"vendor": vendor, "n": n, "seen": seen, "peak": peak, "seconds": seconds, "requests": by_operation}
            )
    out.write_text(json.dumps(results))


# -- the parent ------------------------------------------------------------------------------------------


def ideal_pages(n: int, page_max: int) -> int:
    return math.ceil(n / page_max)


def run(workdir: Path, sizes: tuple[int, ...] = SIZES) -> Section:
    started = time.monotonic()
    section = Section(
        title="Listing",
        method=(
            f"`hook.list_executions(workflow)` consumed to the end over {' and '.join(f'{n:,}' for n in sizes)} "
            "finished executions per vendor (seeded in the emulator process with `create_executions`), at the "
            "vendor's largest page (the hook's default). Requests: list requests the emulator logged during the "
            "listing vs ceil(n / page max); token requests are shown apart. Memory: `tracemalloc` peak while a "
            "fresh hook lists (after a warm-up listing in the same process), for the smaller and the larger n: "
            f"flat means the larger n peaks at most {FLAT_RATIO:g}x the smaller."
        ),
    )
    seeds = [f"--seed={v}:{workflow(n)}:{n}" for v in VENDORS for n in (WARM_UP, *sizes)]
    emulator = EmulatorProcess(workdir, "listing", module="benchmarks.seeded_emulator", args=seeds)
    try:
        out = workdir / "listing.json"
        env = child_env(workdir, connection_env({v: emulator.base_url(v) for v in VENDORS}))
        env["EMULATOR_CONTROL_TOKEN"] = emulator.control_token
        child = spawn(
            ["-m", "benchmarks.listing", str(out), emulator.url, ",".join(map(str, sizes))],
            env,
            workdir / "listing-child.log",
        )
        if child.wait(timeout=600) != 0:
            raise RuntimeError(f"listing child failed:\n{(workdir / 'listing-child.log').read_text()[-3000:]}")
        results = json.loads(out.read_text())
    except Exception as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        log(f"listing: {section.error}")
        section.runtime = time.monotonic() - started
        return section
    finally:
        emulator.stop()
    _figures(section, results, sizes)
    section.runtime = time.monotonic() - started
    return section


def _figures(section: Section, results: dict[str, Any], sizes: tuple[int, ...]) -> None:
    runs = {(r["vendor"], r["n"]): r for r in results["runs"]}
    small, large = min(sizes), max(sizes)
    for vendor in VENDORS:
        page_max = results["page_max"][vendor]
        for n in sizes:
            run = runs[(vendor, n)]
            pages = run["requests"].get("list", 0)
            ideal = ideal_pages(n, page_max)
            others = {op: c for op, c in run["requests"].items() if op != "list"}
            # An answer without a total count can only end on a short page: when n is a multiple of the page
            # size, the last full page is followed by an empty one. That +1 is allowed, and reported.
            empty_last_page = pages == ideal + 1 and n % page_max == 0 and vendor in NO_TOTAL_IN_ANSWER
            note = f"{run['seen']:,} executions seen in {run['seconds']:.1f} s"
            if others:
                note += "; also " + ", ".join(f"{c} {op}" for op, c in sorted(others.items()))
            if empty_last_page:
                note += (
                    "; +1 allowance used: an empty last page, as the answer carries no total count (n is a "
                    "multiple of the page size and the hook stops on a short page)"
                )
            section.figures.append(
                Figure(
                    section.title,
                    f"{vendor}: list requests for n={n:,} (page max {page_max})",
                    str(pages),
                    f"ceil(n / {page_max}) = {ideal}",
                    ratio(pages, ideal, 4),
                    "= ceil(n / page max), +1 without a total count",
                    (pages == ideal or empty_last_page) and run["seen"] == n,
                    note,
                )
            )
        peak_small, peak_large = runs[(vendor, small)]["peak"], runs[(vendor, large)]["peak"]
        section.figures.append(
            Figure(
                section.title,
                f"{vendor}: tracemalloc peak, n={large:,} vs n={small:,}",
                f"{peak_large / 1024:.0f} KiB",
                f"{peak_small / 1024:.0f} KiB",
                ratio(peak_large, peak_small),
                f"flat (<= {FLAT_RATIO:g}x)",
                peak_large <= FLAT_RATIO * peak_small,
            )
        )


def main(argv: list[str]) -> int:
    _child(Path(argv[0]), argv[1], [int(n) for n in argv[2].split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
