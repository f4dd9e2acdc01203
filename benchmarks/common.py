"""What the benchmarks share: emulator processes, Airflow connections, child processes, psutil sampling, figures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from airflow_workflow_provider.testing.emulator import VENDORS, EmulatorCredentials, read_control_token

ROOT = Path(__file__).resolve().parents[1]
CONN_IDS = {vendor: f"bench_{vendor}" for vendor in VENDORS}
# The emulator writes its base URL here once listening; a few seconds are plenty on loopback.
STARTUP_TIMEOUT = 60.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- child processes -------------------------------------------------------------------------------------


def child_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child: its own AIRFLOW_HOME, no inherited connections, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    home = workdir / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def spawn(args: Sequence[str], env: Mapping[str, str], log_path: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``python -m <args>`` from the repo root; its output goes to ``log_path``."""
    handle = open(log_path, "ab")  # noqa: SIM115 - the child owns the handle for its lifetime
    try:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, **kwargs
        )
    finally:
        handle.close()


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """End one child we started, by its pid: SIGTERM, then SIGKILL if it does not go."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_for_file(path: Path, process: subprocess.Popen[Any] | None, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if text:
                return text
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before writing {path.name}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not write {path.name} within {timeout:.0f} s")


# -- emulator processes ----------------------------------------------------------------------------------


class EmulatorProcess:
    """The emulator in a process of its own (so its CPU is never counted), driven through its control API."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        module: str = "airflow_workflow_provider.testing.emulator",
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        url_file = workdir / f"{name}.url"
        url_file.unlink(missing_ok=True)
        env = child_env(workdir)
        self.process = spawn(
            ["-m", module, "--url-file", str(url_file), "--log-level", "WARNING", *args],
            env,
            workdir / f"{name}.log",
        )
        try:
            self.url = wait_for_file(url_file, self.process, STARTUP_TIMEOUT, f"emulator {name}").strip()
        except BaseException:
            stop_process(self.process)
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        self.session = requests.Session()
        self.control_token = read_control_token(url_file)
        self.session.headers["X-Emulator-Token"] = self.control_token

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def control(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        answer = self.session.request(method, f"{self.url}/_emulator{path}", json=body, timeout=timeout)
        if answer.status_code != 200:
            raise RuntimeError(f"emulator control {method} {path} answered {answer.status_code}: {answer.text}")
        return answer.json()

    def script(self, vendor: str, workflow: str, **script: Any) -> None:
        self.control("POST", "/scripts", {"vendor": vendor, "workflow": workflow, **script})

    def requests_log(self) -> list[dict[str, Any]]:
        return self.control("GET", "/requests")

    def executions(self, vendor: str) -> list[dict[str, Any]]:
        return self.session.get(f"{self.url}/_emulator/executions", params={"vendor": vendor}, timeout=120).json()

    def reset(self) -> None:
        self.control("POST", "/reset")

    def stop(self) -> None:
        self.session.close()
        stop_process(self.process)


def connection(vendor: str, base_url: str, **extra: Any) -> dict[str, Any]:
    """The Airflow connection a user would define for ``vendor``, pointed at an emulator."""
    creds = EmulatorCredentials()
    if vendor == "datadog":
        return {
            "conn_type": "datadog_workflows",
            "host": "datadoghq.com",
            "password": creds.datadog_api_key,
            "extra": {"application_key_secret": creds.datadog_application_key, "base_url": base_url, **extra},
        }
    if vendor == "cloudflare":
        return {
            "conn_type": "cloudflare_workflows",
            "password": creds.cloudflare_api_token,
            "extra": {"account_id": creds.cloudflare_account_id, "base_url": base_url, **extra},
        }
    return {
        "conn_type": "sailpoint_workflows",
        "host": "acme",
        "login": creds.sailpoint_client_id,
        "password": creds.sailpoint_client_secret,
        "extra": {"base_url": base_url, **extra},
    }


def connection_env(base_urls: Mapping[str, str], **extra: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_BENCH_<VENDOR>`` for each vendor, the way a deployment defines connections in the environment."""
    return {
        f"AIRFLOW_CONN_{CONN_IDS[vendor].upper()}": json.dumps(connection(vendor, url, **extra))
        for vendor, url in base_urls.items()
    }


# -- sampling a process from outside ---------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss: int
    cpu: float
    established: dict[int, int]  # remote port -> ESTABLISHED TCP connections of the process
    local_ports: set[tuple[int, int]]  # (remote port, local port) of those connections
    time_wait: dict[int, int]  # remote port -> TIME_WAIT sockets on the machine towards it


TCP_TIME_WAIT = "06"  # the state column of /proc/net/tcp


def time_wait_sockets(ports: Sequence[int]) -> dict[int, int]:
    """TIME_WAIT sockets on the machine towards each of ``ports``, read from /proc/net/tcp (Linux; else empty).

    Read directly rather than with ``psutil.net_connections()``, which walks every process's file descriptors
    and would load the machine the measured process runs on.
    """
    wanted = {f"{port:04X}": port for port in ports}
    counts: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if len(fields) > 3 and fields[3] == TCP_TIME_WAIT:
                    port = wanted.get(fields[2].rsplit(":", 1)[1])
                    if port is not None:
                        counts[port] = counts.get(port, 0) + 1
    return counts


@dataclass
class ProcessSampler:
    """Samples RSS, CPU time and TCP connections of one process every ``interval`` seconds, in a thread.

    Sampling from the parent keeps its cost out of the measured process. ``ports`` are the emulator ports
    whose connections are counted (one emulator per vendor host).
    """

    pid: int
    ports: Sequence[int]
    interval: float = 0.5
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> ProcessSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sample(self) -> Sample | None:
        try:
            with self._process.oneshot():
                times = self._process.cpu_times()
                rss = self._process.memory_info().rss
            connections = self._process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        established: dict[int, int] = {}
        local_ports: set[tuple[int, int]] = set()
        for conn in connections:
            if conn.raddr and conn.raddr.port in self.ports and conn.status == psutil.CONN_ESTABLISHED:
                established[conn.raddr.port] = established.get(conn.raddr.port, 0) + 1
                local_ports.add((conn.raddr.port, conn.laddr.port))
        return Sample(
            time.monotonic(), rss, times.user + times.system, established, local_ports, time_wait_sockets(self.ports)
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            if sample is None:
                return
            self.samples.append(sample)
            self._stop.wait(self.interval)


# -- figures ---------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure, its baseline from the same run, and its goal."""

    section: str
    name: str
    value: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: informational, no goal
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**MISSED**", None: "info"}[self.met]


@dataclass
class Section:
    title: str
    method: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    runtime: float = 0.0
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # what another section's figures need


def ratio(value: float, baseline: float, digits: int = 3) -> str:
    if baseline == 0:
        return "n/a"
    return f"{value / baseline:.{digits}g}x"


def percent(value: float, baseline: float) -> str:
    if baseline == 0:
        return "n/a"
    return f"{100.0 * value / baseline:.2f} %"


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def load_object(path: str) -> Any:
    """A class by its dotted path, imported where the benchmark child needs it (never at parse time)."""
    from importlib import import_module

    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)
