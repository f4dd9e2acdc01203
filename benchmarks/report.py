"""Renders ``reports/benchmarks.md``: every figure next to its baseline and its goal, then the method of each."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import Figure, Section


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(figures: list[Figure], with_section: bool) -> list[str]:
    head = ["figure", "ours", "baseline (same run)", "ratio", "goal", "verdict", "notes"]
    if with_section:
        head.insert(0, "benchmark")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for f in figures:
        row = [f.name, f.value, f.baseline, f.ratio, f.goal, f.verdict, f.note]
        if with_section:
            row.insert(0, f.section)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _analysis(sections: list[Section]) -> list[str]:
    """Causes of the misses this harness can attribute from what it measured, with the fix proposed."""
    by_title = {s.title: s for s in sections}
    notes: list[str] = []
    requests = by_title.get("Requests per execution")
    slot = by_title.get("Worker-slot cost")
    tokens = requests.data.get("counts", {}).get("sailpoint", {}).get("token", 0) if requests else 0
    flow = slot.data.get("requests_flow", {}) if slot else {}
    if requests and tokens > 1:
        waits = requests.data["executions"]["sailpoint"]
        notes.append(
            f"- **More than one SailPoint token for one trigger process** ({tokens} `POST /oauth/token` for {waits} "
            "trigger waits). Concurrent first calls of one process share one in-flight token request "
            "(`core.http.SingleFlight`) and the token is cached until shortly before it expires: more than one "
            "means tokens were refused (401) or expired during the run; see the emulator's log."
        )
    masker = requests.data.get("masker", {}) if requests else {}
    if requests and masker:
        notes.append(
            f"- **Secrets masker after the run**: {masker['patterns']:.0f} patterns; adding one more secret cost "
            f"{1000 * masker['next_add']:.1f} ms (median of 5). SailPoint tokens no longer reach Airflow's masker "
            "(the hook's redactor keeps them), so this count does not grow with token lifetimes."
        )
    deltas = requests.data.get("check_deltas", {}) if requests else {}
    fewer = {v: sum(n for d, n in per.items() if d < 0) for v, per in deltas.items()}
    if any(fewer.values()):
        notes.append(
            "- **Trigger checks drift later than the poll grid** ("
            + ", ".join(f"{v}: {n} executions with fewer checks than ideal" for v, n in fewer.items() if n)
            + "). Checks keep to a fixed grid from the moment the triggerer built the trigger, and the scripted "
            "ends keep 0.5 s away from that grid; an execution is seen one check early (one request fewer than "
            "the ideal) only when a check came more than 0.5 s late: a triggerer process or emulator held up by "
            "other load on the machine. Compare the session-per-poll baseline's count in the same run: where it "
            "shows as many, the machine, not the trigger, moved the checks (a quiet run shows none)."
        )
    extra_checks = [v for v, (_, by_operation, ideal) in flow.items() if by_operation.get("get", 0) > ideal - 1]
    if extra_checks:
        notes.append(
            f"- **One status check too many per deferred execution** ({', '.join(extra_checks)}: the operator-driven "
            "flow makes ceil(D/P) + 2 status checks, the ideal is ceil(D/P) + 1 plus the start). Cause: "
            "`ExecutionFollower._defer` checks once before deferring (right, it skips the trigger when the "
            "execution already ended), and the trigger's `_follow` checks again at once on its first iteration, "
            "so two checks land at the start of the wait. Proposed fix (`operators/base.py`, `triggers/base.py`): "
            "serialize a wall-clock `next_check_at = time.time() + poll_interval` with the trigger (wall clock, "
            "so it survives a move between triggerers; `None` for triggers built elsewhere, e.g. sensors "
            "deferring without a check) and sleep until then before the first poll."
        )
    listing = by_title.get("Listing")
    if listing and any("allowance used" in f.note for f in listing.figures):
        notes.append(
            "- **SailPoint listing: empty last page** (within the +1 allowance, so not a miss). SailPoint's list "
            "answer is a bare array; the hook stops on a short page, so when n is a multiple of 250 it asks for "
            "one empty page more. SailPoint's v3 lists also return `X-Total-Count` when asked with "
            "`count=true` (the emulator implements it): asking for it on the first page and stopping at "
            "offset + limit >= total would save that request, keeping the short-page rule as the fallback "
            "when the header is missing."
        )
    return notes


def render(sections: list[Section], context: dict[str, Any]) -> str:
    figures = [f for s in sections for f in s.figures]
    missed = [f for f in figures if f.met is False]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.run`) on "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}. Every figure is measured against the offline emulator on "
        "loopback and set next to a baseline measured in the same run, and to its goal.",
        "",
        f"- total runtime: **{context['runtime']:.0f} s** ({context['runtime'] / 60:.1f} min)",
        f"- machine: {context['cores']} cores, {context['platform']}; load average before "
        f"{context['load_before'][0]:.2f}, after {context['load_after'][0]:.2f} (1 min; other jobs on the machine "
        "disturb timings, most of all the import times)",
        f"- Python {context['python']}, Airflow {context['airflow']}, "
        f"apache-airflow-providers-http {context['http_provider']}",
    ]
    if context.get("smoke"):
        lines.append("- SMOKE RUN (`--smoke`): small numbers to show every section still runs; no goal is judged")
    if context.get("only"):
        lines.append(f"- partial run: only {', '.join(context['only'])}")
    lines += [
        f"- verdict: **{len(figures) - len(missed)} of {len(figures)} figures meet or inform, "
        f"{len(missed)} missed**" + (" (see *Missed goals*)" if missed else ""),
        "",
        "## Every figure",
        "",
        *_table(figures, with_section=True),
        "",
    ]
    errors = [s for s in sections if s.error]
    if errors:
        lines += ["## Benchmarks that could not run", ""]
        lines += [f"- **{s.title}**: {s.error}" for s in errors]
        lines.append("")
    if missed:
        lines += [
            "## Missed goals",
            "",
            "The causes measured, and the fixes proposed for what is left (the fixes for the misses of the first "
            "run, a token cache per hook, polls drifting off their grid and a second check right after deferring, "
            "are in the package).",
            "",
        ]
        lines += [f"- {f.section}: {f.name}: {f.value} vs goal {f.goal}" for f in missed]
        lines.append("")
    notes = _analysis(sections)
    if notes:
        lines += ["### Causes and proposed fixes", "", *notes, ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.method, ""]
        if section.runtime:
            lines += [f"Runtime: {section.runtime:.0f} s.", ""]
        if section.figures:
            lines += [*_table(section.figures, with_section=False), ""]
        if section.details:
            lines += [f"- {d}" for d in section.details]
            lines.append("")
        if section.error:
            lines += [f"Error: {section.error}", ""]
    return "\n".join(lines)
