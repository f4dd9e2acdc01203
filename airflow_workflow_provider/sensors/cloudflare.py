"""Wait for a Cloudflare workflow execution started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_workflow_provider.links import CloudflareWorkflowInstanceLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor

DEFAULT_CONN = "cloudflare_workflows_default"


class CloudflareWorkflowInstanceSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the Cloudflare execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger"
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)
    template_fields: Sequence[str] = (*BaseWorkflowExecutionSensor.template_fields, "cloudflare_conn_id")
    conn_name_attr = "cloudflare_conn_id"

    def __init__(self, *, cloudflare_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cloudflare_conn_id = cloudflare_conn_id
