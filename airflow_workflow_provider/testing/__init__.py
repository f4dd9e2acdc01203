"""Testing helpers: an offline emulator of the three vendor workflow APIs and a pytest fixture for it.

The names are resolved lazily so that importing this package stays cheap and never imports Airflow or
aiohttp (the emulator package, ``testing/emulator/``, imports aiohttp).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_workflow_provider.testing.emulator import (
        EmulatorCredentials,
        RequestRecord,
        WorkflowEmulator,
        WorkflowScript,
    )

__all__ = ["EmulatorCredentials", "RequestRecord", "WorkflowEmulator", "WorkflowScript"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("airflow_workflow_provider.testing.emulator"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
