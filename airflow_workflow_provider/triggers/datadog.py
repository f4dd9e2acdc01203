"""Deferrable wait for a Datadog workflow execution."""

from __future__ import annotations

from typing import Any

from airflow_workflow_provider.triggers.base import WorkflowExecutionTrigger


class DatadogWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a Datadog workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    conn_name_attr = "datadog_conn_id"

    def __init__(self, *, datadog_conn_id: str, **kwargs: Any) -> None:
        super().__init__(connection_id=datadog_conn_id, **kwargs)
