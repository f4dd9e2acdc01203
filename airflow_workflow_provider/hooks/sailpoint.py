"""SailPoint Identity Security Cloud Workflows: run, get, list and cancel workflow executions.

Reference: https://developer.sailpoint.com/docs/api/v3/workflows and the per-service Workflows API
(sailpoint-oss/api-specs ``idn/apis/workflows/openapi.yaml``, version v1), whose paths name the service
first (``/workflows/v1/...``, ``/workflow-executions/v1/...``). Every operation asks the per-service path
first and falls back to the versioned one (``/v3/...`` or the connection's ``api_version``) where a tenant
answers 404 for it; what a tenant serves is remembered per process.

Two credentials: the external trigger's own OAuth client may only start the workflow
(``sp:workflow-execute:external``, ``applicationAuth``); reading executions, their history, the list and
cancelling need a user-level credential (``userAuth`` with ``sp:workflow-execution:read``,
``sp:workflow:read`` or ``sp:workflow:manage``), e.g. a personal access token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pendulum

from airflow_workflow_provider.connection_forms import SAILPOINT
from airflow_workflow_provider.core.api import AuthFlow, ClientSettings, VendorApi, require_mapping, require_secret
from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    BadRequestError,
    ErrorDetails,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    WorkflowApiError,
    WorkflowInputError,
    WorkflowTransportError,
)
from airflow_workflow_provider.core.hook import BaseWorkflowsHook, ignore_body
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.ratelimit import RateLimit
from airflow_workflow_provider.core.states import ExecutionState as S
from airflow_workflow_provider.core.states import StatusMap
from airflow_workflow_provider.core.validation import path_segment, require_choice, require_id, require_int_in_range

DEFAULT_API_VERSION = "v3"
# The per-service Workflows API (idn/apis/workflows/openapi.yaml) puts its version after the service name.
PER_SERVICE_VERSION = "v1"
API_VERSION_PATTERN = re.compile(r"^(v\d+|beta)$")
MAX_LIMIT = 250
START_MODES = ("external", "test")
# Refresh the token a little before it expires, so that no request carries one that expires in flight.
TOKEN_REFRESH_MARGIN = 60.0
# A token that lives no longer than the margin is refused: every call would need a new one.
# What an OAuth 2.0 Bearer token may hold (RFC 6750 b64token): anything else could end up in an error
# message of the HTTP library that refuses it as a header value.
BEARER_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
# Used when a token answer leaves out expires_in (SailPoint's tokens live 749 s).
DEFAULT_TOKEN_LIFETIME = 300.0

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
# The execution status enum of the api-specs (WorkflowExecution.yaml), which the list filter takes.
LIST_STATUSES = ("Completed", "Failed", "Canceled", "Queued", "Running")
START_TIME_OPERATORS = ("eq", "lt", "le", "gt", "ge")
# A bound on the deprecated, paged history: 40 pages of 250 events.
MAX_HISTORY_PAGES = 40


class _TokenCache:
    """OAuth tokens shared by every client of one process, per (API, client id, secret).

    A triggerer runs many SailPoint triggers, each with its own hook: sharing the token means one
    token request per client per token lifetime, not one per trigger. The token before the current
    one is kept too, for the redactor only: a request sent with it may still be answered.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float, str | None]] = {}
        # How many tokens were stored per key: callers that found none in one generation share one fetch.
        self._generations: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> tuple[str | None, int]:
        """The token if still fresh, and the generation it was looked up in."""
        with self._lock:
            token, expires_at, _ = self._tokens.get(key, ("", 0.0, None))
            generation = self._generations.get(key, 0)
        return (token if token and time.monotonic() < expires_at else None), generation

    def known(self, key: tuple[str, str, str]) -> tuple[str, ...]:
        """The current and the previous token, even if expired: they must stay known to the redactor."""
        with self._lock:
            token, _, previous = self._tokens.get(key, ("", 0.0, None))
        return tuple(t for t in (token, previous) if t)

    def store(self, key: tuple[str, str, str], token: str, expires_at: float) -> None:
        with self._lock:
            current = self._tokens.get(key)
            previous = current[0] if current and current[0] != token else (current[2] if current else None)
            self._tokens[key] = (token, expires_at, previous)
            self._generations[key] = self._generations.get(key, 0) + 1


_TOKENS = _TokenCache()


# SailPoint's own domains: https://{tenant}.api.identitynow.com, and identitynow-demo.com for demo tenants.
# The OAuth client secret goes to this host: any other is refused (a custom host is what base_url is for).
SAILPOINT_DOMAINS = ("identitynow.com", "identitynow-demo.com")
TENANT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NOT_IN_A_TENANT = re.compile(r"[@:?#\\/\s]")


def tenant_hosts(tenant: str) -> tuple[str, str]:
    """The API host and the UI host for a tenant given as ``acme``, ``acme.api.identitynow.com`` or its URL.

    Only a tenant name, or a host under SailPoint's own domains, is accepted: a crafted value
    (``acme.api.identitynow.com@evil.com``, ``acme.identitynow.com.evil.com``, ``acme.evil.com#.identitynow.com``)
    would send the client secret and then the token to another host.
    """
    field = "host (Tenant)"
    allowed = f"a tenant name such as acme, or its host under {' or '.join(SAILPOINT_DOMAINS)}"
    value = tenant.strip().lower()
    # A pasted URL is fine (the API is always called over https); anything else in it is not.
    value = value.removeprefix("https://").removeprefix("http://").removesuffix("/")
    if not value:
        raise WorkflowInputError(field, "is empty; set the tenant name, e.g. acme")
    if _NOT_IN_A_TENANT.search(value):
        raise WorkflowInputError(field, f"must be {allowed}, without '@ : ? # \\ /', a port, a path or whitespace")
    if "." not in value:
        name, domain = value, SAILPOINT_DOMAINS[0]
    else:
        domain = next((d for d in SAILPOINT_DOMAINS if value.endswith(f".{d}")), "")
        name = value.removesuffix(f".{domain}").removesuffix(".api") if domain else ""
    if not domain or not TENANT_NAME.match(name):
        raise WorkflowInputError(field, f"must be {allowed}")
    return f"{name}.api.{domain}", f"{name}.{domain}"


@dataclass(frozen=True)
class OAuthClient:
    """One OAuth client-credentials pair (an API client or a personal access token), and where it came from."""

    role: str  # what the connection uses it for, as the Test button names it
    id_field: str
    secret_field: str
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    token_key: tuple[str, str, str] = field(repr=False)


class _Routes:
    """Which of an operation's paths each tenant serves, learned from its answers, per process.

    A 404 from a per-service path means either "no such execution" or "this tenant has no such
    path"; only the fallback's answer can tell. Once a service answered a success, a later 404 from
    it is about the execution; once the fallback succeeded where the service answered 404, that
    service is skipped for that tenant.
    """

    def __init__(self) -> None:
        self._served: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    def current_served(self, base_url: str, service: str) -> bool | None:
        with self._lock:
            return self._served.get((base_url, service))

    def learn(self, base_url: str, service: str, *, current_served: bool) -> None:
        with self._lock:
            self._served[(base_url, service)] = current_served

    def forget(self) -> None:
        """Learn afresh (tests start emulators that may reuse a port another tenant had)."""
        with self._lock:
            self._served.clear()


_ROUTES = _Routes()


def forget_sailpoint_routes() -> None:
    """Forget which paths each tenant serves, e.g. between tests whose emulators share a port."""
    _ROUTES.forget()


# What a gateway answers for a path it does not serve.
ROUTE_MISSING_STATUSES = frozenset({404, 405})
FALLBACK = "fallback"
SERVICE = "service"
CLIENT_ROLE = "client"
TRIGGER = "trigger"
USER = "user"


class SailPointApi(VendorApi):
    vendor = "SailPoint"
    status_map = SAILPOINT_STATUSES
    # https://developer.sailpoint.com/docs/api/rate-limit : 100 requests per 10 s per client id (and API version).
    documented_limit = RateLimit(100, 10.0)

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        user_client_id: str | None = None,
        user_client_secret: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        default_start_mode: str = "external",
        settings: ClientSettings,
    ) -> None:
        api_host, self.ui_host = tenant_hosts(tenant)
        if not API_VERSION_PATTERN.match(api_version):
            raise WorkflowInputError("extra.api_version", f"must be v3, beta or v<number>, got {api_version!r}")
        self.api_version = api_version
        self.default_start_mode = require_choice("extra.start_mode", default_start_mode, START_MODES)
        base_url = settings.base_url or f"https://{api_host}"
        self.trigger_client = _client(
            TRIGGER, "login (Client ID)", "password (Client secret)", client_id, client_secret, base_url
        )
        if user_client_id or user_client_secret:
            self.user_client = _client(
                USER,
                "extra.user_client_id",
                "extra.user_client_secret",
                user_client_id,
                user_client_secret,
                base_url,
            )
        else:
            # One credential for everything: then it must be a user-level one (a personal access token).
            self.user_client = self.trigger_client
        super().__init__(
            base_url=base_url,
            settings=settings,
            secrets=(self.trigger_client.client_secret, self.user_client.client_secret),
        )

    @property
    def has_separate_user_client(self) -> bool:
        return self.user_client is not self.trigger_client

    @property
    def secrets(self) -> tuple[str, ...]:
        """The client secrets and each client's current and previous access tokens, for the redactor.

        Only the client secrets go to Airflow's secrets masker: every token added there is one more
        pattern in one regex, recompiled on each addition and kept for the life of the process, so a
        triggerer running for months would hold one per token lifetime (~12 minutes). Tokens are
        kept out of log lines and errors by this redactor instead (and by its ``Bearer`` pattern).
        """
        tokens = dict.fromkeys(
            (*_TOKENS.known(self.user_client.token_key), *_TOKENS.known(self.trigger_client.token_key))
        )
        return (*self._secrets, *tokens)

    # -- OAuth client credentials, cached until shortly before expires_in -------------------------

    # POST /oauth/token  grant_type=client_credentials
    def token_request(
        self, client: OAuthClient | None = None, generation: int = -1, replacing: str | None = None
    ) -> ApiRequest:
        """The token request; callers of one process that need a token at once share one (single flight).

        ``generation``: how many tokens the cache had stored when this caller found none fresh; callers
        of one generation share one answer, a later one (the token expired meanwhile) fetches anew.
        ``replacing``: the token the vendor refused; a refresh after a 401 is not served the answer
        that brought that very token.
        """
        client = client or self.user_client
        refused = hashlib.sha256(replacing.encode()).hexdigest() if replacing else None
        return self.request(
            "get_token",
            "POST",
            "/oauth/token",
            form={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            },
            context={CLIENT_ROLE: client.role, "single_flight": (*client.token_key, generation, refused)},
        )

    def _store_token(self, client: OAuthClient, request: ApiRequest, response: ApiResponse) -> str:
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
        if not BEARER_TOKEN_PATTERN.match(token):
            raise InvalidResponseError(
                vendor=self.vendor,
                operation="get_token",
                status_code=response.status,
                message="the access_token holds characters a Bearer token cannot hold",
            )
        if expires_in is None:
            expires_in = DEFAULT_TOKEN_LIFETIME
        usable = isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
        if not usable or expires_in <= TOKEN_REFRESH_MARGIN:
            raise InvalidResponseError(
                vendor=self.vendor,
                operation="get_token",
                status_code=response.status,
                message=(
                    f"the token's expires_in ({expires_in!r}) is not above the {TOKEN_REFRESH_MARGIN:g} s refresh "
                    "margin: every call would need a new token. Check the access token validity of the OAuth client"
                ),
            )
        _TOKENS.store(client.token_key, token, time.monotonic() + float(expires_in) - TOKEN_REFRESH_MARGIN)
        return token

    def client_for(self, request: ApiRequest) -> OAuthClient:
        return self.trigger_client if request.context.get(CLIENT_ROLE) == TRIGGER else self.user_client

    def _authorized(self, client: OAuthClient, request: ApiRequest) -> AuthFlow:
        token, generation = _TOKENS.get(client.token_key)
        if token is None:
            token_request = self.token_request(client, generation)
            token = self._store_token(client, token_request, (yield token_request))
        response = yield request.with_headers({"Authorization": f"Bearer {token}"})
        if response.status == 401:
            # The token was revoked or expired early: fetch a new one, once.
            token_request = self.token_request(client, _TOKENS.get(client.token_key)[1], replacing=token)
            token = self._store_token(client, token_request, (yield token_request))
            response = yield request.with_headers({"Authorization": f"Bearer {token}"})
        return response

    def auth_flow(self, request: ApiRequest) -> AuthFlow:
        if request.operation == "get_token":
            return (yield request)  # the token request carries its own credentials
        client = self.client_for(request)
        response = yield from self._authorized(client, request)
        fallback = request.context.get(FALLBACK)
        if not isinstance(fallback, ApiRequest):
            return response
        if response.status not in ROUTE_MISSING_STATUSES:
            # Only a success proves the path is served: a 429 or 5xx may come from the gateway in front.
            if response.ok:
                _ROUTES.learn(self.base_url, request.context[SERVICE], current_served=True)
            return response
        if _ROUTES.current_served(self.base_url, request.context[SERVICE]):
            return response  # a 404 about the execution, from a service this tenant serves
        fallback_response = yield from self._authorized(client, fallback)
        if fallback_response.ok:
            _ROUTES.learn(self.base_url, request.context[SERVICE], current_served=False)
        return fallback_response

    # -- endpoints: the per-service path first, the versioned one where a tenant lacks it ----------

    def _versioned(self, path: str) -> str:
        return f"/{self.api_version}{path}"

    def _endpoint(
        self, operation: str, method: str, current: str, legacy: ApiRequest | str, **kwargs: Any
    ) -> ApiRequest:
        """``current`` on the per-service API, falling back to ``legacy`` (a path or a whole request).

        What a tenant serves is learned per service (the first segment: ``workflows``,
        ``workflow-executions``) and separately for ``history-v2``, the newest path.
        """
        fallback = legacy if isinstance(legacy, ApiRequest) else self.request(operation, method, legacy, **kwargs)
        service = "history-v2" if current.endswith("/history-v2") else current.split("/")[1]
        if _ROUTES.current_served(self.base_url, service) is False:
            return fallback
        context = {**kwargs.pop("context", {}), FALLBACK: fallback, SERVICE: service}
        return self.request(operation, method, current, context=context, **kwargs)

    # -- workflows ---------------------------------------------------------------------------------

    # POST /workflows/v1/execute/external/{id}  (v3: /v3/workflows/execute/external/{id}), body {"input": {...}}
    #   with the trigger's own OAuth client;
    # POST /workflows/v1/{id}/test  (v3: /v3/workflows/{id}/test) for a disabled workflow, user-level.
    def start_request(self, workflow: str, payload: Mapping[str, Any] | None, **options: Any) -> ApiRequest:
        mode = require_choice("mode", options.pop("mode", None) or self.default_start_mode, START_MODES)
        if options:
            raise WorkflowInputError(
                ", ".join(sorted(options)), "SailPoint start options are: mode ('external' or 'test')"
            )
        segment = path_segment(workflow)
        tail = f"/execute/external/{segment}" if mode == "external" else f"/{segment}/test"
        return self._endpoint(
            "start_execution",
            "POST",
            f"/workflows/{PER_SERVICE_VERSION}{tail}",
            self._versioned(f"/workflows{tail}"),
            json_body={"input": dict(payload or {})},
            idempotent=False,
            context={CLIENT_ROLE: TRIGGER if mode == "external" else USER},
        )

    def parse_start(self, request: ApiRequest, response: ApiResponse) -> str:
        body = require_mapping(response, response.json(), "start answer")
        execution_id = body.get("workflowExecutionId")
        if execution_id:
            return str(execution_id)
        message = body.get("message")
        if message:
            # 200 with only {"message": "Workflow was not executed externally. Check enabled flag on workflow
            # definition"}: the spec's answer for a workflow that did not run. Nothing started.
            raise BadRequestError(
                vendor=self.vendor,
                operation=request.operation,
                status_code=response.status,
                message=f"the workflow was not started: {message}",
            )
        raise InvalidResponseError(
            vendor=self.vendor,
            operation=request.operation,
            status_code=response.status,
            message="no workflowExecutionId in the answer",
        )

    # GET /workflow-executions/v1/{id}  (v3: /v3/workflow-executions/{id})
    def get_request(self, workflow: str, execution_id: str) -> ApiRequest:
        segment = path_segment(execution_id)
        return self._endpoint(
            "get_execution",
            "GET",
            f"/workflow-executions/{PER_SERVICE_VERSION}/{segment}",
            self._versioned(f"/workflow-executions/{segment}"),
            context={"workflow": workflow},
        )

    def parse_execution(self, request: ApiRequest, response: ApiResponse) -> WorkflowExecution:
        return self._execution(request.context["workflow"], require_mapping(response, response.json(), "execution"))

    def _execution(self, workflow: str, item: Mapping[str, Any]) -> WorkflowExecution:
        # The execution model (id, workflowId, requestId, startTime, closeTime, status) has no output:
        # what a workflow produced is only in its history.
        return self.execution(
            workflow=str(item.get("workflowId") or workflow),
            id=str(item.get("id")),
            vendor_status=item.get("status"),
            started_at=item.get("startTime"),
            ended_at=item.get("closeTime"),
            raw=dict(item),
        )

    # GET /workflow-executions/v1/{id}/history-v2 -> {definition, history, trigger}
    #   where the tenant lacks it: GET /v3/workflow-executions/{id}/history?limit=&offset= -> [event]
    #   (deprecated, removal announced for October 2027), paged.
    def history_request(self, execution_id: str, offset: int | None = None) -> ApiRequest:
        segment = path_segment(execution_id)
        context = {"offset": offset or 0, "limit": MAX_LIMIT}
        legacy = self.request(
            "get_execution_history",
            "GET",
            self._versioned(f"/workflow-executions/{segment}/history"),
            params=[("limit", str(MAX_LIMIT)), ("offset", str(offset or 0))],
            context=context,
        )
        if offset:
            return legacy  # only the deprecated history is paged
        return self._endpoint(
            "get_execution_history",
            "GET",
            f"/workflow-executions/{PER_SERVICE_VERSION}/{segment}/history-v2",
            legacy,
            context=context,
        )

    def parse_history(self, request: ApiRequest, response: ApiResponse) -> HistoryPage:
        body = response.json()
        if isinstance(body, dict):
            # history-v2. Its schema declares ``history`` as one event object; a list of them is what a
            # history is, so both are read.
            history = body.get("history")
            events = history if isinstance(history, list) else [history] if isinstance(history, dict) else []
            return HistoryPage(events=[e for e in events if isinstance(e, dict)], next_offset=None)
        if not isinstance(body, list):
            raise InvalidResponseError(
                vendor=self.vendor,
                operation=request.operation,
                status_code=response.status,
                message="expected a list of events or a history-v2 object",
            )
        offset, limit = request.context.get("offset", 0), request.context.get("limit", MAX_LIMIT)
        return HistoryPage(
            events=[event for event in body if isinstance(event, dict)],
            next_offset=offset + limit if len(body) >= limit else None,
        )

    def explain(self, execution: WorkflowExecution, events: list[dict[str, Any]]) -> WorkflowExecution:
        """The execution with the failing step and error its history names."""
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

    # POST /workflow-executions/v1/{id}/cancel  (v3: /v3/workflow-executions/{id}/cancel) -> 204
    def cancel_request(self, workflow: str, execution_id: str) -> ApiRequest:
        segment = path_segment(execution_id)
        return self._endpoint(
            "cancel_execution",
            "POST",
            f"/workflow-executions/{PER_SERVICE_VERSION}/{segment}/cancel",
            self._versioned(f"/workflow-executions/{segment}/cancel"),
        )

    # GET /workflows/v1/{id}/executions?limit=&offset=&filters=  (v3: /v3/workflows/{id}/executions).
    # Both are deprecated (removal announced for July 2028) and no replacement is published yet.
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
        segment = path_segment(workflow)
        return self._endpoint(
            "list_executions",
            "GET",
            f"/workflows/{PER_SERVICE_VERSION}/{segment}/executions",
            self._versioned(f"/workflows/{segment}/executions"),
            params=params,
            context={"workflow": workflow, "offset": offset, "limit": limit},
        )

    # The list answers WorkflowExecution objects, the same model as GET /workflow-executions/{id}.
    list_items_are_complete = True

    def status_listing(self, vendor_status: str | None) -> dict[str, Any] | None:
        if vendor_status is None:
            return {"limit": MAX_LIMIT}
        return {"status": vendor_status, "limit": MAX_LIMIT} if vendor_status in LIST_STATUSES else None

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

    # GET /workflows/v1?limit=1  (v3: /v3/workflows?limit=1): the user-level credential and sp:workflow:read.
    def check_request(self) -> ApiRequest:
        return self._endpoint(
            "test_connection",
            "GET",
            f"/workflows/{PER_SERVICE_VERSION}",
            self._versioned("/workflows"),
            params=[("limit", "1")],
        )

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


@dataclass(frozen=True)
class HistoryPage:
    events: list[dict[str, Any]]
    next_offset: int | None


def _client(
    role: str, id_field: str, secret_field: str, client_id: str | None, secret: str | None, base: str
) -> OAuthClient:
    client_id = require_secret(id_field, client_id, f"SailPoint {role} OAuth client id")
    secret = require_secret(secret_field, secret, f"SailPoint {role} OAuth client secret")
    key = (base, client_id, hashlib.sha256(secret.encode()).hexdigest())
    return OAuthClient(role, id_field, secret_field, client_id, secret, key)


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

    Connection: host = tenant; login/password = an OAuth client id and secret; extras ``api_version``
    (the versioned API to fall back to, default v3), ``start_mode`` (``external`` by default, or ``test``
    for a disabled workflow) and ``user_client_id``/``user_client_secret``.

    The external trigger's own OAuth client may start the workflow and nothing else. With it in
    login/password, put a user-level credential (a personal access token with
    ``sp:workflow-execution:read`` and ``sp:workflow:read``, or ``sp:workflow:manage``) in the
    ``user_client_*`` extras: it reads, lists and cancels executions and starts test runs. Without
    those extras, login/password serves for everything and must then be a user-level credential.
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
            user_client_id=extra.get("user_client_id"),
            user_client_secret=extra.get("user_client_secret"),
            api_version=str(extra.get("api_version") or DEFAULT_API_VERSION),
            default_start_mode=str(extra.get("start_mode") or "external"),
            settings=ClientSettings.from_extra(extra),
        )

    def get_execution_history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's events (steps started, completed, failed), oldest first, every page of them."""
        require_id("execution_id", execution_id)
        events: list[dict[str, Any]] = []
        offset: int | None = None
        for _ in range(MAX_HISTORY_PAGES):
            page = self._call(self.api.history_request(execution_id, offset), self.api.parse_history)
            events.extend(page.events)
            if page.next_offset is None:
                return events
            offset = page.next_offset
        self.log.warning(
            "execution %s: history longer than %d events; reading only the first ones",
            execution_id,
            len(events),
        )
        return events

    def explain_failure(self, execution: WorkflowExecution) -> WorkflowExecution:
        """The execution with the failing step and error from its history (best effort, as for every vendor)."""
        if not execution.state.is_failure:
            return execution
        try:
            return self.api.explain(execution, self.get_execution_history(execution.id))
        except WorkflowApiError as exc:
            self.log.warning("could not read why execution %s failed: %s", execution.id, exc)
            return execution

    # -- the Test button: each credential for what it is used for ------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        try:
            api = self.api
        except WorkflowInputError as exc:
            return False, f"The connection is not usable: {exc}"
        one_attempt = dataclasses.replace(api.settings.retry_policy, max_attempts=1)
        user = api.user_client
        try:
            self._call(api.check_request(), ignore_body, retry_policy=one_attempt)
        except WorkflowApiError as exc:
            return False, self._explain_check_failure(api, user, exc)
        if not api.has_separate_user_client:
            return True, (
                f"Connected to SailPoint: the credential in {user.id_field} reads workflows. It also starts "
                "them if the workflow's external trigger accepts it; otherwise start in test mode."
            )
        trigger = api.trigger_client
        try:
            self._call(api.token_request(trigger), ignore_body, retry_policy=one_attempt)
        except WorkflowApiError as exc:
            return False, (
                f"The user credential ({user.id_field}) reads workflows, but SailPoint refused the "
                f"trigger client in {trigger.id_field}/{trigger.secret_field}: {exc}"
            )
        return True, (
            f"Connected to SailPoint: the user credential ({user.id_field}) reads workflows and executions; "
            f"the trigger client ({trigger.id_field}) got a token (whether the trigger accepts it shows "
            "only when a workflow starts)."
        )

    @staticmethod
    def _explain_check_failure(api: SailPointApi, client: OAuthClient, exc: WorkflowApiError) -> str:
        which = f"the credentials in {client.id_field}/{client.secret_field}"
        if isinstance(exc, WorkflowTransportError):
            return f"SailPoint API host unreachable at {api.base_url}: {exc}"
        if isinstance(exc, AuthenticationError):
            return f"SailPoint refused {which} (unknown client or wrong secret): {exc}"
        if isinstance(exc, PermissionDeniedError):
            hint = (
                ""
                if api.has_separate_user_client
                else " An external trigger's own OAuth client can only start its workflow: put a personal access "
                "token in extra.user_client_id/user_client_secret for everything else."
            )
            return (
                f"SailPoint accepted {which} but it may not read workflows: it needs a user-level token with "
                f"sp:workflow:read or sp:workflow:manage, and sp:workflow-execution:read to follow executions.{hint} "
                f"({exc})"
            )
        if isinstance(exc, NotFoundError):
            return f"SailPoint does not know the tenant in this connection: {exc}"
        return str(exc)
