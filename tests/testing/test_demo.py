"""The demo runs in a throwaway Airflow of its own and says "every outcome as expected" only when that is true.

Issue 14 item 7: run with a real deployment's settings in the environment (its AIRFLOW_HOME, database URL,
Fernet key, connections), the demo must leave that deployment exactly as it found it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEMO = [sys.executable, "-m", "airflow_workflow_provider.testing.demo"]
REAL_CONNECTION = {
    "conn_type": "datadog_workflows",
    "host": "datadoghq.eu",
    "password": "real-deployment-api-key",
    "extra": {"application_key_secret": "real-deployment-application-key"},
}


def _without_airflow_settings() -> dict[str, str]:
    # tests/conftest.py points this process at a test AIRFLOW_HOME; the deployment below replaces it.
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}


def _run(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _fingerprint(home: Path) -> dict[str, str]:
    """Every file of a deployment's home with a hash of its bytes."""
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def real_deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """An Airflow deployment as an operator would have it: home, database, Fernet key, a connection in each place."""
    from cryptography.fernet import Fernet

    home = tmp_path_factory.mktemp("real-deployment")
    env = {
        **_without_airflow_settings(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'production.db'}",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW_CONN_CLOUDFLARE_WORKFLOWS_DEFAULT": json.dumps(
            {"conn_type": "cloudflare_workflows", "password": "real-token", "extra": {"account_id": "0" * 32}}
        ),
    }
    airflow = [sys.executable, "-m", "airflow"]
    assert _run([*airflow, "db", "migrate"], env).returncode == 0
    added = _run(
        [*airflow, "connections", "add", "datadog_workflows_default", "--conn-json", json.dumps(REAL_CONNECTION)], env
    )
    assert added.returncode == 0, added.stderr
    return home, env


def _stored_connection(env: dict[str, str]) -> dict[str, object]:
    shown = _run(
        [sys.executable, "-m", "airflow", "connections", "get", "datadog_workflows_default", "-o", "json"], env
    )
    assert shown.returncode == 0, shown.stderr
    [connection] = json.loads(shown.stdout)
    return connection


def test_demo_leaves_a_real_deployment_untouched(real_deployment: tuple[Path, dict[str, str]]) -> None:
    home, env = real_deployment
    before = _fingerprint(home)
    connection_before = _stored_connection(env)

    demo = _run([*DEMO, "--dag-id", "example_datadog_run_workflow"], env)

    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "every outcome as expected (the hooks and 1 example DAG(s))" in demo.stdout
    assert "example_datadog_run_workflow" in demo.stdout and "UNEXPECTED" not in demo.stdout
    # Not one byte of the deployment changed: not its database, not its configuration, no new file.
    assert _fingerprint(home) == before
    assert _stored_connection(env) == connection_before
    # The demo's own home is gone.
    [demo_home] = [line.split(": ", 1)[1].split(" ")[0] for line in demo.stdout.splitlines() if "throwaway" in line]
    assert str(home) not in demo_home and not Path(demo_home).exists()


def test_demo_reports_an_unexpected_outcome(real_deployment: tuple[Path, dict[str, str]]) -> None:
    _, env = real_deployment

    demo = _run([*DEMO, "--dag-id", "example_no_such_dag"], env)

    assert demo.returncode == 1
    assert "UNEXPECTED" in demo.stdout and "1 unexpected outcome(s)" in demo.stdout
    assert "every outcome as expected" not in demo.stdout


def test_demo_claims_nothing_without_dags(tmp_path: Path) -> None:
    demo = _run([*DEMO, "--dags-folder", str(tmp_path)], _without_airflow_settings(), timeout=120)

    assert demo.returncode == 1
    assert "no example DAGs found" in demo.stdout
    assert "every outcome as expected" not in demo.stdout
