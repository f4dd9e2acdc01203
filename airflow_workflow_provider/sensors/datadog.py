"""Wait for a Datadog workflow execution started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_workflow_provider.links import DatadogWorkflowInstanceLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor

DEFAULT_CONN = "datadog_workflows_default"


class DatadogWorkflowInstanceSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the Datadog execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger"
    operator_extra_links = (DatadogWorkflowInstanceLink(),)
    template_fields: Sequence[str] = (*BaseWorkflowExecutionSensor.template_fields, "datadog_conn_id")
    conn_name_attr = "datadog_conn_id"

    def __init__(self, *, datadog_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datadog_conn_id = datadog_conn_id
