"""Deferrable wait for a Datadog workflow execution."""

from __future__ import annotations

from airflow_workflow_provider.triggers.base import WorkflowExecutionTrigger


class DatadogWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a Datadog workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
