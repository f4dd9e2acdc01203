"""SailPoint Identity Security Cloud Workflows (API v3): run, get, list and cancel workflow executions.

Reference: https://developer.sailpoint.com/docs/api/v3/workflows
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pendulum

from airflow_workflow_provider.connection_forms import SAILPOINT
from airflow_workflow_provider.core.api import AuthFlow, ClientSettings, VendorApi, require_mapping, require_secret
from airflow_workflow_provider.core.errors import ErrorDetails, InvalidResponseError, WorkflowInputError
from airflow_workflow_provider.core.hook import BaseWorkflowsHook
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.states import ExecutionState as S
from airflow_workflow_provider.core.states import StatusMap
from airflow_workflow_provider.core.validation import path_segment, require_choice, require_id, require_int_in_range

DEFAULT_API_VERSION = "v3"
API_VERSION_PATTERN = re.compile(r"^(v\d+|beta)$")
MAX_LIMIT = 250
START_MODES = ("external", "test")
# Refresh the token a little before it expires, so that no request carries one that expires in flight.
TOKEN_REFRESH_MARGIN = 60.0

SAILPOINT_STATUSES = StatusMap(
    "SailPoint",
    {
        "Queued": S.QUEUED,
        "Running": S.RUNNING,
        "Executing": S.RUNNING,
        "Completed": S.SUCCEEDED,
        "Failed": S.FAILED,
        "Canceled": S.CANCELED,
        "Cancelled": S.CANCELED,
    },
)
LIST_STATUSES = ("Completed", "Failed", "Canceled", "Executing", "Queued", "Running")
START_TIME_OPERATORS = ("eq", "lt", "le", "gt", "ge")


class _TokenCache:
    """OAuth tokens shared by every client of one process, per (API, client id, secret).

    A triggerer runs many SailPoint triggers, each with its own hook: sharing the token means one
    token request per client per token lifetime, not one per trigger (and one new pattern for the
    secrets masker, not hundreds).
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            token, expires_at = self._tokens.get(key, ("", 0.0))
        return token if token and time.monotonic() < expires_at else None

    def peek(self, key: tuple[str, str, str]) -> str | None:
        """The token even if expired: it must stay known to the redactor."""
        with self._lock:
            return self._tokens.get(key, ("", 0.0))[0] or None

    def store(self, key: tuple[str, str, str], token: str, expires_at: float) -> None:
        with self._lock:
            self._tokens[key] = (token, expires_at)


_TOKENS = _TokenCache()


def tenant_hosts(tenant: str) -> tuple[str, str]:
    """The API host and the UI host for a tenant given as ``acme``, ``acme.api.identitynow.com`` or a URL."""
    value = tenant.strip().lower()
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    value = value.split("/", 1)[0]
    if not value:
        raise WorkflowInputError("host (Tenant)", "is empty; set the tenant name, e.g. acme")
    if "." not in value:
        require_id("host (Tenant)", value, max_length=63)
        return f"{value}.api.identitynow.com", f"{value}.identitynow.com"
    name, _, domain = value.partition(".")
    domain = domain.removeprefix("api.")
    return f"{name}.api.{domain}", f"{name}.{domain}"


class SailPointApi(VendorApi):
    vendor = "SailPoint"
    status_map = SAILPOINT_STATUSES

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        api_version: str = DEFAULT_API_VERSION,
        default_start_mode: str = "external",
        settings: ClientSettings,
    ) -> None:
        api_host, self.ui_host = tenant_hosts(tenant)
        self._client_id = require_secret("login (Client ID)", client_id, "SailPoint OAuth client id")
        self._client_secret = require_secret("password (Client secret)", client_secret, "SailPoint OAuth client secret")
        if not API_VERSION_PATTERN.match(api_version):
            raise WorkflowInputError("extra.api_version", f"must be v3, beta or v<number>, got {api_version!r}")
        self.api_version = api_version
        self.default_start_mode = require_choice("extra.start_mode", default_start_mode, START_MODES)
        self._token_key = (settings.base_url or api_host, client_id, hashlib.sha256(client_secret.encode()).hexdigest())
        super().__init__(
            base_url=settings.base_url or f"https://{api_host}",
            settings=settings,
            secrets=(self._client_secret,),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        token = _TOKENS.peek(self._token_key)
        return (*self._secrets, *((token,) if token else ()))

    # -- OAuth client credentials, cached until shortly before expires_in -------------------------

    # POST /oauth/token  grant_type=client_credentials
    def token_request(self) -> ApiRequest:
        return self.request(
            "get_token",
            "POST",
            "/oauth/token",
            form={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
        )

    def _store_token(self, request: ApiRequest, response: ApiResponse) -> str:
        self.raise_for_error(request, response)
        body = require_mapping(response, response.json(), "token answer")
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise InvalidResponseError(
                vendor=self.vendor,
                operation="get_token",
                status_code=response.status,
                message="no access_token in the answer",
            )
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 300.0
        _TOKENS.store(self._token_key, token, time.monotonic() + lifetime - min(TOKEN_REFRESH_MARGIN, lifetime / 10))
        return token

    def _cached_token(self) -> str | None:
        return _TOKENS.get(self._token_key)

    def auth_flow(self, request: ApiRequest) -> AuthFlow:
        token = self._cached_token()
        if token is None:
            token_request = self.token_request()
            token = self._store_token(token_request, (yield token_request))
        response = yield request.with_headers({"Authorization": f"Bearer {token}"})
        if response.status == 401:
            # The token was revoked or expired early: fetch a new one, once.
            token_request = self.token_request()
            token = self._store_token(token_request, (yield token_request))
            response = yield request.with_headers({"Authorization": f"Bearer {token}"})
        return response

    # -- workflows ---------------------------------------------------------------------------------

    def _path(self, path: str) -> str:
        return f"/{self.api_version}{path}"

    # POST /v3/workflows/execute/external/{id}  or  POST /v3/workflows/{id}/test, body {"input": {...}}
    def start_request(self, workflow: str, payload: Mapping[str, Any] | None, **options: Any) -> ApiRequest:
        mode = require_choice("mode", options.pop("mode", None) or self.default_start_mode, START_MODES)
        if options:
            raise WorkflowInputError(
                ", ".join(sorted(options)), "SailPoint start options are: mode ('external' or 'test')"
            )
        path = (
            f"/workflows/execute/external/{path_segment(workflow)}"
            if mode == "external"
            else f"/workflows/{path_segment(workflow)}/test"
        )
        return self.request(
            "start_execution", "POST", self._path(path), json_body={"input": dict(payload or {})}, idempotent=False
        )

    def parse_start(self, request: ApiRequest, response: ApiResponse) -> str:
        body = require_mapping(response, response.json(), "start answer")
        execution_id = body.get("workflowExecutionId")
        if not execution_id:
            raise InvalidResponseError(
                vendor=self.vendor,
                operation=request.operation,
                status_code=response.status,
                message="no workflowExecutionId in the answer",
            )
        return str(execution_id)

    # GET /v3/workflow-executions/{id}
    def get_request(self, workflow: str, execution_id: str) -> ApiRequest:
        return self.request(
            "get_execution",
            "GET",
            self._path(f"/workflow-executions/{path_segment(execution_id)}"),
            context={"workflow": workflow},
        )

    def parse_execution(self, request: ApiRequest, response: ApiResponse) -> WorkflowExecution:
        return self._execution(request.context["workflow"], require_mapping(response, response.json(), "execution"))

    def _execution(self, workflow: str, item: Mapping[str, Any]) -> WorkflowExecution:
        return self.execution(
            workflow=str(item.get("workflowId") or workflow),
            id=str(item.get("id")),
            vendor_status=item.get("status"),
            started_at=item.get("startTime"),
            ended_at=item.get("closeTime"),
            output=item.get("output"),
            raw=dict(item),
        )

    # GET /v3/workflow-executions/{id}/history : the events that say which step failed and why
    def history_request(self, execution_id: str) -> ApiRequest:
        return self.request(
            "get_execution_history", "GET", self._path(f"/workflow-executions/{path_segment(execution_id)}/history")
        )

    def parse_history(self, request: ApiRequest, response: ApiResponse) -> list[dict[str, Any]]:
        events = response.json()
        if not isinstance(events, list):
            raise InvalidResponseError(
                vendor=self.vendor, operation=request.operation, status_code=response.status, message="expected a list"
            )
        return [event for event in events if isinstance(event, dict)]

    def failure_detail_request(self, execution: WorkflowExecution) -> ApiRequest | None:
        return self.history_request(execution.id)

    def parse_failure_detail(
        self, request: ApiRequest, response: ApiResponse, execution: WorkflowExecution
    ) -> WorkflowExecution:
        events = self.parse_history(request, response)
        step, error = None, None
        for event in events:
            if "Failed" not in str(event.get("type", "")):
                continue
            attributes = event.get("attributes") or {}
            step = step or attributes.get("displayName") or attributes.get("stepId")
            error = error or _history_error(attributes)
        return execution.model_copy(
            update={
                "failing_step": step or execution.failing_step,
                "error_message": error or execution.error_message,
                "steps": events,
            }
        )

    # POST /v3/workflow-executions/{id}/cancel  -> 204
    def cancel_request(self, workflow: str, execution_id: str) -> ApiRequest:
        return self.request(
            "cancel_execution", "POST", self._path(f"/workflow-executions/{path_segment(execution_id)}/cancel")
        )

    # GET /v3/workflows/{id}/executions?limit=&offset=&filters=
    def list_request(self, workflow: str, page: Any, filters: Mapping[str, Any]) -> ApiRequest:
        allowed = {"status", "limit", *(f"start_time_{op}" for op in START_TIME_OPERATORS)}
        unknown = set(filters) - allowed
        if unknown:
            raise WorkflowInputError(
                ", ".join(sorted(unknown)), f"SailPoint list filters are: {', '.join(sorted(allowed))}"
            )
        limit = require_int_in_range("limit", filters.get("limit", MAX_LIMIT), 1, MAX_LIMIT)
        offset = page or 0
        expressions = []
        if filters.get("status") is not None:
            expressions.append(f'status eq "{require_choice("status", filters["status"], LIST_STATUSES)}"')
        for op in START_TIME_OPERATORS:
            value = filters.get(f"start_time_{op}")
            if value is not None:
                expressions.append(f'start_time {op} "{_iso(f"start_time_{op}", value)}"')
        params = [("limit", str(limit)), ("offset", str(offset))]
        if expressions:
            params.append(("filters", " and ".join(expressions)))
        return self.request(
            "list_executions",
            "GET",
            self._path(f"/workflows/{path_segment(workflow)}/executions"),
            params=params,
            context={"workflow": workflow, "offset": offset, "limit": limit},
        )

    def parse_list(self, request: ApiRequest, response: ApiResponse) -> Page:
        body = response.json()
        if not isinstance(body, list):
            raise InvalidResponseError(
                vendor=self.vendor,
                operation=request.operation,
                status_code=response.status,
                message="expected a JSON list",
            )
        executions = [self._execution(request.context["workflow"], item) for item in body if isinstance(item, dict)]
        offset, limit = request.context["offset"], request.context["limit"]
        return Page(executions=executions, next_page=offset + limit if len(body) >= limit else None)

    # GET /v3/workflows?limit=1 : needs a token and the workflow read scope.
    def check_request(self) -> ApiRequest:
        return self.request("test_connection", "GET", self._path("/workflows"), params=[("limit", "1")])

    def execution_url(self, workflow: str, execution_id: str) -> str:
        return f"https://{self.ui_host}/ui/a/admin/workflows/{path_segment(workflow)}"

    # {"detailCode", "trackingId", "messages": [{"text"}]}; 401 {"error"}; 429 {"message"}
    def error_details(self, response: ApiResponse) -> ErrorDetails:
        body = response.json()
        if not isinstance(body, dict):
            return ErrorDetails(message=f"HTTP {response.status} with no error detail")
        texts = [str(m.get("text")) for m in body.get("messages") or [] if isinstance(m, dict) and m.get("text")]
        causes = [str(c.get("text")) for c in body.get("causes") or [] if isinstance(c, dict) and c.get("text")]
        message = "; ".join(texts + causes) or body.get("error_description") or body.get("error") or body.get("message")
        return ErrorDetails(
            message=str(message or f"HTTP {response.status} with no error detail"),
            code=body.get("detailCode") or (body.get("error") if "error_description" in body else None),
            tracking_id=body.get("trackingId"),
        )


def _history_error(attributes: Mapping[str, Any]) -> str | None:
    for key in ("error", "failureReason", "reason", "message"):
        value = attributes.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("error")
        if value:
            return str(value)
    return None


def _iso(field: str, value: Any) -> str:
    """A date-time for a filter expression, always re-formatted: nothing the caller wrote reaches the filter as is."""
    if isinstance(value, datetime):
        moment = pendulum.instance(value)
    elif isinstance(value, str) and value:
        try:
            parsed = pendulum.parse(value, tz="UTC")
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            parsed = None
        if not isinstance(parsed, pendulum.DateTime):
            raise WorkflowInputError(
                field, f"must be an ISO 8601 date-time such as 2026-11-23T00:00:00Z, got {value!r}"
            )
        moment = parsed
    else:
        raise WorkflowInputError(field, f"must be a datetime or an ISO 8601 string, got {value!r}")
    return moment.in_timezone("UTC").to_iso8601_string()


class SailPointWorkflowsHook(BaseWorkflowsHook[SailPointApi]):
    """Run SailPoint Identity Security Cloud workflows.

    Connection: host = tenant, login = client id, password = client secret; extras ``api_version``
    (default v3) and ``start_mode`` (``external`` by default, or ``test`` for a disabled workflow).
    For an external trigger, use the OAuth client that the trigger created.
    """

    connection_form = SAILPOINT
    default_conn_name = "sailpoint_workflows_default"
    conn_name_attr = "sailpoint_conn_id"

    def __init__(self, sailpoint_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(sailpoint_conn_id, **kwargs)

    @classmethod
    def build_api(cls, conn: Any, extra: Mapping[str, Any]) -> SailPointApi:
        return SailPointApi(
            tenant=conn.host or "",
            client_id=conn.login,
            client_secret=conn.password,
            api_version=str(extra.get("api_version") or DEFAULT_API_VERSION),
            default_start_mode=str(extra.get("start_mode") or "external"),
            settings=ClientSettings.from_extra(extra),
        )

    def get_execution_history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's events (steps started, completed, failed), oldest first."""
        return self._call(self.api.history_request(require_id("execution_id", execution_id)), self.api.parse_history)
