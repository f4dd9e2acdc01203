"""Connection arguments are named after the vendor, as in Airflow's official providers (``dbt_cloud_conn_id``)."""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

import pendulum
import pytest

VENDORS = ("datadog", "cloudflare", "sailpoint")
HOOKS = {
    "datadog": "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook",
    "cloudflare": "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook",
    "sailpoint": "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook",
}
TRIGGERS = {
    "datadog": "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger",
    "cloudflare": "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger",
    "sailpoint": "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger",
}
# Every operator and sensor class, with the arguments it needs besides the connection.
TASKS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "datadog": [
        ("operators.datadog.DatadogRunWorkflowOperator", {"workflow": "w"}),
        ("operators.datadog.DatadogListWorkflowExecutionsOperator", {"workflow": "w"}),
        ("sensors.datadog.DatadogWorkflowInstanceSensor", {"workflow": "w", "execution_id": "e"}),
    ],
    "cloudflare": [
        ("operators.cloudflare.CloudflareRunWorkflowOperator", {"workflow": "w"}),
        ("operators.cloudflare.CloudflareListWorkflowExecutionsOperator", {"workflow": "w"}),
        (
            "operators.cloudflare.CloudflareInstanceStatusOperator",
            {"workflow": "w", "instance_id": "i", "action": "pause"},
        ),
        ("operators.cloudflare.CloudflareSendEventOperator", {"workflow": "w", "instance_id": "i", "event_type": "ok"}),
        ("operators.cloudflare.CloudflareRunWorkflowBatchOperator", {"workflow": "w", "payloads": [{}]}),
        ("sensors.cloudflare.CloudflareWorkflowInstanceSensor", {"workflow": "w", "execution_id": "e"}),
    ],
    "sailpoint": [
        ("operators.sailpoint.SailPointRunWorkflowOperator", {"workflow": "w"}),
        ("operators.sailpoint.SailPointListWorkflowExecutionsOperator", {"workflow": "w"}),
        ("sensors.sailpoint.SailPointWorkflowExecutionSensor", {"workflow": "w", "execution_id": "e"}),
    ],
}
ALL_TASKS = [(vendor, path, args) for vendor, tasks in TASKS.items() for path, args in tasks]


def _load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    if not module.startswith("airflow_workflow_provider"):
        module = f"airflow_workflow_provider.{module}"
    return getattr(import_module(module), name)


@pytest.mark.parametrize("vendor", VENDORS)
def test_hook_argument_matches_conn_name_attr(vendor: str) -> None:
    hook_class = _load(HOOKS[vendor])
    assert hook_class.conn_name_attr == f"{vendor}_conn_id"
    assert f"{vendor}_conn_id" in inspect.signature(hook_class.__init__).parameters
    # What Airflow's "Test" button does: build the hook from conn_name_attr.
    hook = hook_class(**{hook_class.conn_name_attr: "mine"})
    assert getattr(hook, f"{vendor}_conn_id") == "mine"
    assert hook_class().connection_id == hook_class.default_conn_name
    assert repr(hook) == f"{hook_class.__name__}({vendor}_conn_id='mine')"


@pytest.mark.parametrize("vendor", VENDORS)
def test_trigger_serializes_the_vendor_named_argument(vendor: str) -> None:
    trigger_class = _load(TRIGGERS[vendor])
    trigger = trigger_class(**{f"{vendor}_conn_id": "mine"}, workflow="w", execution_id="e")
    classpath, kwargs = trigger.serialize()
    assert kwargs[f"{vendor}_conn_id"] == "mine" and "conn_id" not in kwargs
    assert _load(classpath)(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(("vendor", "path", "args"), ALL_TASKS, ids=[p.rpartition(".")[2] for _, p, _ in ALL_TASKS])
def test_vendor_named_default_args_reach_only_that_vendor(vendor: str, path: str, args: dict[str, Any]) -> None:
    from airflow.sdk import DAG

    task_class = _load(path)
    field = f"{vendor}_conn_id"
    others = {f"{other}_conn_id": f"{other}_custom" for other in VENDORS if other != vendor}
    default_args = {"conn_id": "generic", field: f"{vendor}_custom", **others}
    with DAG("conn_args", schedule=None, start_date=pendulum.datetime(2026, 1, 1), default_args=default_args):
        task = task_class(task_id="t", **args)
    assert getattr(task, field) == f"{vendor}_custom"
    assert task.connection_id == f"{vendor}_custom"
    assert field in task.template_fields
    assert not hasattr(task, "conn_id"), "a generic conn_id in default_args must reach no vendor"
    for other_field in others:
        assert not hasattr(task, other_field)

    with DAG("conn_args_default", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        default = task_class(task_id="t", **args)
    assert getattr(default, field) == f"{vendor}_workflows_default"


@pytest.mark.parametrize(("vendor", "path", "args"), ALL_TASKS[:1] + ALL_TASKS[3:4] + ALL_TASKS[-3:-2])
def test_generic_conn_id_argument_is_refused(vendor: str, path: str, args: dict[str, Any]) -> None:
    with pytest.raises((TypeError, Exception), match="conn_id"):
        _load(path)(task_id="t", conn_id="generic", **args)
