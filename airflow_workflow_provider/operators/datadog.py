"""Run a Datadog Workflow Automation workflow from a DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_workflow_provider.links import DatadogWorkflowInstanceLink
from airflow_workflow_provider.operators.base import BaseListWorkflowExecutionsOperator, BaseRunWorkflowOperator

DEFAULT_CONN = "datadog_workflows_default"


class DatadogRunWorkflowOperator(BaseRunWorkflowOperator):
    """Execute a published Datadog workflow with an API trigger; ``payload`` becomes ``meta.payload``.

    .. code-block:: python

        DatadogRunWorkflowOperator(task_id="remediate", workflow="<workflow id>", payload={"host": "{{ params.host }}"})
    """

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger"
    operator_extra_links = (DatadogWorkflowInstanceLink(),)
    template_fields: Sequence[str] = (*BaseRunWorkflowOperator.template_fields, "datadog_conn_id")
    conn_name_attr = "datadog_conn_id"

    def __init__(self, *, datadog_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datadog_conn_id = datadog_conn_id


class DatadogListWorkflowExecutionsOperator(BaseListWorkflowExecutionsOperator):
    """List a Datadog workflow's executions; filters: ``page_size`` only (Datadog has no list filters)."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    template_fields: Sequence[str] = (*BaseListWorkflowExecutionsOperator.template_fields, "datadog_conn_id")
    conn_name_attr = "datadog_conn_id"

    def __init__(self, *, datadog_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datadog_conn_id = datadog_conn_id
