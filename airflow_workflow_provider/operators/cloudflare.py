"""Run a Cloudflare Workflow from a DAG."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_workflow_provider.core.errors import WorkflowExecutionFailed, WorkflowInputError, WorkflowWaitTimeout
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.core.validation import require_choice
from airflow_workflow_provider.links import EXECUTION_URL_KEY, CloudflareWorkflowInstanceLink
from airflow_workflow_provider.operators.base import (
    BaseListWorkflowExecutionsOperator,
    BaseRunWorkflowOperator,
    VendorConnection,
    checked_wait_settings,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook  # noqa: F401 (quoted in bases)

DEFAULT_CONN = "cloudflare_workflows_default"
HOOK = "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook"
# The hook module's list, repeated here so that parsing a DAG does not import the hook and its HTTP stack.
STATUS_ACTIONS = ("pause", "resume", "terminate", "restart")
START_COUNTER_KEY = "cloudflare_start_counter"
PENDING_INSTANCE_KEY = "cloudflare_pending_instance_id"
BATCH_IDS_KEY = "cloudflare_batch_instance_ids"


def _map_index(map_index: int | None) -> int:
    return -1 if map_index is None else map_index


def derived_instance_id(dag_id: str, task_id: str, run_id: str, map_index: int, counter: int) -> str:
    """A new instance id for one start of one task instance, unique to this deployment.

    It is recorded in the task state before the start, so every retry of that start asks for the same id:
    it need not be derived from anything. A random part keeps two deployments that run the same DAG for
    the same date (staging and production) from asking for the same id; the task part keeps it readable.
    """
    digest = hashlib.sha256(f"{dag_id}\0{task_id}\0{run_id}\0{map_index}".encode()).hexdigest()[:16]
    return f"airflow-{digest}-{secrets.token_hex(12)}-{counter}"


class CloudflareRunWorkflowOperator(BaseRunWorkflowOperator):
    """Create a Cloudflare Workflow instance with ``payload`` as its ``params`` and follow it.

    :param instance_id: the instance id to create. Templated. By default (Airflow 3.3+) the
        operator derives one from the DAG, task, run and map index and records it before the
        start, so that even a worker crash between the start and saving the id cannot create a
        second instance: the retry asks for the same id and attaches to it. A failed instance is
        never replayed: the next start gets a new id.
    """

    template_fields: Sequence[str] = (*BaseRunWorkflowOperator.template_fields, "instance_id", "cloudflare_conn_id")
    hook_class_path = HOOK
    trigger_class_path = "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowTrigger"
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)
    conn_name_attr = "cloudflare_conn_id"

    def __init__(
        self, *, instance_id: str | None = None, cloudflare_conn_id: str = DEFAULT_CONN, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.instance_id = instance_id
        self.cloudflare_conn_id = cloudflare_conn_id

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
        counter = int(str(store.get(START_COUNTER_KEY) or 0)) + (1 if previous else 0)
        ti = context["ti"]
        instance_id = derived_instance_id(ti.dag_id, ti.task_id, ti.run_id, _map_index(ti.map_index), counter)
        store.set(START_COUNTER_KEY, counter)
        store.set(PENDING_INSTANCE_KEY, instance_id)
        return {"instance_id": instance_id}


class CloudflareListWorkflowExecutionsOperator(BaseListWorkflowExecutionsOperator):
    """List a Cloudflare workflow's executions; filters: ``status``, ``date_start``, ``date_end``, ``per_page``."""

    hook_class_path = HOOK
    template_fields: Sequence[str] = (*BaseListWorkflowExecutionsOperator.template_fields, "cloudflare_conn_id")
    conn_name_attr = "cloudflare_conn_id"

    def __init__(self, *, cloudflare_conn_id: str = DEFAULT_CONN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cloudflare_conn_id = cloudflare_conn_id


class CloudflareInstanceStatusOperator(VendorConnection["CloudflareWorkflowsHook"], BaseOperator):
    """Pause, resume, terminate or restart a Cloudflare Workflow instance.

    An action that does not fit the instance's state (e.g. resuming a completed instance) fails the
    task with Cloudflare's reason.

    :param action: ``pause``, ``resume``, ``terminate`` or ``restart``. Templated.
    """

    template_fields: Sequence[str] = ("workflow", "instance_id", "action", "cloudflare_conn_id")
    hook_class_path = HOOK
    conn_name_attr = "cloudflare_conn_id"
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)

    def __init__(
        self, *, workflow: str, instance_id: str, action: str, cloudflare_conn_id: str = DEFAULT_CONN, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in action:
            require_choice("action", action, STATUS_ACTIONS)
        self.workflow, self.instance_id, self.action = workflow, instance_id, action
        self.cloudflare_conn_id = cloudflare_conn_id

    def execute(self, context: Context) -> str:
        hook = self.hook
        context["ti"].xcom_push(key=EXECUTION_URL_KEY, value=hook.execution_url(self.workflow, self.instance_id))
        return hook.change_instance_status(self.workflow, self.instance_id, self.action)


class CloudflareSendEventOperator(VendorConnection["CloudflareWorkflowsHook"], BaseOperator):
    """Send an event to a Cloudflare Workflow instance waiting for it (``step.waitForEvent``).

    :param event_type: the type the workflow waits for. Templated.
    :param payload: the event's payload, any JSON value. Templated.
    """

    template_fields: Sequence[str] = ("workflow", "instance_id", "event_type", "payload", "cloudflare_conn_id")
    hook_class_path = HOOK
    conn_name_attr = "cloudflare_conn_id"
    template_fields_renderers = {"payload": "json"}
    operator_extra_links = (CloudflareWorkflowInstanceLink(),)

    def __init__(
        self,
        *,
        workflow: str,
        instance_id: str,
        event_type: str,
        payload: Any = None,
        cloudflare_conn_id: str = DEFAULT_CONN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow, self.instance_id, self.event_type = workflow, instance_id, event_type
        self.payload, self.cloudflare_conn_id = payload, cloudflare_conn_id

    def execute(self, context: Context) -> None:
        hook = self.hook
        context["ti"].xcom_push(key=EXECUTION_URL_KEY, value=hook.execution_url(self.workflow, self.instance_id))
        hook.send_event(self.workflow, self.instance_id, self.event_type, self.payload)


class CloudflareRunWorkflowBatchOperator(VendorConnection["CloudflareWorkflowsHook"], BaseOperator):
    """Create several instances of a workflow in one call and wait until every one has ended.

    Returns each instance's outcome; fails, naming every failed instance and its error, if any failed.

    :param payloads: one ``params`` object per instance. Templated.
    :param instance_ids: optional ids, one per payload. By default (Airflow 3.3+) they are derived from
        the task run, so that a retry attaches to the instances an earlier try created (Cloudflare
        skips ids that exist already; the operator follows every id it asked for all the same).
    :param deferrable: wait in the triggerer: one trigger follows every instance, through the
        triggerer's coalesced poller (a listing page or two per interval instead of a GET per instance).
    :param cancel_on_kill: terminate the instances still running when the task is killed or times out.
    """

    template_fields: Sequence[str] = ("workflow", "payloads", "instance_ids", "cloudflare_conn_id")
    hook_class_path = HOOK
    conn_name_attr = "cloudflare_conn_id"
    template_fields_renderers = {"payloads": "json"}
    trigger_class_path = "airflow_workflow_provider.triggers.cloudflare.CloudflareWorkflowBatchTrigger"

    def __init__(
        self,
        *,
        workflow: str,
        payloads: list[dict[str, Any]],
        instance_ids: list[str] | None = None,
        wait_for_completion: bool = True,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = True,
        cloudflare_conn_id: str = DEFAULT_CONN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow, self.payloads, self.instance_ids = workflow, payloads, instance_ids
        self.cloudflare_conn_id = cloudflare_conn_id
        self.wait_for_completion = wait_for_completion
        self.poll_interval, self.timeout = checked_wait_settings(poll_interval, timeout)
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self._started: list[str] = []
        self._ended: set[str] = set()

    def _ids(self, context: Context, hook: Any) -> list[str] | None:
        if self.instance_ids is not None:
            if len(self.instance_ids) != len(self.payloads):
                raise WorkflowInputError("instance_ids", "needs exactly one id per payload")
            return list(self.instance_ids)
        store = context.get("task_state_store")
        if store is None:
            return None
        stored = store.get(BATCH_IDS_KEY)
        if isinstance(stored, list) and stored and not self._any_failed(hook, [str(i) for i in stored]):
            return [str(i) for i in stored]  # an earlier try created (or was creating) these: attach
        ti = context["ti"]
        # A failed batch is never replayed: a new try gets new ids.
        base = derived_instance_id(ti.dag_id, ti.task_id, ti.run_id, _map_index(ti.map_index), ti.try_number)
        ids = [f"{base}-{index}" for index in range(len(self.payloads))]
        store.set(BATCH_IDS_KEY, list(ids))
        return ids

    def _any_failed(self, hook: Any, ids: list[str]) -> bool:
        from airflow_workflow_provider.core.errors import NotFoundError

        for instance_id in ids:
            try:
                if hook.get_execution(self.workflow, instance_id).state.is_failure:
                    return True
            except NotFoundError:
                continue
        return False

    def execute(self, context: Context) -> list[dict[str, Any]]:
        if not isinstance(self.payloads, list) or not self.payloads:
            raise WorkflowInputError("payloads", "must be a non-empty list of JSON objects")
        hook = self.hook
        ids = self._ids(context, hook)
        items = [{"params": p, **({"instance_id": ids[i]} if ids else {})} for i, p in enumerate(self.payloads)]
        started = hook.start_executions_batch(self.workflow, items)
        self._started = started
        context["ti"].xcom_push(key="execution_ids", value=started)
        if not self.wait_for_completion:
            return [{"id": i} for i in started]
        if self.deferrable:
            self._defer(started)
        return self._wait_all(hook, started)

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.time() + self.timeout

    def _defer(self, ids: list[str]) -> None:
        from importlib import import_module

        module, _, name = self.trigger_class_path.rpartition(".")
        trigger = getattr(import_module(module), name)(
            cloudflare_conn_id=self.cloudflare_conn_id,
            workflow=self.workflow,
            execution_ids=ids,
            poll_interval=self.poll_interval,
            deadline=self._deadline(),
            cancel_on_kill=self.cancel_on_kill,
            # Just created: the first look is worth one interval's wait.
            first_check_at=time.time() + self.poll_interval,
        )
        self.log.info("%d Cloudflare instances of %s started; deferring the wait", len(ids), self.workflow)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Back from the triggerer: every instance's outcome, or the failure naming the failed ones."""
        status, ids = event.get("status"), list(event.get("execution_ids") or [])
        self._started = ids
        summaries = {e["id"]: e for e in event.get("executions") or []}
        if status == "success":
            self.log.info("%s", event.get("message"))
            return [summaries[i] for i in ids]
        if status == "failure":
            hook = self.hook
            final = {i: hook.get_execution(self.workflow, i) for i in ids}
            return self._judge(hook, ids, final)
        if status == "timeout":
            still = [i for i in ids if i not in summaries or not ExecutionState(summaries[i]["state"]).is_terminal]
            if self.cancel_on_kill:
                self._cancel(still)
            raise WorkflowWaitTimeout(
                f"{event.get('message')}" + ("; they were terminated" if self.cancel_on_kill else "")
            )
        raise WorkflowExecutionFailed(f"could not follow the batch's instances: {event.get('message')}")

    def _wait_all(self, hook: Any, ids: list[str]) -> list[dict[str, Any]]:
        """Poll from the worker, one GET per instance still running, on a fixed grid."""
        from airflow_workflow_provider.core.events import next_slot

        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        final: dict[str, Any] = {}
        next_check = time.monotonic()
        while True:
            for execution_id in [i for i in ids if i not in final]:
                execution = hook.get_execution(self.workflow, execution_id, patient=True)
                if execution.is_terminal:
                    final[execution_id] = execution
                    self._ended.add(execution_id)
                    self.log.info("instance %s ended %s", execution_id, execution.state.value)
            if len(final) == len(ids):
                break
            if deadline is not None and time.monotonic() >= deadline:
                still = [i for i in ids if i not in final]
                if self.cancel_on_kill:
                    self._cancel(still)
                raise WorkflowWaitTimeout(
                    f"{len(still)} of {len(ids)} instances still running at timeout"
                    + ("; they were terminated" if self.cancel_on_kill else "")
                )
            next_check = next_slot(next_check, self.poll_interval, time.monotonic())
            pause = next_check - time.monotonic()
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
            time.sleep(max(0.0, pause))
        return self._judge(hook, ids, final)

    def _judge(self, hook: Any, ids: list[str], final: dict[str, Any]) -> list[dict[str, Any]]:
        failed = [hook.explain_failure(final[i]) for i in ids if final[i].state.is_failure]
        if failed:
            reasons = "; ".join(f"{e.id}: {e.state.value} ({e.describe_failure()})" for e in failed)
            raise WorkflowExecutionFailed(f"{len(failed)} of {len(ids)} Cloudflare instances failed: {reasons}")
        return [final[i].summary() for i in ids]

    def _cancel(self, ids: list[str]) -> None:
        from airflow_workflow_provider.core.errors import WorkflowApiError

        for execution_id in ids:
            try:
                self.hook.cancel_execution(self.workflow, execution_id)
            except WorkflowApiError as exc:
                self.log.warning("could not terminate instance %s: %s", execution_id, exc)

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._started:
            still = [i for i in self._started if i not in self._ended]
            self.log.info("task killed: terminating %d instances still running", len(still))
            self._cancel(still)
