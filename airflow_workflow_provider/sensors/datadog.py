"""Wait for a Datadog workflow execution started elsewhere."""

from __future__ import annotations

from airflow_workflow_provider.links import DatadogWorkflowInstanceLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor


class DatadogWorkflowInstanceSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the Datadog execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger"
    default_conn_name = "datadog_workflows_default"
    operator_extra_links = (DatadogWorkflowInstanceLink(),)
