"""Deferrable wait for a SailPoint workflow execution."""

from __future__ import annotations

from airflow_workflow_provider.triggers.base import WorkflowExecutionTrigger


class SailPointWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a SailPoint workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
