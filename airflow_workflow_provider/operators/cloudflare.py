"""Run a Cloudflare Workflow from a DAG."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_workflow_provider.links import CloudflareWorkflowInstanceLink
from airflow_workflow_provider.operators.base import BaseRunWorkflowOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

START_COUNTER_KEY = "cloudflare_start_counter"
PENDING_INSTANCE_KEY = "cloudflare_pending_instance_id"


def derived_instance_id(dag_id: str, task_id: str, run_id: str, map_index: int, counter: int) -> str:
    """An instance id that names one start of one task instance, the same on every retry of that start."""
    digest = hashlib.sha256(f"{dag_id}\0{task_id}\0{run_id}\0{map_index}".encode()).hexdigest()[:32]
    return f"airflow-{digest}-{counter}"


class CloudflareRunWorkflowOperator(BaseRunWorkflowOperator):
    """Create a Cloudflare Workflow instance with ``payload`` as its ``params`` and follow it.

    :param instance_id: the instance id to create. Templated. By default (Airflow 3.3+) the
        operator derives one from the DAG, task, run and map index and records it before the
        start, so that even a worker crash between the start and saving the id cannot create a
        second instance: the retry asks for the same id and attaches to it. A failed instance is
        never replayed: the next start gets a new id.
    """

    template_fields: Sequence[str] = (*BaseRunWorkflowOperator.template_fields, "instance_id")
    hook_class_path = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
    trigger_class_path = "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger"
    default_conn_name = "cloudflare_workflows_default"
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)

    def __init__(self, *, instance_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance_id = instance_id

    def start_options(self, context: Context) -> dict[str, Any]:
        if self.instance_id:
            return {"instance_id": self.instance_id}
        store = context.get("task_state_store")
        if store is None or not self.durable:
            return {}  # Cloudflare picks the id; a retry can only reattach through the stored execution id
        previous = store.get(self.external_id_key)
        pending = store.get(PENDING_INSTANCE_KEY)
        if pending and pending != previous:
            # An earlier try asked for this id and died before saving the execution id: ask again, attach.
            return {"instance_id": pending}
        # A stored execution id here means that execution failed: start afresh under a new id.
        counter = int(store.get(START_COUNTER_KEY) or 0) + (1 if previous else 0)
        ti = context["ti"]
        instance_id = derived_instance_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, counter)
        store.set(START_COUNTER_KEY, counter)
        store.set(PENDING_INSTANCE_KEY, instance_id)
        return {"instance_id": instance_id}
