"""Every example DAG in the production-shaped deployment: PostgreSQL, CeleryExecutor on Redis with two workers,
two triggerers (``support.CELERY_POSTGRES``). The checks are those of the LocalExecutor deployment
(``examples.py``); the failover and worker-loss tests are in ``test_celery_failover.py``.
"""

from __future__ import annotations

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
from tests.e2e.support import Deployment

pytestmark = [pytest.mark.e2e_celery, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def example_runs(celery_deployment: Deployment) -> ExampleRuns:
    return run_every_example(celery_deployment)


def test_the_deployment_runs_on_postgres_and_celery(celery_deployment: Deployment) -> None:
    deployment = celery_deployment
    assert deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://127.0.0.1") is False
    health = deployment.api("GET", "/monitor/health")
    assert health["metadatabase"]["status"] == "healthy", health
    jobs = deployment.api("GET", "/jobs", params={"job_type": "TriggererJob", "is_alive": "true"})
    assert jobs["total_entries"] == 2, f"expected two live triggerers: {jobs}"
    config = deployment.airflow("config", "get-value", "core", "executor").stdout.strip()
    assert config == "CeleryExecutor", config


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
