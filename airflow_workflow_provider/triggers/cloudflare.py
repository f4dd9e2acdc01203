"""Deferrable wait for a Cloudflare workflow execution."""

from __future__ import annotations

from typing import Any

from airflow_workflow_provider.triggers.base import WorkflowExecutionsTrigger, WorkflowExecutionTrigger


class CloudflareWorkflowTrigger(WorkflowExecutionTrigger):
    """Fires when a Cloudflare workflow execution ends; see :class:`WorkflowExecutionTrigger`."""

    hook_class_path = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
    conn_name_attr = "cloudflare_conn_id"

    def __init__(self, *, cloudflare_conn_id: str, **kwargs: Any) -> None:
        super().__init__(connection_id=cloudflare_conn_id, **kwargs)


class CloudflareWorkflowBatchTrigger(WorkflowExecutionsTrigger):
    """Fires when every instance of a Cloudflare batch has ended; see :class:`WorkflowExecutionsTrigger`."""

    hook_class_path = CloudflareWorkflowTrigger.hook_class_path
    conn_name_attr = "cloudflare_conn_id"

    def __init__(self, *, cloudflare_conn_id: str, **kwargs: Any) -> None:
        super().__init__(connection_id=cloudflare_conn_id, **kwargs)
