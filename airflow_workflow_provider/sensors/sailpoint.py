"""Wait for a SailPoint workflow execution started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_workflow_provider.links import SailPointWorkflowExecutionLink
from airflow_workflow_provider.sensors.base import BaseWorkflowExecutionSensor

DEFAULT_CONN = "sailpoint_workflows_default"


class SailPointWorkflowExecutionSensor(BaseWorkflowExecutionSensor):
    """Succeeds when the SailPoint execution succeeds; fails at once when it fails or is canceled."""

    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger"
    operator_extra_links = (SailPointWorkflowExecutionLink(),)
    template_fields: Sequence[str] = (*BaseWorkflowExecutionSensor.template_fields, "sailpoint_conn_id")
    conn_name_attr = "sailpoint_conn_id"

    def __init__(self, *, sailpoint_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sailpoint_conn_id = sailpoint_conn_id
