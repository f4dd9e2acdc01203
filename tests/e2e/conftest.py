"""Fixtures and hooks of the end-to-end tests; the deployment itself is built in ``support.py``."""

from __future__ import annotations

import atexit
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import CELERY_POSTGRES, LOCAL_SQLITE, Deployment, Topology, boot, create_deployment

# e2e_celery: the PostgreSQL + Celery + two-triggerer deployment, run on its own (`make e2e-celery`).
E2E_MARKERS = ("e2e", "browser", "e2e_celery")
OPT_IN_ENV = "AWP_E2E"
E2E_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that the markers work before pyproject.toml lists them.
    config.addinivalue_line("markers", "e2e: end-to-end tests against a real Airflow deployment or the built package")
    config.addinivalue_line("markers", "browser: drives the Airflow UI in headless Chromium (Playwright)")
    config.addinivalue_line(
        "markers", "e2e_celery: end-to-end tests against PostgreSQL, CeleryExecutor and two triggerers"
    )


def _opted_in(config: pytest.Config) -> bool:
    """The end-to-end tests take minutes: they run only when asked for.

    Asked for means: a ``-m`` expression that names ``e2e``, ``browser`` or ``e2e_celery``, a path under
    tests/e2e on the command line, or ``AWP_E2E=1``. A plain ``pytest`` (``make test``) skips them.
    """
    if os.environ.get(OPT_IN_ENV, "").lower() in ("1", "true", "yes"):
        return True
    if any(marker in (config.getoption("markexpr", "") or "") for marker in E2E_MARKERS):
        return True
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return False
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == E2E_DIR or E2E_DIR in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _opted_in(config):
        return
    skip = pytest.mark.skip(
        reason=f"end-to-end test: opt in with `pytest -m 'e2e or browser'`, a path under tests/e2e, or {OPT_IN_ENV}=1"
    )
    for item in items:
        if any(item.get_closest_marker(marker) for marker in E2E_MARKERS):
            item.add_marker(skip)


# The running deployments by fixture name, for the atexit safety net and the failure report hook.
_ACTIVE: dict[str, Deployment] = {}


@atexit.register
def _stop_leftovers() -> None:
    for deployment in list(_ACTIVE.values()):
        deployment.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for fixture_name, deployment in _ACTIVE.items():
        if fixture_name in getattr(item, "fixturenames", ()):
            report.sections.append((f"airflow component logs ({deployment.topology.name})", deployment.log_tails()))


def _interrupt(signum: int, frame: object) -> None:
    # pytest tears the fixtures down after a KeyboardInterrupt, so a CI timeout's SIGTERM still stops Airflow.
    raise KeyboardInterrupt(f"signal {signum}")


def _running(fixture_name: str, topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = create_deployment(tmp_path_factory.mktemp(f"airflow-home-{topology.name}"), topology)
    _ACTIVE[fixture_name] = deployment
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        boot(deployment)
        yield deployment
    finally:
        deployment.stop()
        _ACTIVE.pop(fixture_name, None)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def airflow_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """LocalExecutor on sqlite, one triggerer."""
    yield from _running("airflow_deployment", LOCAL_SQLITE, tmp_path_factory)


@pytest.fixture(scope="session")
def celery_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """PostgreSQL, CeleryExecutor on Redis with two workers, two triggerers."""
    yield from _running("celery_deployment", CELERY_POSTGRES, tmp_path_factory)
