"""Every example DAG parses without connections and runs to its expected outcome against the emulator."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_workflow_provider.testing.demo import example_dag_ids
from airflow_workflow_provider.testing.emulator import WorkflowScript

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def test_examples_parse_with_no_connection_configured() -> None:
    script = (
        "import importlib.util, pathlib, sys\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('example_*.py')):\n"
        "    spec = importlib.util.spec_from_file_location(path.stem, path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AIRFLOW_CONN_")}
    done = subprocess.run([sys.executable, "-c", script, str(EXAMPLES)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("dag_id", example_dag_ids(EXAMPLES))
def test_example_dag_runs(dag_id: str, emulator, set_connection, dags_folder: Path, monkeypatch) -> None:
    for vendor in ("datadog", "cloudflare", "sailpoint"):
        set_connection(vendor)
    # The examples poll every 30 s, as fits real workflows; the emulated ones end within a second or two.
    monkeypatch.setenv("EXAMPLE_WORKFLOW_POLL_SECONDS", "0.2")
    emulator.script("cloudflare", "expense-approval", WorkflowScript(duration=1.0, wait_for_event="approval"))
    emulator.script("sailpoint", "7c1e2f10-draft-4b1a-9d3e-5a6b7c8d9e0f", WorkflowScript(duration=0.5, enabled=False))
    [source] = [p for p in EXAMPLES.glob("example_*.py") if f'"{dag_id}"' in p.read_text()]
    target = dags_folder / source.name
    shutil.copy(source, target)
    dag = _dag_bag(target).dags[dag_id]

    run = dag.test()

    expected = "failed" if dag_id.endswith("_fails") else "success"
    assert str(run.state) == expected


def _dag_bag(path: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(path))  # examples stay out: AIRFLOW__CORE__LOAD_EXAMPLES=False
    assert not bag.import_errors, bag.import_errors
    return bag
