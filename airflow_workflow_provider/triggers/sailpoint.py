"""Deferrable wait for a SailPoint workflow execution."""

from __future__ import annotations

from typing import Any

from airflow_workflow_provider.triggers.base import WorkflowExecutionTrigger


class SailPointWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a SailPoint workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    conn_name_attr = "sailpoint_conn_id"

    def __init__(self, *, sailpoint_conn_id: str, **kwargs: Any) -> None:
        super().__init__(connection_id=sailpoint_conn_id, **kwargs)
