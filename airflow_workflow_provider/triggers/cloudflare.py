"""Deferrable wait for a Cloudflare workflow execution."""

from __future__ import annotations

from airflow_workflow_provider.triggers.base import WorkflowExecutionTrigger


class CloudflareWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a Cloudflare workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
