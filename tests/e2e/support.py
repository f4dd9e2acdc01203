"""A real Airflow deployment for the end-to-end tests: the four Airflow components as separate processes.

:func:`create_deployment` makes a throwaway AIRFLOW_HOME with a copy of ``example_dags/``, LocalExecutor on
sqlite (as ``airflow standalone`` runs it) and SimpleAuthManager with a known admin password. :func:`boot` runs
``airflow db migrate``, starts the emulator of the three vendor APIs, starts ``airflow dag-processor``,
``scheduler``, ``triggerer`` and ``api-server`` (listening on 127.0.0.1 only), creates the three connections with
``airflow connections add`` and waits until the API reports every component healthy and every example DAG
parsed. Every process runs in its own process group; :meth:`Deployment.stop` ends them all (SIGTERM to each
group, then SIGKILL). Each component writes its output to ``<home>/logs/components/``; the fixture in
conftest.py attaches the tails of those logs to the report of any failing test that uses the deployment.
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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.reaper import kill_sessions

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
ADMIN_USER = "admin"
COMPONENTS = ("dag-processor", "scheduler", "triggerer", "api-server")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

# Deadlines (seconds). The whole e2e + browser run has to stay well under 15 minutes on 2 cores.
MIGRATE_TIMEOUT = 300
CLI_TIMEOUT = 120
HEALTHY_TIMEOUT = 180
PARSED_TIMEOUT = 180
STOP_GRACE = 20

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


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    api_port: int
    password: str
    username: str = ADMIN_USER
    emulator_url: str = ""
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

    def stop(self) -> None:
        """Stop every process (idempotent). All groups get SIGTERM at once, then each gets its grace."""
        if self._stopped:
            return
        self._stopped = True
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.processes.values():
            stop_process_group(proc, grace=max(0.1, deadline - time.monotonic()))
        # Whatever left its process group but not its session (or outlived its leader) goes too.
        kill_sessions({proc.pid for proc in [*self.processes.values(), *self.retired]}, grace=5)
        if self.reaper is not None:
            self.reaper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.reaper.wait(timeout=10)

    def log_tails(self, lines: int = 60) -> str:
        if not self.log_dir.is_dir():
            return "<no component logs>"
        parts = [
            f"----- {path} (last {lines} lines) -----\n{tail(path, lines)}" for path in sorted(self.log_dir.iterdir())
        ]
        return "\n".join(parts)

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
        """Call /api/v2``path`` with the admin's JWT; check the status; return the decoded JSON (or None)."""
        url = f"{self.api_url}/api/v2{path}"
        for attempt in range(2):
            auth = {"Authorization": f"Bearer {self.token(refresh=attempt > 0)}"}
            answer = requests.request(method, url, headers={**(headers or {}), **auth}, timeout=30, **kwargs)
            if answer.status_code != 401:
                break
        if expect is not None:
            expected = (expect,) if isinstance(expect, int) else expect
            assert answer.status_code in expected, f"{method} {path} -> {answer.status_code}: {answer.text[:1000]}"
        return answer.json() if answer.content else None


def _environment(home: Path, api_port: int, log_port: int, trigger_log_port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    api_url = f"http://127.0.0.1:{api_port}"
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
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
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log_port),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # The example DAGs poll every 30 s by default; the emulated workflows end within seconds.
        "EXAMPLE_WORKFLOW_POLL_SECONDS": "1",
    }
    return {**clean_environment(), **settings}


def _start_emulator(deployment: Deployment, deadline: float) -> None:
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
    dag_code = "\n".join(path.read_text() for path in deployment.dags_folder.glob("*.py"))
    for script in EMULATOR_SCRIPTS:
        if f'"{script["workflow"]}"' not in dag_code:  # only for workflows the example DAGs use
            continue
        answer = requests.post(f"{deployment.emulator_url}/_emulator/scripts", json=script, timeout=10)
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


def create_deployment(home: Path) -> Deployment:
    """The deployment's home, settings and files; nothing runs yet."""
    api_port, log_port, trigger_log_port = free_ports(3)
    password = secrets.token_urlsafe(12)
    deployment = Deployment(
        home=home, env=_environment(home, api_port, log_port, trigger_log_port), api_port=api_port, password=password
    )
    deployment.log_dir.mkdir(parents=True)
    shutil.copytree(EXAMPLE_DAGS, deployment.dags_folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # SimpleAuthManager keeps the passwords in this file and only generates those that are missing.
    (home / "simple_auth_manager_passwords.json").write_text(json.dumps({ADMIN_USER: password}))
    return deployment


def boot(deployment: Deployment) -> None:
    """Migrate, start the emulator and the components, add the connections, wait until all is ready.

    The caller stops the deployment, also when this fails half-way.
    """
    started = time.monotonic()
    deployment.start_reaper()
    deployment.airflow("db", "migrate", timeout=MIGRATE_TIMEOUT)
    _start_emulator(deployment, deadline=time.monotonic() + 30)
    for name in COMPONENTS:
        command = [sys.executable, "-m", "airflow", name]
        if name == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(deployment.api_port), "--workers", "1"]
        elif name in ("scheduler", "triggerer"):
            # Their log servers would listen on every interface; the api-server reads the log files directly.
            command.append("--skip-serve-logs")
        deployment.start(name, command)
    # While the components boot: the connections, as a user adds them (no task runs before a trigger).
    with ThreadPoolExecutor(max_workers=3) as pool:
        added = [
            pool.submit(deployment.airflow, "connections", "add", conn_id, "--conn-json", json.dumps(conn))
            for conn_id, conn in connection_definitions(deployment.emulator_url).items()
        ]
        for future in added:
            future.result()
    _wait_healthy(deployment, deadline=time.monotonic() + HEALTHY_TIMEOUT)
    _wait_parsed(deployment, example_dag_ids(deployment.dags_folder), deadline=time.monotonic() + PARSED_TIMEOUT)
    print(
        f"\nAirflow deployment ready in {time.monotonic() - started:.0f} s at {deployment.api_url}"
        f" (home {deployment.home})"
    )
