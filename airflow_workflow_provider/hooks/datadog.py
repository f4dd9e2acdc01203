"""Datadog Workflow Automation (API v2): execute, get, list and cancel workflow instances.

Reference: https://docs.datadoghq.com/api/latest/workflow-automation/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_workflow_provider.connection_forms import DATADOG
from airflow_workflow_provider.core.api import (
    ClientSettings,
    VendorApi,
    require_mapping,
    require_secret,
)
from airflow_workflow_provider.core.errors import ErrorDetails, WorkflowInputError
from airflow_workflow_provider.core.hook import BaseWorkflowsHook
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, parse_retry_after
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.states import ExecutionState as S
from airflow_workflow_provider.core.states import StatusMap
from airflow_workflow_provider.core.validation import path_segment, require_int_in_range

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
# Any well-formed id works for the connection check: a 404 proves the keys were accepted.
CHECK_WORKFLOW_ID = "00000000-0000-0000-0000-000000000000"

# Datadog documents only IN_PROGRESS and CANCELED; its CLI treats IN_PROGRESS or no status as running.
# The other strings are those its client models and UI use; anything else becomes UNKNOWN.
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
    check_target_may_be_missing = True

    def __init__(self, *, site: str, api_key: str, application_key: str, settings: ClientSettings) -> None:
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
        return self._instance(request.context["workflow"], data)

    def _instance(self, workflow: str, data: Mapping[str, Any]) -> WorkflowExecution:
        attributes = data.get("attributes") or {}
        status = (attributes.get("instanceStatus") or {}).get("detailsKind")
        steps = [s for s in attributes.get("stepStateAssociations") or [] if isinstance(s, dict)]
        failed_step = next((s for s in steps if DATADOG_STATUSES.normalize(s.get("status")).is_failure), None)
        return self.execution(
            workflow=str(attributes.get("workflowId") or workflow),
            id=str(data.get("id") or attributes.get("id")),
            vendor_status=status,
            started_at=attributes.get("startTimestamp"),
            ended_at=attributes.get("endTimestamp"),
            output=attributes.get("outputs"),
            steps=steps,
            failing_step=failed_step.get("stepName") if failed_step else None,
            error_message=_step_error(failed_step) or _status_error(attributes.get("instanceStatus")),
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

    def execution_url(self, workflow: str, execution_id: str) -> str:
        app_host = f"app.{self.site}" if self.site in ("datadoghq.com", "datadoghq.eu") else self.site
        return f"https://{app_host}/workflow/{path_segment(workflow)}?instance={path_segment(execution_id)}"

    # {"errors": ["message"]} or {"errors": [{"code": ..., "detail": ...}]}
    def error_details(self, response: ApiResponse) -> ErrorDetails:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return ErrorDetails(message=f"HTTP {response.status} with no error detail")
        messages, code = [], None
        for error in errors:
            if isinstance(error, dict):
                code = code or error.get("code")
                messages.append(str(error.get("detail") or error.get("title") or error.get("code")))
            else:
                messages.append(str(error))
        return ErrorDetails(message="; ".join(messages), code=str(code) if code else None)

    def retry_after(self, response: ApiResponse) -> float | None:
        # Datadog's own clients wait X-RateLimit-Reset (seconds until the window resets).
        reset = parse_retry_after(response.header("X-RateLimit-Reset"))
        return reset if reset is not None else super().retry_after(response)


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


class DatadogWorkflowsHook(BaseWorkflowsHook):
    """Run Datadog Workflow Automation workflows.

    Connection: host = Datadog site (default datadoghq.com), password = API key,
    extra ``application_key_secret`` = application key with ``workflows_read`` and ``workflows_run``.
    """

    connection_form = DATADOG
    default_conn_name = "datadog_workflows_default"
    conn_name_attr = "datadog_conn_id"

    def __init__(self, datadog_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(datadog_conn_id, **kwargs)

    @classmethod
    def build_api(cls, conn: Any, extra: Mapping[str, Any]) -> DatadogApi:
        return DatadogApi(
            site=conn.host or extra.get("site") or DEFAULT_SITE,
            api_key=conn.password,
            # "application_key" is the name this provider used first; still read so existing connections work.
            application_key=extra.get("application_key_secret") or extra.get("application_key"),
            settings=ClientSettings.from_extra(extra),
        )
