"""Wait for a Cloudflare workflow execution started elsewhere."""

from __future__ import annotations

from airflow_workflow_provider.links import CloudflareWorkflowInstanceLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor


class CloudflareWorkflowInstanceSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the Cloudflare execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger"
    default_conn_name = "cloudflare_workflows_default"
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)
