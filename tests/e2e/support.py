"""A real Airflow deployment for the end-to-end tests: every Airflow component as a separate process.

A :class:`Topology` says what to run: :data:`LOCAL_SQLITE` is LocalExecutor on sqlite with one triggerer (as
``airflow standalone`` runs it); :data:`CELERY_POSTGRES` is the production shape, PostgreSQL (Debian's
``postgresql``, a throwaway cluster made with ``initdb`` and run with ``pg_ctl``), CeleryExecutor with Redis
(Debian's ``redis-server``) as the broker, two Celery workers and two triggerers.

:func:`create_deployment` makes a throwaway AIRFLOW_HOME with a copy of ``example_dags/`` and SimpleAuthManager
with a known admin password. :func:`boot` starts the database and the broker the topology needs, runs
``airflow db migrate``, starts the emulator of the three vendor APIs, starts ``airflow dag-processor``,
``scheduler``, the triggerer(s), the Celery worker(s) and ``api-server`` (everything listens on 127.0.0.1 only),
creates the three connections with ``airflow connections add`` and waits until the API reports every component
healthy, every Celery worker ready and every example DAG parsed. Every process runs in its own session;
:meth:`Deployment.stop` ends the Airflow components first, then Redis and PostgreSQL. Each component writes its
output to ``<home>/logs/components/``; the fixtures in conftest.py attach the tails of those logs to the report
of any failing test that uses the deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from tests.e2e.reaper import kill_sessions, session_members

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
ADMIN_USER = "admin"
# Processes the Airflow components need to be up until they are stopped themselves.
SERVICES = ("redis",)
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

# Deadlines (seconds). The whole e2e + browser run has to stay well under 15 minutes on 2 cores.
MIGRATE_TIMEOUT = 300
CLI_TIMEOUT = 120
HEALTHY_TIMEOUT = 180
PARSED_TIMEOUT = 180
STOP_GRACE = 20
API_TIMEOUT = 60
SERVICE_TIMEOUT = 60
WORKERS_READY_TIMEOUT = 120
POLL_EVERY = 1.0
TERMINAL_RUN_STATES = ("success", "failed")


@dataclass(frozen=True)
class Topology:
    """What a deployment runs: executor, metadata database, how many triggerers and Celery workers."""

    name: str
    executor: str = "LocalExecutor"
    database: str = "sqlite"  # "sqlite" or "postgres"
    triggerers: int = 1
    celery_workers: int = 0
    celery_concurrency: int = 4
    # Airflow settings (AIRFLOW__SECTION__KEY) on top of the common ones.
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def triggerer_names(self) -> list[str]:
        if self.triggerers == 1:
            return ["triggerer"]
        return [f"triggerer-{number}" for number in range(1, self.triggerers + 1)]

    @property
    def worker_names(self) -> list[str]:
        return [f"celery-worker-{number}" for number in range(1, self.celery_workers + 1)]

    @property
    def component_names(self) -> list[str]:
        return ["dag-processor", "scheduler", *self.triggerer_names, *self.worker_names, "api-server"]


LOCAL_SQLITE = Topology("local-sqlite")
CELERY_POSTGRES = Topology(
    "celery-postgres",
    executor="CeleryExecutor",
    database="postgres",
    triggerers=2,
    celery_workers=2,
    # Two task processes per worker: more only makes task starts fight for two cores.
    celery_concurrency=2,
    settings={
        # Failover in seconds rather than a minute: triggerers heartbeat every second, and one silent for 10 s
        # is dead, so that the other one takes its triggers over (Airflow's default: 5 s and 30 s).
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        # Small bites, so that both triggerers get a share of a burst of deferrals (the default is 50).
        "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "5",
        # A triggerer whose async loop is silent this long stops heartbeating so that its triggers move (30 s by
        # default). On two busy cores its first connection lookups were seen to stall it for close to 50 s: that
        # is slowness, not a deadlock, and must not move triggers between two live triggerers.
        "AIRFLOW__TRIGGERER__RUNNER_HEALTH_CHECK_THRESHOLD": "120",
        # A task whose worker died is noticed after 30 s without a heartbeat instead of 5 minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        # Publishing a task to Redis may take more than the default second on a loaded machine.
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
    },
)

# Workflows the example DAGs run, scripted so that the runs are deterministic: long enough that a deferrable
# task really defers before the execution ends, and the Cloudflare approval flow waits for its event.
EMULATOR_SCRIPTS: list[dict[str, Any]] = [
    {"vendor": "datadog", "workflow": "3f8e1a52-5b7c-4d39-9c1e-7a0d2b6e4f10", "duration": 6.0},
    {"vendor": "cloudflare", "workflow": "order-fulfilment", "duration": 6.0},
    {"vendor": "cloudflare", "workflow": "cache-rebuild", "duration": 6.0},
    {"vendor": "sailpoint", "workflow": "b393f4e2-4785-4d7f-ab27-3a6b8ded4c81", "duration": 6.0},
    {
        "vendor": "cloudflare",
        "workflow": "expense-approval",
        "duration": 4.0,
        "wait_for_event": "approval",
        "wait_after": 0.5,
    },
]

_DAG_ID = re.compile(r"""DAG\(\s*["']([a-z0-9_]+)["']""")


def example_dag_ids(dags_folder: Path = EXAMPLE_DAGS) -> list[str]:
    """The DAG ids declared in the example DAG files (what the deployment must parse)."""
    return sorted(m for path in sorted(dags_folder.glob("example_*.py")) for m in _DAG_ID.findall(path.read_text()))


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held together while picking, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def clean_environment() -> dict[str, str]:
    """The parent's environment without any Airflow setting (tests/conftest.py sets some for unit tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shown(args: tuple[str, ...] | list[str]) -> str:
    """A command line fit for logs: the value of ``--conn-json`` carries secrets and is left out."""
    return " ".join("<connection json>" if i and args[i - 1] == "--conn-json" else arg for i, arg in enumerate(args))


def stop_process_group(proc: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group of ``proc``, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    pgid = proc.pid  # started with start_new_session=True: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # Children (task runners, log servers, uvicorn workers) may outlive the leader: kill the whole group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _postgres_bin(program: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), key=lambda p: int(p.parts[-3]))
    if versions:
        return str(versions[-1])
    found = shutil.which(program)
    if found is None:
        raise AssertionError(f"{program} not found: install Debian's postgresql (bash scripts/ci-system-deps.sh)")
    return found


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1: ``initdb`` in a temporary directory, ``pg_ctl`` start and stop.

    PostgreSQL refuses to run as root, so as root its programs run as Debian's ``postgres`` user, in a directory
    of its own outside the (root-only) pytest temporary directory. Durability is traded for speed (no fsync):
    the cluster lives as long as one test session.
    """

    database = "airflow"
    user = "airflow"

    def __init__(self, port: int) -> None:
        self.port = port
        self.password = secrets.token_urlsafe(16)
        self.root: Path | None = None
        self.postmaster_pid: int | None = None

    @property
    def dsn(self) -> str:
        """libpq's connection URI (psql, psycopg2)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        """SQLAlchemy's, as Airflow's ``sql_alchemy_conn``."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "the cluster was not made yet"
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "the cluster was not made yet"
        return self.root / "postgres.log"

    def _run(self, program: str, *args: str, timeout: float = SERVICE_TIMEOUT) -> str:
        command = [_postgres_bin(program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Its own session: pg_ctl's server forks away, and a Ctrl-C of pytest must not reach it before stop().
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, start_new_session=True, env=clean_environment()
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{program} exited {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n"
                f"{result.stderr[-2000:]}\nserver log:\n{tail(self.log_path, 40)}"
            )
        return result.stdout

    def start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="awp-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        self._run(
            "initdb",
            "--pgdata", str(self.data_dir),
            "--username", self.user,
            "--pwfile", str(password_file),
            "--auth-local", "trust",
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.data_dir}",
                "-c max_connections=200",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ]
        )
        self._run("pg_ctl", "start", "--wait", "--pgdata", str(self.data_dir), "--log", str(self.log_path),
                  "--options", options)  # fmt: skip
        self.postmaster_pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        self._run("psql", "--host", str(self.data_dir), "--port", str(self.port), "--username", self.user,
                  "--dbname", "postgres", "--quiet", "--command", f"CREATE DATABASE {self.database}")  # fmt: skip

    def stop(self, keep_log: Path | None = None) -> None:
        """Fast shutdown (clients are disconnected), then the directory goes; its log is copied to ``keep_log``."""
        if self.root is None:
            return
        try:
            if self.postmaster_pid is not None and session_members({self.postmaster_pid}):
                self._run("pg_ctl", "stop", "--wait", "--pgdata", str(self.data_dir), "--mode", "fast")
        except (AssertionError, subprocess.TimeoutExpired):
            if self.postmaster_pid is not None:
                kill_sessions({self.postmaster_pid}, grace=5)
        finally:
            if keep_log is not None and self.log_path.exists():
                shutil.copyfile(self.log_path, keep_log)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    api_port: int
    password: str
    topology: Topology = LOCAL_SQLITE
    postgres: PostgresServer | None = None
    redis_port: int | None = None
    username: str = ADMIN_USER
    emulator_url: str = ""
    emulator_headers: dict[str, str] = field(default_factory=dict)  # the control API's per-start token
    processes: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    # Earlier processes of restarted components: stop() also ends what is left of their sessions.
    retired: list[subprocess.Popen[Any]] = field(default_factory=list)
    reaper: subprocess.Popen[Any] | None = None
    _token: str | None = None
    _stopped: bool = False

    # -- paths and URLs ----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs" / "components"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # -- processes ---------------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = CLI_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command with the deployment's environment; output also goes to cli.log."""
        started = time.monotonic()
        try:
            result = subprocess.run(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            self._log_cli(args, None, str(exc.stdout or ""), str(exc.stderr or ""), time.monotonic() - started)
            raise AssertionError(f"`airflow {shown(args)}` did not finish within {timeout} s") from exc
        self._log_cli(args, result.returncode, result.stdout, result.stderr, time.monotonic() - started)
        if check and result.returncode != 0:
            raise AssertionError(
                f"`airflow {shown(args)}` exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
                f"stderr:\n{result.stderr[-4000:]}"
            )
        return result

    def _log_cli(self, args: tuple[str, ...], code: int | None, out: str, err: str, seconds: float) -> None:
        # --conn-json carries the connection's secrets: keep them out of our own log, as Airflow must.
        with self.log_file("cli").open("a") as handle:
            handle.write(f"$ airflow {shown(args)}  -> exit {code} in {seconds:.1f} s\n{out}\n{err}\n")

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
        with self.log_file(name).open("ab") as log:
            proc = subprocess.Popen(
                command,
                env={**self.env, **(env or {})},
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills it with everything it started
            )
        self.processes[name] = proc
        self.commands[name] = command
        with self.sessions_file.open("a") as sessions:  # for the watchdog, should pytest be killed
            sessions.write(f"{proc.pid}\n")
        return proc

    def restart(
        self, name: str, env: dict[str, str] | None = None, sig: int = signal.SIGTERM, grace: float = STOP_GRACE
    ) -> subprocess.Popen[Any]:
        """Stop component ``name`` (``sig`` to its process group, then SIGKILL after ``grace``), start it again.

        ``env`` overrides settings for the new process only (e.g. ``AIRFLOW__SCHEDULER__...``).
        """
        old = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, sig)
        stop_process_group(old, grace=grace)
        self.retired.append(old)
        return self.start(name, self.commands[name], env=env)

    @property
    def sessions_file(self) -> Path:
        return self.home / "component-sessions"

    def start_reaper(self) -> None:
        """The watchdog that stops every component if this test process dies without calling stop()."""
        self.reaper = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("reaper.py")), str(os.getpid()), str(self.sessions_file)],
            env=clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in our process group: a Ctrl-C or group kill must not stop it first
        )

    def check_alive(self) -> None:
        dead = {name: proc.returncode for name, proc in self.processes.items() if proc.poll() is not None}
        if dead:
            raise AssertionError(f"component(s) exited early: {dead}\n{self.log_tails()}")

    def kill(self, name: str) -> None:
        """``kill -9`` component ``name`` with everything it started (its whole session), as a crash would."""
        proc = self.processes.pop(name)
        self.retired.append(proc)
        members = session_members({proc.pid})
        for pid in members:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while session_members({proc.pid}) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every process (idempotent): the Airflow components first, then the broker and the database."""
        if self._stopped:
            return
        self._stopped = True
        services = {name: proc for name, proc in self.processes.items() if name in SERVICES}
        components = [proc for name, proc in self.processes.items() if name not in SERVICES]
        self._stop_group(components)
        # Whatever left its process group but not its session (or outlived its leader) goes too.
        kill_sessions({proc.pid for proc in [*components, *self.retired]}, grace=5)
        self._stop_group(list(services.values()))
        kill_sessions({proc.pid for proc in services.values()}, grace=5)
        if self.postgres is not None:
            self.postgres.stop(keep_log=self.log_file("postgres"))
        if self.reaper is not None:
            self.reaper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.reaper.wait(timeout=10)

    @staticmethod
    def _stop_group(processes: list[subprocess.Popen[Any]]) -> None:
        """SIGTERM to all at once, then each gets what is left of one grace period before SIGKILL."""
        for proc in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in processes:
            stop_process_group(proc, grace=max(0.1, deadline - time.monotonic()))

    def log_tails(self, lines: int = 60) -> str:
        if not self.log_dir.is_dir():
            return "<no component logs>"
        paths = sorted(self.log_dir.iterdir())
        if self.postgres is not None and self.postgres.root is not None:
            paths.append(self.postgres.log_path)
        return "\n".join(f"----- {path} (last {lines} lines) -----\n{tail(path, lines)}" for path in paths)

    # -- REST API ----------------------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            answer = requests.post(
                f"{self.api_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            assert answer.status_code == 201, f"/auth/token answered {answer.status_code}: {answer.text[:500]}"
            self._token = answer.json()["access_token"]
        return self._token

    def api(
        self,
        method: str,
        path: str,
        expect: int | tuple[int, ...] | None = 200,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call /api/v2``path`` with the admin's JWT; check the status; return the decoded JSON (or None).

        Idempotent calls (GET, PATCH) that meet a busy deployment are asked again, a bounded number of times: a
        single api-server process also serves every task's execution API calls, and a burst of task starts on
        two busy cores can keep it from answering for half a minute; on sqlite, a write that waits too long for
        the scheduler's lock fails with 500 "Database error" (``database is locked``).
        """
        url = f"{self.api_url}/api/v2{path}"
        refresh, retries_left = False, 3 if method in ("GET", "PATCH") else 0
        while True:
            auth = {"Authorization": f"Bearer {self.token(refresh=refresh)}"}
            try:
                answer = requests.request(
                    method, url, headers={**(headers or {}), **auth}, timeout=API_TIMEOUT, **kwargs
                )
            except requests.Timeout:
                if retries_left <= 0:
                    raise
                retries_left -= 1
                continue
            if answer.status_code == 401 and not refresh:
                refresh = True
                continue
            if answer.status_code == 500 and "Database error" in answer.text and retries_left > 0:
                retries_left -= 1
                time.sleep(2)
                continue
            break
        if expect is not None:
            expected = (expect,) if isinstance(expect, int) else expect
            assert answer.status_code in expected, f"{method} {path} -> {answer.status_code}: {answer.text[:1000]}"
        return answer.json() if answer.content else None

    # -- runs, as a user starts and follows them ---------------------------------------------------
    def trigger(self, dag_id: str) -> str:
        """Start a run of ``dag_id`` through the REST API; return its run id."""
        run = self.api(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={
                "dag_run_id": f"e2e__{dag_id}__{uuid.uuid4().hex[:8]}",
                "logical_date": datetime.now(timezone.utc).isoformat(),
            },
        )
        return str(run["dag_run_id"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The events of the try's log as Airflow serves it (the task's lines and its triggers'), one a line."""
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        return "\n".join(str(line.get("event", "")) for line in answer["content"])

    def execution_id_stored(self, dag_id: str, run_id: str, task_id: str, execution_id: str) -> bool:
        """Whether the first try of a run operator has stored the execution id in its ``task_state_store``.

        Seen from its log: it logs the execution's first status only after the store write. A worker killed
        between the vendor's answer and that write leaves no id to reattach to (the window Airflow's
        ``ResumableJobMixin`` documents as one no operator can close), so crash tests kill only after it.
        """
        try:
            log = self.task_log(dag_id, run_id, task_id, 1)
        except (AssertionError, requests.RequestException):  # not served yet
            return False
        return f"execution {execution_id} is " in log

    def wait_for_run_end(self, dag_id: str, run_id: str, deadline: float) -> str:
        while True:
            self.check_alive()
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in TERMINAL_RUN_STATES:
                return str(state)
            if time.monotonic() > deadline:
                tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
                raise AssertionError(f"{dag_id} run {run_id} still {state} at the deadline; tasks: {tis}")
            time.sleep(POLL_EVERY)

    def wait_healthy(self, component: str, deadline: float) -> None:
        """Until /monitor/health reports ``component`` (scheduler, triggerer, ...) healthy."""
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(requests.RequestException, ValueError):
                last = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
                if (last.get(component) or {}).get("status") == "healthy":
                    return
            time.sleep(1)
        raise AssertionError(f"{component} not healthy in time; last health answer: {last}")

    def add_dags(self, file_name: str, code: str, dag_ids: list[str], timeout: float = 60) -> None:
        """Write a DAG file into the dags folder, parse it at once, wait until the API lists its DAGs, unpause them.

        ``airflow dags reserialize`` parses it now; the dag-processor would only notice a new file after its
        refresh interval.
        """
        (self.dags_folder / file_name).write_text(code)
        self.airflow("dags", "reserialize")
        deadline = time.monotonic() + timeout
        while True:
            dags = {dag["dag_id"] for dag in self.api("GET", "/dags", params={"limit": 200})["dags"]}
            if set(dag_ids) <= dags:
                break
            errors = self.api("GET", "/importErrors")
            assert not errors["total_entries"], json.dumps(errors, indent=1)[:4000]
            assert time.monotonic() < deadline, f"{file_name} was not parsed; DAGs: {sorted(dags)}"
            time.sleep(1)
        for dag_id in dag_ids:
            assert self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})["is_paused"] is False

    # -- the emulator's control API ----------------------------------------------------------------
    def script_workflow(self, vendor: str, workflow: str, **script: Any) -> None:
        """How the emulator's executions of ``workflow`` behave (duration, outcome, events to wait for)."""
        body = {"vendor": vendor, "workflow": workflow, **script}
        answer = requests.post(
            f"{self.emulator_url}/_emulator/scripts", json=body, headers=self.emulator_headers, timeout=10
        )
        assert answer.status_code == 200, f"scripting {body} failed: {answer.status_code} {answer.text}"

    def emulator_executions(self, vendor: str, workflow: str) -> list[dict[str, Any]]:
        answer = requests.get(
            f"{self.emulator_url}/_emulator/executions",
            params={"vendor": vendor, "workflow": workflow},
            headers=self.emulator_headers,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    def emulator_requests(self) -> list[dict[str, Any]]:
        """Every vendor request the emulator received, oldest first (vendor, operation, method, path, status)."""
        answer = requests.get(f"{self.emulator_url}/_emulator/requests", headers=self.emulator_headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return list(answer.json())


def _environment(
    home: Path,
    topology: Topology,
    ports: dict[str, int],
    database_url: str,
    broker_url: str | None,
) -> dict[str, str]:
    from cryptography.fernet import Fernet

    api_port = ports["api"]
    api_url = f"http://127.0.0.1:{api_port}"
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": topology.executor,
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        # Every process must sign and check the same tokens.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_logs"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_logs"]),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # The example DAGs poll every 30 s by default; the emulated workflows end within seconds.
        "EXAMPLE_WORKFLOW_POLL_SECONDS": "1",
    }
    if broker_url is not None:
        settings["AIRFLOW__CELERY__BROKER_URL"] = broker_url
        settings["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{database_url}"
        settings["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(topology.celery_concurrency)
    return {**clean_environment(), **settings, **topology.settings}


def _start_emulator(deployment: Deployment, deadline: float) -> None:
    from airflow_workflow_provider.testing.emulator import read_control_token

    url_file = deployment.home / "emulator-url"
    deployment.start(
        "emulator",
        [sys.executable, "-m", "airflow_workflow_provider.testing.emulator", "--url-file", str(url_file)],
    )
    while not url_file.exists():
        deployment.check_alive()
        assert time.monotonic() < deadline, f"the emulator did not start in time\n{deployment.log_tails()}"
        time.sleep(0.1)
    deployment.emulator_url = url_file.read_text().strip()
    deployment.emulator_headers = {"X-Emulator-Token": read_control_token(url_file)}
    dag_code = "\n".join(path.read_text() for path in deployment.dags_folder.glob("*.py"))
    for script in EMULATOR_SCRIPTS:
        if f'"{script["workflow"]}"' not in dag_code:  # only for workflows the example DAGs use
            continue
        answer = requests.post(
            f"{deployment.emulator_url}/_emulator/scripts", json=script, headers=deployment.emulator_headers, timeout=10
        )
        assert answer.status_code == 200, f"scripting {script} failed: {answer.status_code} {answer.text}"


def connection_definitions(emulator_url: str) -> dict[str, dict[str, Any]]:
    """The three connections a user would create, pointed at the emulator (its default credentials)."""
    from airflow_workflow_provider.testing.emulator import EmulatorCredentials

    creds = EmulatorCredentials()
    return {
        "datadog_workflows_default": {
            "conn_type": "datadog_workflows",
            "host": "datadoghq.com",
            "password": creds.datadog_api_key,
            "extra": {"application_key_secret": creds.datadog_application_key, "base_url": f"{emulator_url}/datadog"},
        },
        "cloudflare_workflows_default": {
            "conn_type": "cloudflare_workflows",
            "password": creds.cloudflare_api_token,
            "extra": {"account_id": creds.cloudflare_account_id, "base_url": f"{emulator_url}/cloudflare"},
        },
        "sailpoint_workflows_default": {
            "conn_type": "sailpoint_workflows",
            "host": "acme",
            "login": creds.sailpoint_client_id,
            "password": creds.sailpoint_client_secret,
            "extra": {"base_url": f"{emulator_url}/sailpoint"},
        },
    }


def _wait_healthy(deployment: Deployment, deadline: float) -> dict[str, Any]:
    last: Any = None
    while time.monotonic() < deadline:
        deployment.check_alive()
        with contextlib.suppress(requests.RequestException, ValueError):
            answer = requests.get(f"{deployment.api_url}/api/v2/monitor/health", timeout=5)
            last = answer.json() if answer.ok else f"{answer.status_code} {answer.text[:300]}"
            if answer.ok and all(
                (last.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ):
                return last
        time.sleep(1)
    raise AssertionError(f"Airflow not healthy in time; last health answer: {last}\n{deployment.log_tails()}")


def _wait_parsed(deployment: Deployment, expected: list[str], deadline: float) -> None:
    seen: set[str] = set()
    errors: Any = None
    while time.monotonic() < deadline:
        deployment.check_alive()
        dags = deployment.api("GET", "/dags", params={"limit": 100})
        seen = {dag["dag_id"] for dag in dags["dags"]}
        errors = deployment.api("GET", "/importErrors")
        if errors["total_entries"]:
            raise AssertionError(f"import errors in the example DAGs: {json.dumps(errors, indent=1)[:4000]}")
        if set(expected) <= seen:
            return
        time.sleep(2)
    raise AssertionError(
        f"example DAGs not parsed in time; missing {sorted(set(expected) - seen)}; import errors: {errors}\n"
        f"{deployment.log_tails()}"
    )


def create_deployment(home: Path, topology: Topology = LOCAL_SQLITE) -> Deployment:
    """The deployment's home, settings and files; nothing runs yet."""
    ports = dict(zip(("api", "worker_logs", "trigger_logs", "postgres", "redis"), free_ports(5), strict=True))
    password = secrets.token_urlsafe(12)
    postgres = PostgresServer(ports["postgres"]) if topology.database == "postgres" else None
    database_url = postgres.url if postgres is not None else f"sqlite:///{home / 'airflow.db'}"
    uses_celery = topology.executor == "CeleryExecutor"
    broker_url = f"redis://127.0.0.1:{ports['redis']}/0" if uses_celery else None
    deployment = Deployment(
        home=home,
        env=_environment(home, topology, ports, database_url, broker_url),
        api_port=ports["api"],
        password=password,
        topology=topology,
        postgres=postgres,
        redis_port=ports["redis"] if uses_celery else None,
    )
    deployment.log_dir.mkdir(parents=True)
    shutil.copytree(EXAMPLE_DAGS, deployment.dags_folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # SimpleAuthManager keeps the passwords in this file and only generates those that are missing.
    (home / "simple_auth_manager_passwords.json").write_text(json.dumps({ADMIN_USER: password}))
    return deployment


def _start_redis(deployment: Deployment, deadline: float) -> None:
    """Redis as Celery's broker: loopback only, nothing written to disk, in the foreground like a component."""
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise AssertionError("redis-server not found: install Debian's redis-server (bash scripts/ci-system-deps.sh)")
    assert deployment.redis_port is not None
    deployment.start(
        "redis",
        [binary, "--bind", "127.0.0.1", "--port", str(deployment.redis_port), "--save", "", "--appendonly", "no",
         "--dir", str(deployment.home), "--protected-mode", "yes", "--daemonize", "no"],
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=deployment.redis_port, socket_timeout=2)
    while True:
        deployment.check_alive()
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                return
        assert time.monotonic() < deadline, f"Redis did not answer in time\n{deployment.log_tails()}"
        time.sleep(0.2)


def component_command(deployment: Deployment, name: str) -> list[str]:
    """The command line of Airflow component ``name`` (``triggerer-2``, ``celery-worker-1``, ``api-server``...)."""
    airflow = [sys.executable, "-m", "airflow"]
    if name == "api-server":
        return [*airflow, name, "--host", "127.0.0.1", "--port", str(deployment.api_port), "--workers", "1"]
    if name == "dag-processor":
        return [*airflow, name]
    if name == "scheduler" or name in deployment.topology.triggerer_names:
        # Their log servers would listen on every interface; the api-server reads the log files directly.
        return [*airflow, name.split("-")[0], "--skip-serve-logs"]
    if name in deployment.topology.worker_names:
        return [
            *airflow, "celery", "worker",
            "--celery-hostname", f"{name}@127.0.0.1",
            "--concurrency", str(deployment.topology.celery_concurrency),
            "--pid", str(deployment.home / f"{name}.pid"),  # the default pid file would be shared by both
            "--skip-serve-logs",
            "--without-mingle", "--without-gossip",  # nothing to learn from each other; saves start-up time
        ]  # fmt: skip
    raise ValueError(f"unknown component {name!r}")


def _wait_workers_ready(deployment: Deployment, deadline: float) -> None:
    """Celery prints ``<hostname> ready.`` once a worker consumes from the broker."""
    waiting = list(deployment.topology.worker_names)
    while waiting:
        deployment.check_alive()
        waiting = [name for name in waiting if f"{name}@127.0.0.1 ready." not in deployment.log_file(name).read_text()]
        assert time.monotonic() < deadline, f"Celery workers not ready in time: {waiting}\n{deployment.log_tails()}"
        time.sleep(0.5)


def boot(deployment: Deployment) -> None:
    """Start the database and broker, migrate, start the emulator and the components, add the connections, wait.

    The caller stops the deployment, also when this fails half-way.
    """
    started = time.monotonic()
    deployment.start_reaper()
    if deployment.postgres is not None:
        deployment.postgres.start()
        assert deployment.postgres.postmaster_pid is not None
        with deployment.sessions_file.open("a") as sessions:  # the server made a session of its own
            sessions.write(f"{deployment.postgres.postmaster_pid}\n")
    if deployment.redis_port is not None:
        _start_redis(deployment, deadline=time.monotonic() + SERVICE_TIMEOUT)
    deployment.airflow("db", "migrate", timeout=MIGRATE_TIMEOUT)
    _start_emulator(deployment, deadline=time.monotonic() + 30)
    for name in deployment.topology.component_names:
        deployment.start(name, component_command(deployment, name))
    # While the components boot: the connections, as a user adds them (no task runs before a trigger).
    with ThreadPoolExecutor(max_workers=3) as pool:
        added = [
            pool.submit(deployment.airflow, "connections", "add", conn_id, "--conn-json", json.dumps(conn))
            for conn_id, conn in connection_definitions(deployment.emulator_url).items()
        ]
        for future in added:
            future.result()
    _wait_healthy(deployment, deadline=time.monotonic() + HEALTHY_TIMEOUT)
    _wait_workers_ready(deployment, deadline=time.monotonic() + WORKERS_READY_TIMEOUT)
    _wait_parsed(deployment, example_dag_ids(deployment.dags_folder), deadline=time.monotonic() + PARSED_TIMEOUT)
    print(
        f"\nAirflow deployment {deployment.topology.name} ready in {time.monotonic() - started:.0f} s at"
        f" {deployment.api_url} (home {deployment.home})"
    )
