"""SailPoint Identity Security Cloud Workflows API, as the emulator answers it under ``/sailpoint``.

Two generations of paths, as tenants serve them: the per-service Workflows API (``/workflows/v1/...``,
``/workflow-executions/v1/...``, with ``history-v2``; sailpoint-oss/api-specs ``idn/apis/workflows``) and
the versioned API (``/v3/...``, ``/beta/...``, ``/v2025/...``). ``serve_per_service(False)`` makes the
emulator a tenant without the per-service paths (they answer 404).

Auth: OAuth2 client credentials at ``POST /oauth/token`` (form or Basic), then ``Authorization: Bearer``.
Two clients: a user-level one (a personal access token, every operation) and an external trigger's own
client, whose token may only call ``execute/external`` (any other call answers 403), as the api-specs'
security sections say (``applicationAuth`` only there; ``userAuth`` with read or manage scopes elsewhere).
Errors: ``{"detailCode", "trackingId", "messages": [{"locale", "localeOrigin", "text"}], "causes"}``, and
``{"error": ...}`` for 401. Statuses: Queued, Running, Completed, Failed, Canceled (the api-specs' enum). Lists page by
``limit``/``offset`` (``count=true`` adds ``X-Total-Count``) and take ``filters``.
"""

from __future__ import annotations

import base64
import binascii
import http
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from aiohttp import web

from airflow_workflow_provider.testing.emulator.common import (
    ApiError,
    Call,
    Route,
    VendorApi,
    int_param,
    iso,
    json_body,
    json_response,
    parse_iso,
    route,
    same,
)
from airflow_workflow_provider.testing.emulator.state import (
    CANCELED,
    FAILED,
    PAUSED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    WAITING,
    EmulatorState,
    Execution,
)

VERSION = r"/(?P<version>v\d+|beta)"
WORKFLOW = VERSION + r"/workflows/(?P<workflow>[^/]+)"
EXECUTION = VERSION + r"/workflow-executions/(?P<id>[^/]+)"
# The per-service Workflows API: the service first, then its version.
SERVICE_WORKFLOWS = r"/workflows/v1"
SERVICE_WORKFLOW = SERVICE_WORKFLOWS + r"/(?P<workflow>[^/]+)"
SERVICE_EXECUTION = r"/workflow-executions/v1/(?P<id>[^/]+)"
NOT_EXECUTED = "Workflow was not executed externally. Check enabled flag on workflow definition"
FORBIDDEN = "The server understood the request but refuses to authorize it."

DETAIL_CODES = {
    400: "400.1 Bad Request Content",
    403: "403 Forbidden",
    404: "404 Not found",
    405: "405 Method Not Allowed",
    500: "500.0 Internal Fault",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}
JWT_ERROR = "JWT validation failed: JWT is expired"
FILTER_CLAUSE = re.compile(r'\s*(\w+)\s+(\w+)\s+"([^"]*)"\s*')
FILTER_AND = re.compile(r"and\s+", re.IGNORECASE)


class SailPointApi(VendorApi):
    NAME = "sailpoint"
    # 100 requests per 10 s per client id: https://developer.sailpoint.com/docs/api/rate-limit
    DOCUMENTED_LIMIT = (100, 10.0)
    STATUSES = {
        QUEUED: "Queued",
        RUNNING: "Running",
        PAUSED: "Running",
        WAITING: "Running",
        SUCCEEDED: "Completed",
        FAILED: "Failed",
        CANCELED: "Canceled",
    }

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(state)
        # Access token -> expiry (monotonic); a reset keeps them valid, revoke_tokens() forgets them.
        self._tokens: dict[str, float] = {}
        # Tokens of the external trigger's client: they may only start the trigger's workflow.
        self._trigger_tokens: set[str] = set()
        self.per_service = True

    def serve_per_service(self, enabled: bool) -> None:
        """Whether this tenant serves the per-service paths (``/workflows/v1``...) besides the versioned ones."""
        self.per_service = enabled

    def _service(self, handler: Callable[[Call], web.Response]) -> Callable[[Call], web.Response]:
        def answer(call: Call) -> web.Response:
            if not self.per_service:
                raise self.no_route()
            return handler(call)

        return answer

    def routes(self) -> list[Route]:
        service = self._service
        return [
            # GET /workflows/v1
            route("GET", SERVICE_WORKFLOWS, "list_workflows", service(self.list_workflows)),
            # POST /workflows/v1/execute/external/{id}
            route(
                "POST",
                SERVICE_WORKFLOWS + r"/execute/external/(?P<workflow>[^/]+)",
                "start",
                service(self.execute_external),
            ),
            # POST /workflows/v1/{id}/test
            route("POST", SERVICE_WORKFLOW + r"/test", "start", service(self.test_workflow)),
            # GET /workflows/v1/{id}/executions
            route("GET", SERVICE_WORKFLOW + r"/executions", "list", service(self.list_executions)),
            # GET /workflow-executions/v1/{id}
            route("GET", SERVICE_EXECUTION, "get", service(self.get_execution)),
            # GET /workflow-executions/v1/{id}/history
            route("GET", SERVICE_EXECUTION + r"/history", "history", service(self.get_history)),
            # GET /workflow-executions/v1/{id}/history-v2
            route("GET", SERVICE_EXECUTION + r"/history-v2", "history", service(self.get_history_v2)),
            # POST /workflow-executions/v1/{id}/cancel
            route("POST", SERVICE_EXECUTION + r"/cancel", "cancel", service(self.cancel_execution)),
            # POST /oauth/token
            route("POST", r"/oauth/token", "token", self.issue_token),
            # GET /v3/workflows
            route("GET", VERSION + r"/workflows", "list_workflows", self.list_workflows),
            # POST /v3/workflows/{id}/test
            route("POST", WORKFLOW + r"/test", "start", self.test_workflow),
            # POST /v3/workflows/execute/external/{id}
            route("POST", VERSION + r"/workflows/execute/external/(?P<workflow>[^/]+)", "start", self.execute_external),
            # GET /v3/workflow-executions/{id}
            route("GET", EXECUTION, "get", self.get_execution),
            # GET /v3/workflow-executions/{id}/history
            route("GET", EXECUTION + r"/history", "history", self.get_history),
            # POST /v3/workflow-executions/{id}/cancel
            route("POST", EXECUTION + r"/cancel", "cancel", self.cancel_execution),
            # GET /v3/workflows/{id}/executions
            route("GET", WORKFLOW + r"/executions", "list", self.list_executions),
        ]

    def revoke_tokens(self) -> None:
        self._tokens.clear()
        self._trigger_tokens.clear()

    # -- envelope ------------------------------------------------------------------------------------
    def credential(self, call: Call) -> str:
        """The client id: of the token request's form, or of the client the bearer token was issued to."""
        if call.operation == "token":
            fields = parse_qs(call.body.decode("utf-8", "replace"))
            return "client:" + (fields.get("client_id") or [""])[0]
        _, _, token = (call.headers.get("Authorization") or "").partition(" ")
        return "client:" + self.credentials.sailpoint_client_id if token.strip() in self._tokens else token

    def authenticate(self, call: Call) -> web.Response | None:
        if call.operation == "token":
            return None
        scheme, _, token = (call.headers.get("Authorization") or "").partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= call.now:
            return json_response(401, {"error": JWT_ERROR})
        if token.strip() in self._trigger_tokens and "/execute/external/" not in call.path:
            # applicationAuth with sp:workflow-execute:external: nothing but the external trigger.
            raise ApiError(403, FORBIDDEN)
        return None

    def error(self, exc: ApiError) -> web.Response:
        if exc.status == 401:
            return json_response(401, {"error": exc.message})
        body = {
            "detailCode": DETAIL_CODES.get(exc.status, f"{exc.status} {http.HTTPStatus(exc.status).phrase}"),
            "trackingId": uuid.uuid4().hex,
            "messages": [{"locale": "en-US", "localeOrigin": "DEFAULT", "text": exc.message}],
            "causes": [],
        }
        return json_response(exc.status, body)

    def too_many_requests(self, headers: dict[str, str]) -> web.Response:
        return json_response(429, {"message": "Rate Limit Exceeded"}, headers)

    def status_fault(self, call: Call, status: int) -> web.Response:
        if status == 401 and call.operation == "token":
            return json_response(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        if status == 401:
            return json_response(401, {"error": JWT_ERROR})
        return super().status_fault(call, status)

    # -- token, workflows and executions -------------------------------------------------------------
    def issue_token(self, call: Call) -> web.Response:
        # The form carries the client secret: it is parsed here and never stored or logged.
        fields = parse_qs(call.body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {name: values[0] for name, values in fields.items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = (call.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, client_secret = unquote(basic_id), unquote(basic_secret)
        if form.get("grant_type") != "client_credentials":
            body = {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}
            return json_response(400, body)
        creds = self.credentials
        user = same(client_id, creds.sailpoint_client_id) and same(client_secret, creds.sailpoint_client_secret)
        trigger = same(client_id, creds.sailpoint_trigger_client_id) and same(
            client_secret, creds.sailpoint_trigger_client_secret
        )
        if not (user or trigger):
            return json_response(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        if len(self._tokens) > 1000:
            # Long-running demos refresh tokens forever; forget the expired ones so the table stays small.
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > call.now}
            self._trigger_tokens &= set(self._tokens)
        token = secrets.token_urlsafe(32)
        ttl = creds.sailpoint_token_ttl
        self._tokens[token] = call.now + ttl
        if trigger and not user:
            self._trigger_tokens.add(token)
        expires_in: float | int = int(ttl) if float(ttl).is_integer() else ttl
        return json_response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": expires_in,
                "scope": "sp:scopes:all" if user else "sp:workflow-execute:external",
            },
        )

    def list_workflows(self, call: Call) -> web.Response:
        """GET /{v}/workflows: SailPoint's list of workflows (limit/offset/count like every v3 list)."""
        limit = int_param(call.query, "limit", 250)
        offset = int_param(call.query, "offset", 0)
        if not 0 <= limit <= 250 or offset < 0:
            raise ApiError(400, "limit must be between 0 and 250 and offset >= 0")
        names = self.state.known_workflows(self.NAME)
        result = [
            {"id": name, "name": name, "enabled": self.state.script_for(self.NAME, name).enabled is not False}
            for name in names[offset : offset + limit]
        ]
        wants_count = call.query.get("count", "").lower() == "true"
        return json_response(200, result, {"X-Total-Count": str(len(names))} if wants_count else None)

    def _input(self, call: Call) -> Any:
        body = json_body(call, empty={})
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object")
        payload = body.get("input")
        if payload is not None and not isinstance(payload, dict):
            raise ApiError(400, "input must be a JSON object")
        return payload if payload is not None else {}

    def test_workflow(self, call: Call) -> web.Response:
        workflow = call.params["workflow"]
        payload = self._input(call)
        if self.state.script_for(self.NAME, workflow).enabled is True:
            raise ApiError(400, "Workflow must be disabled to test")
        ex = self.new_execution(workflow, payload, mode="test")
        return json_response(200, {"workflowExecutionId": ex.id})

    def execute_external(self, call: Call) -> web.Response:
        workflow = call.params["workflow"]
        payload = self._input(call)
        if self.state.script_for(self.NAME, workflow).enabled is False:
            # The api-specs' answer for a workflow that did not run: 200, a message and no execution id.
            return json_response(200, {"message": NOT_EXECUTED})
        ex = self.new_execution(workflow, payload, mode="external")
        return json_response(200, {"workflowExecutionId": ex.id, "message": "Workflow was executed successfully."})

    def _execution(self, call: Call) -> Execution:
        ex = self.find("", call.params["id"])
        if ex is None:
            raise ApiError(404, f"Workflow execution {call.params['id']} was not found")
        return ex

    @staticmethod
    def _view(ex: Execution, call: Call) -> dict[str, Any]:
        view = {
            "id": ex.id,
            "workflowId": ex.workflow,
            "requestId": ex.request_id,
            "startTime": iso(ex.created_wall, 6),
            "closeTime": iso(ex.ended_at(call.now), 6),
            "status": ex.status(call.now, call.mystery),
        }
        # closeTime is a date-time, not nullable: an execution still running has none.
        return {key: value for key, value in view.items() if value is not None}

    def get_execution(self, call: Call) -> web.Response:
        return json_response(200, self._view(self._execution(call), call))

    def get_history(self, call: Call) -> web.Response:
        """GET .../history?limit=&offset=: the events, paged (deprecated: removal announced for October 2027)."""
        limit = int_param(call.query, "limit", 250)
        offset = int_param(call.query, "offset", 0)
        if not 0 <= limit <= 250 or offset < 0:
            raise ApiError(400, "limit must be between 0 and 250 and offset >= 0")
        return json_response(200, self._events(self._execution(call), call)[offset : offset + limit])

    def get_history_v2(self, call: Call) -> web.Response:
        """GET /workflow-executions/v1/{id}/history-v2: ``{definition, history, trigger}`` in one answer."""
        ex = self._execution(call)
        body = {
            "definition": {"start": ex.script.steps[0] if ex.script.steps else "", "steps": {}},
            "history": self._events(ex, call),
            "trigger": {"type": "EXTERNAL" if ex.mode == "external" else "EVENT", "attributes": {}},
        }
        return json_response(200, body)

    def _events(self, ex: Execution, call: Call) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        def add(kind: str, at: datetime | None, attributes: dict[str, Any]) -> None:
            events.append({"type": kind, "timestamp": iso(at, 6), "attributes": attributes})

        add("WorkflowExecutionStarted", ex.created_wall, {"input": ex.payload})
        for _ in range(ex.script.extra_history_events):
            add("WorkflowTaskCompleted", ex.created_wall, {})
        for name, step_phase, start, end in ex.steps(call.now):
            add("ActivityTaskScheduled", start, {"displayName": name})
            if step_phase == SUCCEEDED:
                add("ActivityTaskCompleted", end, {"displayName": name, "result": {"step": name, "ok": True}})
            elif step_phase == FAILED:
                add("ActivityTaskFailed", end, {"displayName": name, "error": ex.script.error_message})
        phase = ex.phase(call.now)
        closing = {
            SUCCEEDED: ("WorkflowExecutionCompleted", {"output": ex.output()}),
            FAILED: ("WorkflowExecutionFailed", {"error": ex.script.error_message}),
            CANCELED: ("WorkflowExecutionCanceled", {}),
        }.get(phase)
        if closing is not None:
            add(closing[0], ex.ended_at(call.now), closing[1])
        return events

    def cancel_execution(self, call: Call) -> web.Response:
        ex = self._execution(call)
        phase = ex.phase(call.now)
        if phase in TERMINAL:
            status = self.STATUSES[phase]
            raise ApiError(400, f"Workflow execution {ex.id} is already {status}")
        ex.canceled_mono = call.now
        return json_response(204)

    def list_executions(self, call: Call) -> web.Response:
        limit = int_param(call.query, "limit", 250)
        offset = int_param(call.query, "offset", 0)
        if not 0 <= limit <= 250:
            raise ApiError(400, "limit must be between 0 and 250")
        if offset < 0:
            raise ApiError(400, "offset must be >= 0")
        predicates = parse_filters(call.query.get("filters", ""))
        matching = [
            ex
            for ex in self.listing(call.params["workflow"])
            if all(predicate(ex, call.now) for predicate in predicates)
        ]
        wants_count = call.query.get("count", "").lower() == "true"
        headers = {"X-Total-Count": str(len(matching))} if wants_count else None
        return json_response(200, [self._view(ex, call) for ex in matching[offset : offset + limit]], headers)


def parse_filters(text: str) -> list[Callable[[Execution, float], bool]]:
    """Parse SailPoint's ``filters`` (``status eq`` and ``start_time eq|gt|ge|lt|le``, joined by ``and``)."""
    predicates: list[Callable[[Execution, float], bool]] = []
    position, text = 0, text.strip()
    while position < len(text):
        clause = FILTER_CLAUSE.match(text, position)
        if clause is None:
            raise ApiError(400, f"Invalid filter expression at position {position}: {text!r}")
        name, operator, value = clause.group(1), clause.group(2).lower(), clause.group(3)
        position = clause.end()
        if position < len(text):
            joiner = FILTER_AND.match(text, position)
            if joiner is None:
                raise ApiError(400, f"Invalid filter expression at position {position}: {text!r}")
            position = joiner.end()
            if position >= len(text):
                raise ApiError(400, "Invalid filter expression: dangling 'and'")
        predicates.append(filter_predicate(name, operator, value))
    return predicates


def filter_predicate(name: str, operator: str, value: str) -> Callable[[Execution, float], bool]:
    if name == "status":
        if operator != "eq":
            raise ApiError(400, f"Unsupported operator {operator!r} for status; only eq is supported")
        return lambda ex, now: ex.status(now) == value
    if name == "start_time":
        compare: dict[str, Callable[[datetime, datetime], bool]] = {
            "eq": lambda a, b: a == b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
        }
        if operator not in compare:
            raise ApiError(400, f"Unsupported operator {operator!r} for start_time")
        try:
            # startTime is rendered with microseconds, the precision stored, so eq matches a value read back.
            moment = parse_iso(value)
        except ValueError:
            raise ApiError(400, f"Invalid date-time {value!r} in filter") from None
        check = compare[operator]
        return lambda ex, now: check(ex.created_wall, moment)
    raise ApiError(400, f"Unsupported filter field {name!r}; supported: status, start_time")
