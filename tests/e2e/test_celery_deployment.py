"""Every example DAG in the production-shaped deployment: PostgreSQL, CeleryExecutor on Redis with two workers,
two triggerers (``support.CELERY_POSTGRES``). The checks are those of the LocalExecutor deployment
(``examples.py``); the failover and worker-loss tests are in ``test_celery_failover.py``.
"""

from __future__ import annotations

import contextlib
import re

import pytest

from tests.e2e.examples import (
    ExampleRuns,
    check_deferrable_runs_waited_in_a_triggerer,
    check_expected_states,
    check_failed_runs_carry_the_vendor_reason,
    check_no_secret_in_logs_or_xcom,
    check_run_operators_store_the_vendor_link,
    run_every_example,
)
from tests.e2e.support import Deployment, example_dag_ids

pytestmark = [pytest.mark.e2e_celery, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def example_runs(celery_deployment: Deployment) -> ExampleRuns:
    return run_every_example(celery_deployment)


def test_the_deployment_runs_on_postgres_with_two_triggerers(celery_deployment: Deployment) -> None:
    import psycopg2  # the e2e dependency group's: `make test` collects this module without it

    deployment = celery_deployment
    postgres = deployment.postgres
    assert postgres is not None
    # What Airflow parsed is in PostgreSQL, read there directly.
    with contextlib.closing(psycopg2.connect(postgres.dsn)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT dag_id FROM dag")
        stored = {row[0] for row in cursor.fetchall()}
    assert set(example_dag_ids(deployment.dags_folder)) <= stored, sorted(stored)
    jobs = deployment.api("GET", "/jobs", params={"job_type": "TriggererJob", "is_alive": "true"})
    assert jobs["total_entries"] == 2, f"expected two live triggerers: {jobs}"
    executor = deployment.airflow("config", "get-value", "core", "executor").stdout.strip()
    assert executor == "CeleryExecutor", executor


def test_tasks_ran_in_the_celery_workers(example_runs: ExampleRuns) -> None:
    deployment = example_runs.deployment
    task_runs = sum(len(example_runs.task_instances(dag_id)) for dag_id in example_runs.run_ids)
    done = {
        name: len(re.findall(r"Task execute_workload\[[0-9a-f-]+\] succeeded", deployment.log_file(name).read_text()))
        for name in deployment.topology.worker_names
    }
    # A deferred task is two workloads (start, resume), so there are at least as many as task instances.
    assert sum(done.values()) >= task_runs, f"{done} Celery workloads for {task_runs} task instances"
    print(f"Celery workloads per worker: {done}")


def test_every_example_dag_ends_in_its_expected_state(example_runs: ExampleRuns) -> None:
    check_expected_states(example_runs)


def test_deferrable_runs_waited_in_a_triggerer(example_runs: ExampleRuns) -> None:
    check_deferrable_runs_waited_in_a_triggerer(example_runs)


def test_failed_runs_carry_the_vendor_reason(example_runs: ExampleRuns) -> None:
    check_failed_runs_carry_the_vendor_reason(example_runs)


def test_run_operators_store_the_vendor_link(example_runs: ExampleRuns) -> None:
    check_run_operators_store_the_vendor_link(example_runs)


def test_no_secret_in_logs_or_xcom(example_runs: ExampleRuns) -> None:
    check_no_secret_in_logs_or_xcom(example_runs)
