"""Pytest plugin providing the ``workflow_emulator`` fixture.

Enable it with ``pytest_plugins = ["airflow_workflow_provider.testing.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_workflow_provider.testing.emulator import WorkflowEmulator

__all__ = ["workflow_emulator"]


@pytest.fixture
def workflow_emulator() -> Iterator[WorkflowEmulator]:
    """A started emulator on a free loopback port, stopped after the test so no state leaks."""
    with WorkflowEmulator() as emulator:
        yield emulator
