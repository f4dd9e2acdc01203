"""Offline emulator of the Datadog, Cloudflare and SailPoint workflow APIs.

One aiohttp server, run in a background thread with its own event loop, answers for the three vendors under
a path prefix each (``/datadog``, ``/cloudflare``, ``/sailpoint``), so a hook's ``base_url`` override can
point at ``emulator.base_url(vendor)`` and keep appending the vendor's real paths. Executions advance on the
wall clock according to a :class:`WorkflowScript`; faults, rate limits and token revocation can be injected
from Python or, for another process, through the ``/_emulator/...`` control API (loopback ``Host``, JSON bodies,
and the per-start token ``WorkflowEmulator.control_token`` in ``X-Emulator-Token``; see ``control.py``).

Run standalone with ``python -m airflow_workflow_provider.testing.emulator [--port N] [--url-file PATH]``.

The package mirrors ``hooks/``: ``server.py`` (lifecycle, controls, dispatch), ``control.py`` (the control
API), ``faults.py`` (faults and rate limits), ``state.py`` (scripts, executions and their clock),
``common.py`` (what vendor modules share), ``cli.py``, and one module per vendor API that reads like that
vendor's reference: ``datadog.py``, ``cloudflare.py``, ``sailpoint.py``.
"""

from __future__ import annotations

from airflow_workflow_provider.testing.emulator.cli import main, read_control_token
from airflow_workflow_provider.testing.emulator.datadog import VOCABULARIES as DATADOG_VOCABULARIES
from airflow_workflow_provider.testing.emulator.datadog import DatadogVocabulary
from airflow_workflow_provider.testing.emulator.faults import FAULTS, OPERATIONS
from airflow_workflow_provider.testing.emulator.server import WorkflowEmulator
from airflow_workflow_provider.testing.emulator.state import (
    MYSTERY_STATUS,
    VENDORS,
    EmulatorCredentials,
    RequestRecord,
    WorkflowScript,
)

__all__ = [
    "DATADOG_VOCABULARIES",
    "FAULTS",
    "MYSTERY_STATUS",
    "OPERATIONS",
    "VENDORS",
    "DatadogVocabulary",
    "EmulatorCredentials",
    "RequestRecord",
    "WorkflowEmulator",
    "WorkflowScript",
    "main",
    "read_control_token",
]
