"""Reliability suite set-up: collects the fault-matrix cells and the security table, written to reports/ at the end."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPORT = Path("reports") / "fault-matrix.md"


def _masker() -> Any:
    """Airflow's process-wide secrets masker (its module moved between Airflow 3 releases), or None."""
    for module in ("airflow.sdk._shared.secrets_masker", "airflow.sdk.execution_time.secrets_masker"):
        try:
            return importlib.import_module(module)._secrets_masker()
        except (ImportError, AttributeError):
            continue
    return None


# Imported now, at collection, not inside a test: importing Airflow configures logging, which drops caplog's handler.
_MASKER = _masker()


@pytest.fixture(autouse=True)
def _forget_the_masks_a_test_added() -> Iterator[None]:
    """Give the process-wide secrets masker back the patterns it had before the test.

    Every SailPoint hook registers its own OAuth token, the masker never forgets one and recompiles
    one regex of all of them on each addition; the rate-limit tests make hundreds of hooks, which
    would slow every later test down. Hooks register their secrets again whenever they are built.
    """
    if _MASKER is None or not hasattr(_MASKER, "patterns"):
        yield
        return
    patterns, replacer = set(_MASKER.patterns), _MASKER.replacer
    yield
    _MASKER.patterns, _MASKER.replacer = patterns, replacer


@dataclass(frozen=True)
class Cell:
    """The observed outcome of one (vendor, operation, fault) cell."""

    vendor: str
    operation: str
    fault: str
    outcome: str  # "ok after N attempts" or "error: <ExceptionClass>"
    attempts: int
    executions_started: int
    note: str = ""


@dataclass
class FaultMatrix:
    cells: list[Cell] = field(default_factory=list)
    expected_cells: int | None = None  # set by the test module; a partial run does not overwrite the report

    @property
    def complete(self) -> bool:
        return self.expected_cells is not None and len(self.cells) >= self.expected_cells

    def record(self, cell: Cell) -> None:
        self.cells.append(cell)

    def render(self) -> str:
        lines = [
            "# Fault matrix",
            "",
            "Each fault injected once (times=1) into one operation of one vendor, against the offline emulator.",
            "Outcome: `ok after N attempts` (N requests of that operation reached the emulator) or the typed",
            "error raised; *executions* is how many executions the cell's operation created.",
            "",
        ]
        lines += self._pivot()
        lines += [
            "",
            "## Every cell",
            "",
            "| vendor | operation | fault | outcome | attempts | executions started | note |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in self._sorted():
            lines.append(
                f"| {c.vendor} | {c.operation} | {c.fault} | {c.outcome} | {c.attempts} | "
                f"{c.executions_started} | {c.note} |"
            )
        return "\n".join(lines) + "\n"

    def _sorted(self) -> list[Cell]:
        faults = list(dict.fromkeys(c.fault for c in self.cells))
        return sorted(self.cells, key=lambda c: (c.vendor, c.operation, faults.index(c.fault)))

    def _pivot(self) -> list[str]:
        faults = list(dict.fromkeys(c.fault for c in self.cells))
        rows = list(dict.fromkeys((c.vendor, c.operation) for c in self._sorted()))
        by_key = {(c.vendor, c.operation, c.fault): c for c in self.cells}
        lines = [
            "| vendor | operation | " + " | ".join(faults) + " |",
            "| --- | --- | " + " | ".join("---" for _ in faults) + " |",
        ]
        for vendor, operation in rows:
            entries = []
            for fault in faults:
                cell = by_key.get((vendor, operation, fault))
                entries.append("" if cell is None else _short(cell))
            lines.append(f"| {vendor} | {operation} | " + " | ".join(entries) + " |")
        return lines


def _short(cell: Cell) -> str:
    text = f"ok x{cell.attempts}" if cell.outcome.startswith("ok") else cell.outcome.removeprefix("error: ")
    return text + (f" ({cell.executions_started} exec)" if cell.operation.startswith("start") else "")


_MATRIX_KEY = pytest.StashKey[FaultMatrix]()


def _matrix(config: pytest.Config) -> FaultMatrix:
    if _MATRIX_KEY not in config.stash:
        config.stash[_MATRIX_KEY] = FaultMatrix()
    return config.stash[_MATRIX_KEY]


@pytest.fixture(scope="session")
def fault_matrix(pytestconfig: pytest.Config) -> Iterator[FaultMatrix]:
    """Where the fault-matrix cells record what they observed; written to reports/ when the session ends."""
    matrix = _matrix(pytestconfig)
    yield matrix
    if matrix.complete:
        path = pytestconfig.rootpath / REPORT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(matrix.render())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    table = config.stash.get(_SECURITY_KEY, None)
    if table is not None and table.attempts:
        where = f"also in {SECURITY_REPORT}" if table.complete else f"a partial run: {SECURITY_REPORT} left as it was"
        terminalreporter.write_sep("=", f"security table ({len(table.attempts)} attempts, {where})")
        terminalreporter.write_line(table.render())
    matrix = config.stash.get(_MATRIX_KEY, None)
    if matrix is None or not matrix.cells:
        return
    where = f"also in {REPORT}" if matrix.complete else f"a partial run: {REPORT} left as it was"
    terminalreporter.write_sep("=", f"fault matrix ({len(matrix.cells)} cells, {where})")
    terminalreporter.write_line(matrix.render())


# -- the security table ---------------------------------------------------------------------------

SECURITY_REPORT = Path("reports") / "security.md"


@dataclass(frozen=True)
class Attack:
    """One attack of issue 14, tried against the provider: what it is and what stops it now."""

    item: int
    name: str
    attack: str
    defence: str


@dataclass(frozen=True)
class Attempt:
    """One try of an attack (a vendor, a stack, a variant) and what was observed."""

    attack: Attack
    variant: str
    outcome: str


@dataclass
class SecurityTable:
    attempts: list[Attempt] = field(default_factory=list)
    attacks: dict[str, Attack] = field(default_factory=dict)  # set by the test module

    @property
    def complete(self) -> bool:
        """Every attack tried at least once: a partial run does not overwrite the report."""
        tried = {attempt.attack.name for attempt in self.attempts}
        return bool(self.attacks) and tried >= set(self.attacks)

    def record(self, name: str, variant: str, outcome: str) -> None:
        self.attempts.append(Attempt(self.attacks[name], variant, outcome.replace("|", "/").replace("\n", " ")))

    def render(self) -> str:
        lines = [
            "# Security table",
            "",
            "Each attack of issue 14 tried against the provider (the emulator, or small hostile servers and an",
            "attacker's stand-in host on 127.0.0.1), and what happened: every attack now fails.",
            "Written by `tests/reliability/test_security.py` (one row per attack; the variants tried are listed).",
            "",
            "| # | attack | what stops it | variants tried | observed |",
            "| --- | --- | --- | --- | --- |",
        ]
        by_attack: dict[str, list[Attempt]] = {}
        for attempt in self.attempts:
            by_attack.setdefault(attempt.attack.name, []).append(attempt)
        for attack in sorted(self.attacks.values(), key=lambda a: (a.item, a.name)):
            tried = by_attack.get(attack.name, [])
            variants = ", ".join(sorted({a.variant for a in tried})) or "not run"
            outcomes = "; ".join(sorted({a.outcome for a in tried})) or "not run"
            lines.append(f"| {attack.item} | {attack.attack} | {attack.defence} | {variants} | {outcomes} |")
        return "\n".join(lines) + "\n"


_SECURITY_KEY = pytest.StashKey[SecurityTable]()


@pytest.fixture(scope="session")
def security_table(pytestconfig: pytest.Config) -> Iterator[SecurityTable]:
    """Where the security tests record what each attack did; written to reports/security.md at the end."""
    if _SECURITY_KEY not in pytestconfig.stash:
        pytestconfig.stash[_SECURITY_KEY] = SecurityTable()
    table = pytestconfig.stash[_SECURITY_KEY]
    yield table
    if table.complete:
        path = pytestconfig.rootpath / SECURITY_REPORT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table.render())
