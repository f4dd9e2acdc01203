"""Wait for a SailPoint workflow execution started elsewhere."""

from __future__ import annotations

from airflow_workflow_provider.links import SailPointWorkflowExecutionLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor


class SailPointWorkflowExecutionSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the SailPoint execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger"
    default_conn_name = "sailpoint_workflows_default"
    operator_extra_links = (SailPointWorkflowExecutionLink(),)
