"""Run a Datadog Workflow Automation workflow from a DAG."""

from __future__ import annotations

from airflow_workflow_provider.links import DatadogWorkflowInstanceLink
from airflow_workflow_provider.operators.base import BaseListWorkflowExecutionsOperator, BaseRunWorkflowOperator


class DatadogRunWorkflowOperator(BaseRunWorkflowOperator):
    """Execute a published Datadog workflow with an API trigger; ``payload`` becomes ``meta.payload``.

    .. code-block:: python

        DatadogRunWorkflowOperator(task_id="remediate", workflow="<workflow id>", payload={"host": "{{ params.host }}"})
    """

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.datadog.DatadogWorkflowTrigger"
    default_conn_name = "datadog_workflows_default"
    operator_extra_links = (DatadogWorkflowInstanceLink(),)


class DatadogListWorkflowExecutionsOperator(BaseListWorkflowExecutionsOperator):
    """List a Datadog workflow's executions; filters: ``page_size`` only (Datadog has no list filters)."""

    hook_class_path = "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook"
    default_conn_name = "datadog_workflows_default"
