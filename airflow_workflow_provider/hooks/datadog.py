"""Datadog Workflow Automation (API v2): execute, get, list and cancel workflow instances.

Reference: https://docs.datadoghq.com/api/latest/workflow-automation/
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_workflow_provider.connection_forms import DATADOG
from airflow_workflow_provider.core.api import (
    ClientSettings,
    VendorApi,
    object_at,
    require_mapping,
    require_secret,
)
from airflow_workflow_provider.core.errors import ErrorDetails, WorkflowApiError, WorkflowInputError
from airflow_workflow_provider.core.hook import BaseWorkflowsHook
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, parse_retry_after
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.ratelimit import RateLimit
from airflow_workflow_provider.core.states import ExecutionState, StatusMap
from airflow_workflow_provider.core.states import ExecutionState as S
from airflow_workflow_provider.core.validation import path_segment, require_int_in_range

log = logging.getLogger(__name__)

DEFAULT_SITE = "datadoghq.com"
SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
)
GOV_SITES = ("ddog-gov.com", "us2.ddog-gov.com")
MAX_PAGE_SIZE = 100
# Every workflow-instance call "requires a registered application key" (the operation descriptions in
# Datadog's OpenAPI document); a key without it gets the same 403 as a wrong key.
ACTIONS_API_ACCESS_DOCS = "https://docs.datadoghq.com/account_management/api-app-keys/#actions-api-access"
# Any well-formed id works for the connection check: a 404 proves the keys were accepted.
CHECK_WORKFLOW_ID = "00000000-0000-0000-0000-000000000000"

# detailsKind: Datadog's recorded answers show only IN_PROGRESS (displayName "Running") and CANCELED
# ("Canceled") (datadog-api-client-python tests/v2/cassettes/test_scenarios/*workflow_instance*.yaml);
# its OpenAPI document lists no value at all. The other strings below are plausible readings, never
# relied on alone: an instance with an endTimestamp is over whatever detailsKind says (see judge_instance).
DATADOG_STATUSES = StatusMap(
    "Datadog",
    {
        "PENDING": S.QUEUED,
        "QUEUED": S.QUEUED,
        "IN_PROGRESS": S.RUNNING,
        "RUNNING": S.RUNNING,
        "WAITING": S.WAITING,
        "PAUSED": S.PAUSED,
        "SUCCEEDED": S.SUCCEEDED,
        "SUCCESS": S.SUCCEEDED,
        "COMPLETED": S.SUCCEEDED,
        "FAILED": S.FAILED,
        "FAILURE": S.FAILED,
        "ERROR": S.FAILED,
        "ERRORED": S.FAILED,
        "CANCELED": S.CANCELED,
        "CANCELLED": S.CANCELED,
    },
    missing=S.RUNNING,
)
# Words that give an undocumented status or display name away ("Succeeded", "Timed out", "Completed with errors").
# Checked in this order: a failure word wins over a success word in the same phrase.
_OUTCOME_WORDS: tuple[tuple[ExecutionState, tuple[str, ...]], ...] = (
    (S.CANCELED, ("cancel",)),
    (S.FAILED, ("fail", "error", "timed out", "timeout", "abort", "reject", "crash")),
    (S.SUCCEEDED, ("succe", "complete", "done", "finish", "pass")),
)
_RUNNING_WORDS = ("progress", "running", "pending", "queued", "waiting", "paused", "start")


def _read_state(text: Any) -> ExecutionState | None:
    """What a status string, a display name or a step state says, if anything (nothing is logged)."""
    if not isinstance(text, str) or not text.strip():
        return None
    known = DATADOG_STATUSES.lookup(text)
    if known is not None:
        return known
    words = text.casefold().replace("_", " ")
    for state, hints in _OUTCOME_WORDS:
        if any(hint in words for hint in hints):
            return state
    if any(hint in words for hint in _RUNNING_WORDS):
        return S.RUNNING
    return None


def judge_instance(attributes: Mapping[str, Any]) -> tuple[ExecutionState, str | None]:
    """The state of a Datadog instance, and a note when it had to be inferred rather than read.

    Datadog documents no terminal status but CANCELED. Its own CLI (DataDog/pup ``workflows run --wait``)
    treats any status but IN_PROGRESS or none as finished so as never to poll forever; here an
    ``endTimestamp`` settles that the instance is over, and the outcome comes from what the answer
    does say: ``detailsKind``, then ``displayName``, then the steps' ``stepState``.
    """
    status = object_at(attributes, "instanceStatus")
    kind, display = status.get("detailsKind"), status.get("displayName")
    read = DATADOG_STATUSES.lookup(kind)
    ended = bool(attributes.get("endTimestamp"))
    if read is not None and (read.is_terminal or not ended):
        return read, None
    said = f"detailsKind {kind!r} (displayName {display!r})"
    if not ended:
        # An undocumented status on an instance with no end: a clear display name may still tell.
        shown = _read_state(kind) or _read_state(display)
        if shown is not None and shown.is_terminal:
            return shown, f"Datadog reported {said} and no endTimestamp; read as {shown.value}"
        DATADOG_STATUSES.normalize(kind)  # logs the unknown status once
        return (shown or S.UNKNOWN), None
    for source, text in (("detailsKind", kind), ("displayName", display)):
        state = _read_state(text)
        if state is not None and state.is_terminal:
            return state, f"Datadog reported {said} with an endTimestamp; read as {state.value} from its {source}"
    step_states = [_read_state(step.get("stepState") or step.get("status")) for step in _steps(attributes)]
    for state in (S.FAILED, S.CANCELED):
        if state in step_states:
            return state, f"Datadog reported {said} with an endTimestamp; read as {state.value} from a step's state"
    if step_states and all(state is S.SUCCEEDED for state in step_states):
        return S.SUCCEEDED, f"Datadog reported {said} with an endTimestamp; every step succeeded"
    return S.FAILED, (
        f"Datadog reported {said} with an endTimestamp and nothing in the answer tells success from failure; "
        f"treated as failed so that no failure passes for a success"
    )


def _steps(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in attributes.get("stepStateAssociations") or [] if isinstance(s, dict)]


def _failing_step(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step a failed or canceled instance stopped at, from what its steps say.

    The first step whose state reads as failed, else as canceled (where a cancel caught the instance),
    else one carrying an error, else the last step whose state reads as neither success nor running
    (an undocumented failure word).
    """
    states = [_read_state(step.get("stepState") or step.get("status")) for step in steps]
    for wanted in (S.FAILED, S.CANCELED):
        for step, state in zip(steps, states, strict=True):
            if state is wanted:
                return step
    with_error = [step for step in steps if step.get("error") or step.get("errors")]
    if with_error:
        return with_error[0]
    unread = [step for step, state in zip(steps, states, strict=True) if state not in (S.SUCCEEDED, S.RUNNING)]
    return unread[-1] if unread else None


def normalize_site(value: str | None) -> str:
    """The Datadog site from what a user may paste: ``datadoghq.eu``, ``app.datadoghq.eu``, a URL."""
    site = (value or DEFAULT_SITE).strip().lower()
    for prefix in ("https://", "http://"):
        site = site.removeprefix(prefix)
    site = site.split("/", 1)[0]
    for prefix in ("app.", "api."):
        site = site.removeprefix(prefix)
    if site in GOV_SITES:
        raise WorkflowInputError(
            "host (Datadog site)",
            f"{site} is a US government site, which does not offer Workflow Automation; "
            f"allowed sites: {', '.join(SITES)}",
        )
    if site not in SITES:
        raise WorkflowInputError("host (Datadog site)", f"unknown site {site!r}; allowed: {', '.join(SITES)}")
    return site


class DatadogApi(VendorApi):
    vendor = "Datadog"
    status_map = DATADOG_STATUSES
    # Datadog publishes no number for these endpoints: every answer announces the limit in
    # X-RateLimit-Limit / -Period, which the rate budget adopts from the first answer on.
    documented_limit = RateLimit(600, 60.0)
    check_target_may_be_missing = True

    def __init__(
        self, *, site: str, api_key: str | None, application_key: str | None, settings: ClientSettings
    ) -> None:
        self.site = normalize_site(site)
        self._api_key = require_secret("password (API key)", api_key, "Datadog API key")
        self._application_key = require_secret(
            "extra.application_key_secret", application_key, "Datadog application key"
        )
        super().__init__(
            base_url=settings.base_url or f"https://api.{self.site}",
            settings=settings,
            secrets=(self._api_key, self._application_key),
        )

    def auth_headers(self) -> dict[str, str]:
        return {"DD-API-KEY": self._api_key, "DD-APPLICATION-KEY": self._application_key}

    @staticmethod
    def _instances(workflow: str) -> str:
        return f"/api/v2/workflows/{path_segment(workflow)}/instances"

    # POST /api/v2/workflows/{workflow_id}/instances
    def start_request(self, workflow: str, payload: Mapping[str, Any] | None, **options: Any) -> ApiRequest:
        if options:
            raise WorkflowInputError(", ".join(sorted(options)), "Datadog takes no start options besides the payload")
        return self.request(
            "start_execution",
            "POST",
            self._instances(workflow),
            json_body={"meta": {"payload": dict(payload or {})}},
            idempotent=False,
        )

    def parse_start(self, request: ApiRequest, response: ApiResponse) -> str:
        data = require_mapping(response, (response.json() or {}).get("data"), "data")
        return str(data["id"])

    # GET /api/v2/workflows/{workflow_id}/instances/{instance_id}
    def get_request(self, workflow: str, execution_id: str) -> ApiRequest:
        return self.request(
            "get_execution",
            "GET",
            f"{self._instances(workflow)}/{path_segment(execution_id)}",
            context={"workflow": workflow},
        )

    def parse_execution(self, request: ApiRequest, response: ApiResponse) -> WorkflowExecution:
        body = require_mapping(response, response.json(), "instance")
        data = require_mapping(response, body.get("data"), "data")
        return self._instance(request.context["workflow"], data, announce=True)

    # {"data": {"id", "type": "instances", "attributes": {instanceStatus, startTimestamp, endTimestamp, outputs,
    #   stepStateAssociations: [{"stepName", "stepState"}]}, "relationships": {"workflow": {"data": {"id"}}}}}
    def _instance(self, workflow: str, data: Mapping[str, Any], *, announce: bool = False) -> WorkflowExecution:
        """One instance; ``announce`` logs an inferred state (a followed instance, not every listed one)."""
        attributes = object_at(data, "attributes")
        instance_id = str(data.get("id") or attributes.get("id"))
        state, note = judge_instance(attributes)
        if note:
            log.log(logging.WARNING if announce else logging.DEBUG, "Datadog instance %s: %s", instance_id, note)
        steps = _steps(attributes)
        failed_step = _failing_step(steps) if state.is_failure else None
        status = object_at(attributes, "instanceStatus")
        return self.execution(
            workflow=_related_id(data, "workflow") or workflow,
            id=instance_id,
            state=state,
            state_note=note,
            vendor_status=status.get("detailsKind"),
            started_at=attributes.get("startTimestamp"),
            ended_at=attributes.get("endTimestamp"),
            output=attributes.get("outputs"),
            steps=steps,
            failing_step=failed_step.get("stepName") if failed_step else None,
            error_message=_step_error(failed_step) or _status_error(status),
            raw=dict(data),
        )

    # PUT /api/v2/workflows/{workflow_id}/instances/{instance_id}/cancel
    def cancel_request(self, workflow: str, execution_id: str) -> ApiRequest:
        return self.request(
            "cancel_execution", "PUT", f"{self._instances(workflow)}/{path_segment(execution_id)}/cancel"
        )

    # GET /api/v2/workflows/{workflow_id}/instances?page[size]=&page[number]=  (0-based pages)
    def list_request(self, workflow: str, page: Any, filters: Mapping[str, Any]) -> ApiRequest:
        unknown = set(filters) - {"page_size"}
        if unknown:
            raise WorkflowInputError(", ".join(sorted(unknown)), "Datadog lists instances with no filter but page_size")
        size = require_int_in_range("page_size", filters.get("page_size", MAX_PAGE_SIZE), 1, MAX_PAGE_SIZE)
        number = page or 0
        return self.request(
            "list_executions",
            "GET",
            self._instances(workflow),
            params=[("page[size]", str(size)), ("page[number]", str(number))],
            context={"workflow": workflow, "page": number, "size": size},
        )

    def status_listing(self, vendor_status: str | None) -> dict[str, Any] | None:
        # No status filter: the whole list, newest first, 100 a page; the poller stops once it saw its executions.
        return {"page_size": MAX_PAGE_SIZE}

    def parse_list(self, request: ApiRequest, response: ApiResponse) -> Page:
        body = require_mapping(response, response.json(), "instance list")
        items = [item for item in body.get("data") or [] if isinstance(item, dict)]
        executions = [self._instance(request.context["workflow"], item) for item in items]
        number, size = request.context["page"], request.context["size"]
        total = ((body.get("meta") or {}).get("page") or {}).get("totalCount")
        more = (number + 1) * size < total if isinstance(total, int) else len(items) == size
        return Page(executions=executions, next_page=number + 1 if more and items else None)

    def check_request(self) -> ApiRequest:
        return self.request("test_connection", "GET", self._instances(CHECK_WORKFLOW_ID), params=[("page[size]", "1")])

    # GET /api/v1/validate  (checks the API key alone: {"valid": true}, or 403 {"errors": ["Forbidden"]})
    def forbidden_check_request(self) -> ApiRequest:
        # Datadog answers 403 {"errors": ["Forbidden"]} for a wrong API key and for a missing permission alike.
        return self.request("validate_api_key", "GET", "/api/v1/validate")

    def explain_forbidden(self, error: WorkflowApiError, key_accepted: bool | None) -> str:
        if key_accepted is False:
            return (
                f"Datadog refused the API key (403): check the API key and that the site ({self.site}) is the "
                f"one the key belongs to. {error}"
            )
        application_key = (
            "the application key is wrong, lacks the workflows_read / workflows_run permissions, or is not "
            f"registered for Actions API access ({ACTIONS_API_ACCESS_DOCS})"
        )
        if key_accepted:
            return f"Datadog accepted the API key but refused the request (403): {application_key}. {error}"
        return f"Datadog refused the request (403): either the API key is wrong, or {application_key}. {error}"

    def execution_url(self, workflow: str, execution_id: str) -> str:
        app_host = f"app.{self.site}" if self.site in ("datadoghq.com", "datadoghq.eu") else self.site
        return f"https://{app_host}/workflow/{path_segment(workflow)}?instance={path_segment(execution_id)}"

    # {"errors": ["message"]} or {"errors": [{"code": ..., "detail": ...}]}
    def error_details(self, response: ApiResponse) -> ErrorDetails:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        messages, code = [], None
        for error in errors or []:
            if isinstance(error, dict):
                code = code or error.get("code")
                messages.append(str(error.get("detail") or error.get("title") or error.get("code")))
            else:
                messages.append(str(error))
        message = "; ".join(messages) or f"HTTP {response.status} with no error detail"
        if response.status == 403:
            message += (
                " (Datadog answers 403 both to a wrong API or application key and to an application key without "
                "workflows_read / workflows_run or not registered for Actions API access)"
            )
        return ErrorDetails(message=message, code=str(code) if code else None)

    def retry_after(self, response: ApiResponse) -> float | None:
        # Datadog's own clients wait X-RateLimit-Reset (seconds until the window resets).
        reset = parse_retry_after(response.header("X-RateLimit-Reset"))
        return reset if reset is not None else super().retry_after(response)


def _related_id(data: Mapping[str, Any], name: str) -> str | None:
    """``relationships.<name>.data.id`` of a JSON:API resource."""
    related = ((data.get("relationships") or {}).get(name) or {}).get("data")
    return str(related["id"]) if isinstance(related, dict) and related.get("id") else None


def _step_error(step: Mapping[str, Any] | None) -> str | None:
    if not step:
        return None
    error = step.get("error") or step.get("errors")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)
    if isinstance(error, list) and error:
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in error)
    return str(error) if error else None


def _status_error(instance_status: Any) -> str | None:
    if not isinstance(instance_status, dict):
        return None
    details = instance_status.get("details") or instance_status.get("error")
    if isinstance(details, dict):
        return str(details.get("message") or details.get("error") or details) or None
    return str(details) if details else None


class DatadogWorkflowsHook(BaseWorkflowsHook[DatadogApi]):
    """Run Datadog Workflow Automation workflows.

    Connection: host = Datadog site (default datadoghq.com), password = API key,
    extra ``application_key_secret`` = application key with ``workflows_read`` and ``workflows_run``,
    registered for Actions API access (Datadog refuses every instance call otherwise).
    """

    connection_form = DATADOG
    default_conn_name = "datadog_workflows_default"
    conn_name_attr = "datadog_conn_id"

    def __init__(self, datadog_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(datadog_conn_id, **kwargs)

    @classmethod
    def build_api(cls, conn: Any, extra: Mapping[str, Any]) -> DatadogApi:
        if "application_key" in extra:
            # The name this provider used first. Airflow masks extras by name only and this one matches
            # none of its sensitive words: the key shows in clear in the UI, the REST API and the CLI.
            raise WorkflowInputError(
                "extra.application_key",
                "is no longer read because Airflow shows it unmasked; rename the extra to application_key_secret "
                "(and rotate the key if others could see the connection)",
            )
        return DatadogApi(
            site=conn.host or extra.get("site") or DEFAULT_SITE,
            api_key=conn.password,
            application_key=extra.get("application_key_secret"),
            settings=ClientSettings.from_extra(extra),
        )
