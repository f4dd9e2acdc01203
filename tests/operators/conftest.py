"""Real Airflow for operator, sensor and trigger tests: a migrated sqlite database and ``dag.test()``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )
    return folder


class DagResult:
    def __init__(self, dag_id: str, run_id: str, state: str) -> None:
        self.dag_id, self.run_id, self.state = dag_id, run_id, state

    def task_states(self) -> dict[str, str]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.query(TaskInstance).filter_by(dag_id=self.dag_id, run_id=self.run_id).all()
            return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in rows}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id, key=key)
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture
def run_dag(dags_folder: Path) -> Callable[[str, str], DagResult]:
    """Write a DAG file into the dags folder (Airflow 3 runs only DAGs it can serialize from a file) and test it."""

    def run(dag_id: str, body: str) -> DagResult:
        source = textwrap.dedent(
            """
            import pendulum
            from airflow.sdk import DAG

            with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
            """
        ).format(dag_id=dag_id) + textwrap.indent(textwrap.dedent(body), "    ")
        path = dags_folder / f"{dag_id}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(dag_id, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag_run = module.dag.test()
        return DagResult(dag_id, dag_run.run_id, str(dag_run.state))

    return run


@pytest.fixture
def output(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything the task wrote, whether Airflow's logging sent it to stdout or through logging."""
    caplog.set_level("INFO")
    return lambda: capfd.readouterr().out + caplog.text
