"""Fixtures of the emulator tests: the emulator, a keep-alive session, an authenticated SailPoint sender.

``emu`` is the shipped ``workflow_emulator`` fixture: each test module enables that plugin with ``pytest_plugins``
(only the top-level conftest may declare it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_workflow_provider.testing.emulator import WorkflowEmulator
from tests.testing.emulator_support import sp_token


@pytest.fixture
def emu(workflow_emulator: WorkflowEmulator) -> WorkflowEmulator:
    return workflow_emulator


@pytest.fixture
def http(request: pytest.FixtureRequest) -> Iterator[requests.Session]:
    # One keep-alive session per test, as a hook would hold. A test of the emulator is the process that
    # started it: its session carries that emulator's control token (the control API wants it).
    with requests.Session() as session:
        if "emu" in request.fixturenames:
            session.headers.update(request.getfixturevalue("emu").control_headers)
        yield session


@pytest.fixture
def sp(emu: WorkflowEmulator, http: requests.Session) -> Callable[..., requests.Response]:
    """Send an authenticated SailPoint request: ``sp("GET", "/v3/workflow-executions/x")``."""
    token = sp_token(http, emu)

    def send(method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return http.request(method, f"{emu.base_url('sailpoint')}{path}", headers=headers, **kwargs)

    return send
