"""``deferrable=True`` with ``wait_for_completion=False`` warns, as the dbt Cloud operator does."""

from __future__ import annotations

import warnings
from importlib import import_module

import pytest

RUN_OPERATORS = (
    "airflow_workflow_provider.operators.datadog.DatadogRunWorkflowOperator",
    "airflow_workflow_provider.operators.cloudflare.CloudflareRunWorkflowOperator",
    "airflow_workflow_provider.operators.sailpoint.SailPointRunWorkflowOperator",
)


def _operator_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


# Imported before any test: the first Airflow import installs its own warnings hook, which would
# otherwise replace pytest's recorder in the middle of a test.
for _path in RUN_OPERATORS:
    _operator_class(_path)


@pytest.mark.parametrize("path", RUN_OPERATORS)
def test_deferring_without_waiting_warns(path: str) -> None:
    with pytest.warns(UserWarning, match=r"deferrable=True has no effect with wait_for_completion=False") as seen:
        _operator_class(path)(task_id="start", workflow="w", wait_for_completion=False, deferrable=True)
    assert "'start'" in str(seen[0].message)


@pytest.mark.parametrize(
    ("arguments", "default_deferrable"),
    [
        ({"wait_for_completion": True, "deferrable": True}, "False"),
        ({"wait_for_completion": False, "deferrable": False}, "False"),
        # A deployment-wide default is not the DAG author's choice: no warning on every non-waiting task.
        ({"wait_for_completion": False, "deferrable": True}, "True"),
    ],
)
def test_no_warning_when_the_combination_makes_sense(
    arguments: dict[str, bool], default_deferrable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", default_deferrable)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for path in RUN_OPERATORS:
            _operator_class(path)(task_id="start", workflow="w", **arguments)
