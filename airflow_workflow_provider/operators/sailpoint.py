"""Run a SailPoint Identity Security Cloud workflow from a DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_workflow_provider.links import SailPointWorkflowExecutionLink
from airflow_workflow_provider.operators.base import BaseListWorkflowExecutionsOperator, BaseRunWorkflowOperator

DEFAULT_CONN = "sailpoint_workflows_default"

if TYPE_CHECKING:
    from airflow.sdk import Context


class SailPointRunWorkflowOperator(BaseRunWorkflowOperator):
    """Run a SailPoint workflow with ``payload`` as its ``input``.

    :param mode: ``external`` runs an enabled workflow through its External Trigger (the
        connection must hold that trigger's OAuth client); ``test`` runs a disabled workflow.
        None takes the connection's ``start_mode`` extra (default ``external``).
    """

    template_fields: Sequence[str] = (*BaseRunWorkflowOperator.template_fields, "mode", "sailpoint_conn_id")
    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.sailpoint.SailPointWorkflowTrigger"
    operator_extra_links = (SailPointWorkflowExecutionLink(),)
    conn_name_attr = "sailpoint_conn_id"

    def __init__(self, *, mode: str | None = None, sailpoint_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.sailpoint_conn_id = sailpoint_conn_id

    def start_options(self, context: Context) -> dict[str, Any]:
        return {"mode": self.mode} if self.mode else {}


class SailPointListWorkflowExecutionsOperator(BaseListWorkflowExecutionsOperator):
    """List a SailPoint workflow's executions.

    Filters: ``status``, ``start_time_gt``/``ge``/``lt``/``le``/``eq``, ``limit``.
    """

    hook_class_path = "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook"
    template_fields: Sequence[str] = (*BaseListWorkflowExecutionsOperator.template_fields, "sailpoint_conn_id")
    conn_name_attr = "sailpoint_conn_id"

    def __init__(self, *, sailpoint_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sailpoint_conn_id = sailpoint_conn_id
