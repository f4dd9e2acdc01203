"""DAG-parse cost: import time of the operator and sensor modules, after ``airflow.sdk``, with ``-X importtime``.

Each measurement is a fresh interpreter running ``import airflow.sdk`` and then the modules under test;
the figure is the sum of the self times of every module imported after ``airflow.sdk`` finished, i.e. what
those modules add to parsing a DAG file that already imports Airflow. Median of a few runs, the targets
alternating. The goal is judged with warm bytecode caches, as in a deployment (pip byte-compiles what it
installs): the children keep their caches under the work folder (``PYTHONPYCACHEPREFIX``), written by an
unmeasured first run even where the environment sets ``PYTHONDONTWRITEBYTECODE``. The same figure without
any bytecode cache (every module compiled from source) is shown for information. Optionally (if a throwaway
install of the vendor SDKs into a temporary folder finishes within a minute) the same measurement for the
vendor SDKs, appended to ``sys.path`` after the venv's own packages.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Figure, Section, child_env, log, ratio

OURS = tuple(
    f"airflow_workflow_provider.{kind}.{vendor}"
    for kind in ("operators", "sensors")
    for vendor in ("datadog", "cloudflare", "sailpoint")
)
HTTP = ("airflow.providers.http.operators.http",)
VENDOR_SDKS = ("datadog_api_client.v2.api.workflow_automation_api", "cloudflare", "sailpoint.workflows")
VENDOR_SDK_PACKAGES = ("datadog-api-client", "cloudflare", "sailpoint")
INSTALL_BUDGET = 60.0
GOAL_MS = 50.0
RUNS = 5  # other jobs on a 2-core machine make single import timings noisy: the median of 5


def after_sdk_ms(stderr: str) -> tuple[float, list[tuple[float, str]]]:
    """Milliseconds imported after the top-level ``airflow.sdk`` line, and the heaviest top-level imports."""
    lines = [line for line in stderr.splitlines() if line.startswith("import time:") and "|" in line]
    rows = []
    for line in lines:
        own, cumulative, name = line[len("import time:") :].split("|")
        if own.strip() == "self [us]":
            continue
        rows.append((int(own), int(cumulative), name.rstrip()))
    top = next((i for i, row in enumerate(rows) if row[2] == " airflow.sdk"), None)
    if top is None:
        raise RuntimeError("airflow.sdk was not imported at top level")
    after = rows[top + 1 :]
    heaviest = sorted(((c / 1000, n.strip()) for _, c, n in after if n.startswith(" ") and n[1] != " "), reverse=True)
    return sum(own for own, _, _ in after) / 1000, heaviest[:5]


def measure(
    python: str, modules: Sequence[str], env: dict[str, str], path_append: str | None = None
) -> tuple[float, list[tuple[float, str]]]:
    code = []
    if path_append:
        code += ["import sys", f"sys.path.append({path_append!r})"]
    code += ["import airflow.sdk", *(f"import {m}" for m in modules)]
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "\n".join(code)], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {', '.join(modules)} failed:\n{done.stderr[-2000:]}")
    return after_sdk_ms(done.stderr)


def bytecode_env(env: dict[str, str], prefix: Path, *, warm: bool) -> dict[str, str]:
    """``env`` with its own bytecode cache folder: written and read (warm), or empty and never written (cold).

    Warm needs ``PYTHONDONTWRITEBYTECODE`` gone: inherited from the shell, it kept the unmeasured first run
    from writing any cache, and an editable or uv install ships none, so every run compiled every module.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    env = {**env, "PYTHONPYCACHEPREFIX": str(prefix)}
    if warm:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _alternating(
    python: str, env: dict[str, str], runs: int
) -> tuple[list[tuple[float, list[tuple[float, str]]]], list[tuple[float, list[tuple[float, str]]]]]:
    ours, http = [], []
    for _ in range(runs):
        ours.append(measure(python, OURS, env))
        http.append(measure(python, HTTP, env))
    return ours, http


def _runs(measured: list[tuple[float, list[tuple[float, str]]]]) -> str:
    return ", ".join(f"{ms:.0f}" for ms, _ in measured)


def _install_vendor_sdks(target: Path) -> tuple[bool, str]:
    """A throwaway install of the vendor SDKs with uv, within INSTALL_BUDGET seconds."""
    candidates = [[sys.executable, "-m", "uv"], ["python3", "-m", "uv"]]
    if shutil.which("uv"):
        candidates.insert(0, [shutil.which("uv") or "uv"])
    uv = None
    for candidate in candidates:
        try:
            if subprocess.run([*candidate, "--version"], capture_output=True, timeout=20).returncode == 0:
                uv = candidate
                break
        except (OSError, subprocess.TimeoutExpired):
            continue
    if uv is None:
        return False, "uv not found"
    started = time.monotonic()
    try:
        done = subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                sys.executable,
                "--target",
                str(target),
                *VENDOR_SDK_PACKAGES,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_BUDGET,
        )
    except subprocess.TimeoutExpired:
        return False, f"the install did not finish within {INSTALL_BUDGET:g} s"
    if done.returncode != 0:
        return False, f"the install failed: {done.stderr.strip()[-300:]}"
    return True, f"installed in {time.monotonic() - started:.0f} s"


def run(workdir: Path, runs: int = RUNS, vendor_sdks: bool = True) -> Section:
    started = time.monotonic()
    section = Section(
        title="DAG-parse cost",
        method=(
            "`python -X importtime -c 'import airflow.sdk; import <modules>'` in a fresh interpreter; the figure "
            "is the sum of the self times of every module imported after `airflow.sdk` (what the modules add to "
            "a DAG file that already imports Airflow), median of "
            f"{runs} runs per target, targets alternating, after one unmeasured run that writes the bytecode "
            "caches (into a folder of the run's own, `PYTHONPYCACHEPREFIX`, whatever `PYTHONDONTWRITEBYTECODE` "
            "says), as a deployment has them (pip byte-compiles what it installs). The same without any bytecode "
            "cache (every module compiled from source on each parse) is shown for information. "
            f"**Ours**: {', '.join(f'`{m}`' for m in OURS)}, in one interpreter. **Baseline**: "
            f"`{HTTP[0]}` measured the same way."
        ),
    )
    env = bytecode_env(child_env(workdir), workdir / "pycache-warm", warm=True)
    cold_env = bytecode_env(child_env(workdir), workdir / "pycache-cold", warm=False)
    try:
        measure(sys.executable, OURS + HTTP, env)  # writes the bytecode caches
        ours, http = _alternating(sys.executable, env, runs)
        mine = statistics.median(ms for ms, _ in ours)
        theirs = statistics.median(ms for ms, _ in http)
        heaviest = ", ".join(f"{name} {ms:.1f} ms" for ms, name in ours[-1][1][:4])
        section.figures.append(
            Figure(
                section.title,
                "import time after airflow.sdk: our 3 operator + 3 sensor modules vs the http operator",
                f"{mine:.1f} ms",
                f"{theirs:.1f} ms",
                ratio(mine, theirs),
                f"<= {GOAL_MS:g} ms",
                mine <= GOAL_MS,
                f"min {min(ms for ms, _ in ours):.1f} ms vs {min(ms for ms, _ in http):.1f} ms; runs: {_runs(ours)} ms "
                f"vs {_runs(http)} ms; heaviest top-level imports (last run): {heaviest}",
            )
        )
        ours_cold, http_cold = _alternating(sys.executable, cold_env, runs)
        mine_cold = statistics.median(ms for ms, _ in ours_cold)
        theirs_cold = statistics.median(ms for ms, _ in http_cold)
        section.figures.append(
            Figure(
                section.title,
                "the same without bytecode caches (every module compiled from source)",
                f"{mine_cold:.1f} ms",
                f"{theirs_cold:.1f} ms",
                ratio(mine_cold, theirs_cold),
                "info",
                None,
                f"min {min(ms for ms, _ in ours_cold):.1f} ms vs {min(ms for ms, _ in http_cold):.1f} ms; runs: "
                f"{_runs(ours_cold)} ms vs {_runs(http_cold)} ms; what a deployment pays where the installer wrote "
                "no .pyc files and PYTHONDONTWRITEBYTECODE is set",
            )
        )
    except Exception as exc:
        section.error = f"{type(exc).__name__}: {exc}"
        log(f"parse cost: {section.error}")
        section.runtime = time.monotonic() - started
        return section
    if vendor_sdks:
        _vendor_sdk_figure(section, env, runs, mine)
    section.runtime = time.monotonic() - started
    return section


def _vendor_sdk_figure(section: Section, env: dict[str, str], runs: int, mine: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-vendor-sdks-") as folder:
        target = Path(folder) / "site"
        ok, how = _install_vendor_sdks(target)
        if not ok:
            section.details.append(f"Vendor-SDK comparison skipped: {how}.")
            return
        try:
            sdk = [measure(sys.executable, VENDOR_SDKS, env, str(target)) for _ in range(runs + 1)][1:]
        except Exception as exc:
            section.details.append(f"Vendor-SDK comparison skipped: {type(exc).__name__}: {exc}")
            return
        theirs = statistics.median(ms for ms, _ in sdk)
        section.figures.append(
            Figure(
                section.title,
                "for comparison: the vendor SDKs a DAG would import instead",
                f"{mine:.1f} ms (ours)",
                f"{theirs:.1f} ms ({', '.join(f'`{m}`' for m in VENDOR_SDKS)})",
                ratio(mine, theirs),
                "info",
                None,
                f"SDKs {how} into a temporary folder (deleted after), appended to sys.path after the venv's own "
                f"packages; runs: {_runs(sdk)} ms",
            )
        )
