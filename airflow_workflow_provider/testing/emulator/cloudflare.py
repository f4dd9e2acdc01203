"""Cloudflare Workflows API (client/v4), as the emulator answers it under ``/cloudflare``.

Auth: ``Authorization: Bearer <API token>`` or ``X-Auth-Email`` + ``X-Auth-Key`` (global API key), for the
configured account only. Every answer is the v4 envelope ``{"success", "errors": [{"code", "message"}],
"messages", "result"}`` (+ ``result_info`` on lists). Instance statuses: queued, running, paused, waiting,
complete, errored, terminated (the list filter also takes waitingForPause and rollingBack). Instance lists
page by an opaque ``result_info.cursor`` (with ``direction``) or by ``page``/``per_page``; with
``WorkflowEmulator.set_cloudflare_list_cursors(False)`` answers carry no cursor, as where only ``page=``
paging exists. Ids a caller creates follow ``^[a-zA-Z0-9_][a-zA-Z0-9-_]*$`` (at most 100, lower-case
``cf_`` + 64 hex reserved); ids that address an instance may also be cron-made, ``"<cron>-<epoch ms>"``
(``^[a-zA-Z0-9, */#_-]+$``, at most 271): cloudflare/workers-sdk ``workflows-shared/src/lib/validators.ts``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import http
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

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

# A batch entry whose instance id already exists: skipped, not created, left out of the answer.
SKIPPED = object()

WORKFLOWS = r"/client/v4/accounts/(?P<account>[^/]+)/workflows"
INSTANCES = WORKFLOWS + r"/(?P<workflow>[^/]+)/instances"
INSTANCE = INSTANCES + r"/(?P<id>[^/]+)"

# Every status the instance list can filter on (waitingForPause and rollingBack never arise here).
STATUS_FILTERS = frozenset(
    {"queued", "running", "paused", "errored", "terminated", "complete", "waitingForPause", "waiting", "rollingBack"}
)
INSTANCE_ID = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9\-_]*$")
ADDRESSABLE_ID = re.compile(r"^[a-zA-Z0-9, */#_-]+$")
MAX_ADDRESSABLE_ID = 271
# Cloudflare keeps "cf_" + 64 lower-case hex characters for its own generated ids.
RESERVED_ID = re.compile(r"^cf_[0-9a-f]{64}$")
DEFAULT_ERROR_CODES = {400: 10001, 401: 10000, 403: 10000, 404: 10001, 405: 10405, 409: 10021, 429: 971}


class CloudflareApi(VendorApi):
    NAME = "cloudflare"
    # 1,200 requests per 5 minutes per user; past it, every call is refused for the next five minutes.
    # https://developers.cloudflare.com/fundamentals/api/reference/limits/
    DOCUMENTED_LIMIT = (1200, 300.0)
    BLOCKS_FOR_A_PERIOD = True
    STATUSES = {
        QUEUED: "queued",
        RUNNING: "running",
        PAUSED: "paused",
        WAITING: "waiting",
        SUCCEEDED: "complete",
        FAILED: "errored",
        CANCELED: "terminated",
    }

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(state)
        # Stable (workflow_id, version_id) per workflow name; a reset keeps them, like a deployment would.
        self._workflow_ids: dict[str, tuple[str, str]] = {}
        self.list_cursors = True

    def routes(self) -> list[Route]:
        return [
            # GET /accounts/{account_id}/workflows
            route("GET", WORKFLOWS, "list_workflows", self.list_workflows),
            # POST /accounts/{account_id}/workflows/{workflow_name}/instances
            route("POST", INSTANCES, "start", self.create_instance),
            # POST /accounts/{account_id}/workflows/{workflow_name}/instances/batch
            route("POST", INSTANCES + r"/batch", "start", self.create_batch),
            # GET /accounts/{account_id}/workflows/{workflow_name}/instances
            route("GET", INSTANCES, "list", self.list_instances),
            # GET /accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}
            route("GET", INSTANCE, "get", self.get_instance),
            # PATCH /accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}/status
            route("PATCH", INSTANCE + r"/status", "status", self.change_status),
            # POST /accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}/events/{event_type}
            route("POST", INSTANCE + r"/events/(?P<event>[^/]+)", "event", self.send_event),
        ]

    # -- envelope ------------------------------------------------------------------------------------
    def operation(self, matched: Route, body: bytes) -> str:
        if matched.operation == "status":
            return self._status_operation(body)
        return matched.operation

    def credential(self, call: Call) -> str:
        return call.headers.get("Authorization") or call.headers.get("X-Auth-Email") or ""

    def authenticate(self, call: Call) -> web.Response | None:
        creds = self.credentials
        authorization = call.headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            ok = scheme.lower() == "bearer" and same(token.strip(), creds.cloudflare_api_token)
        else:
            ok = same(call.headers.get("X-Auth-Email"), creds.cloudflare_email) and same(
                call.headers.get("X-Auth-Key"), creds.cloudflare_global_api_key
            )
        if not ok:
            raise ApiError(403, "Authentication error", 10000)
        if call.params.get("account") != creds.cloudflare_account_id:
            raise ApiError(
                404,
                f"Could not route to {call.path.removeprefix('/cloudflare')}, "
                "perhaps your object identifier is invalid?",
                7003,
            )
        return None

    def error(self, exc: ApiError) -> web.Response:
        code = exc.code if isinstance(exc.code, int) else DEFAULT_ERROR_CODES.get(exc.status, 10000)
        body = {
            "success": False,
            "errors": [{"code": code, "message": exc.message}],
            "messages": [],
            "result": None,
        }
        return json_response(exc.status, body)

    def no_route(self) -> ApiError:
        return ApiError(404, "No route for that URI", 7000)

    def too_many_requests(self, headers: dict[str, str]) -> web.Response:
        body = {
            "success": False,
            "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}],
            "messages": [],
            "result": None,
        }
        return json_response(429, body, headers)

    def status_fault(self, call: Call, status: int) -> web.Response:
        if status in (401, 403):
            return self.error(ApiError(status, "Authentication error", 10000))
        if status == 404:
            return self.error(ApiError(404, "instance.not_found", 10001))
        if status >= 500:
            return self.error(ApiError(status, http.HTTPStatus(status).phrase, 10002))
        return super().status_fault(call, status)

    def snapshot(self, ex: Execution) -> dict[str, Any]:
        return {"events": copy.deepcopy(ex.events)}

    # -- workflows and instances ---------------------------------------------------------------------
    def _ids(self, workflow: str) -> tuple[str, str]:
        """Stable (workflow_id, version_id) per workflow name, like a deployed workflow has."""
        if workflow not in self._workflow_ids:
            self._workflow_ids[workflow] = (str(uuid.uuid4()), str(uuid.uuid4()))
        return self._workflow_ids[workflow]

    def _ok(self, result: Any, result_info: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
        if result_info is not None:
            body["result_info"] = result_info
        return json_response(200, body)

    def _validate_create(
        self, workflow: str, body: Any, taken: set[str], *, skip_existing: bool = False
    ) -> tuple[str | None, Any]:
        """The instance id (None: Cloudflare picks one) and params of one create body.

        ``skip_existing`` (batch creation): an id that already exists, or came earlier in the same batch,
        is no error; the caller leaves it out (returned as id None and params ``SKIPPED``).
        """
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid request body: expected an object", 10001)
        instance_id = body.get("instance_id")
        if instance_id is not None:
            if (
                not isinstance(instance_id, str)
                or len(instance_id) > 100
                or not INSTANCE_ID.match(instance_id)
                or RESERVED_ID.match(instance_id)
            ):
                raise ApiError(400, "instance.invalid_id", 10001)
            if instance_id in taken or self.find(workflow, instance_id) is not None:
                if skip_existing:
                    return None, SKIPPED
                raise ApiError(409, "instance.already_exists", 10021)
            taken.add(instance_id)
        params = body.get("params")
        return instance_id, params if params is not None else {}

    def _created(self, call: Call, ex: Execution) -> dict[str, Any]:
        workflow_id, version_id = self._ids(ex.workflow)
        return {
            "id": ex.id,
            "status": ex.status(call.now, call.mystery),
            "version_id": version_id,
            "workflow_id": workflow_id,
        }

    def create_instance(self, call: Call) -> web.Response:
        workflow = call.params["workflow"]
        instance_id, params = self._validate_create(workflow, json_body(call, empty={}), set())
        ex = self.new_execution(workflow, params, execution_id=instance_id)
        return self._ok(self._created(call, ex))

    def create_batch(self, call: Call) -> web.Response:
        workflow = call.params["workflow"]
        body = json_body(call)
        if not isinstance(body, list):
            raise ApiError(400, "Invalid request body: expected a list of instances", 10001)
        if len(body) > 100:
            raise ApiError(400, "A batch can create at most 100 instances", 10001)
        # Validate the whole batch first: one bad entry rejects the request without side effects. Like the
        # Workers binding's createBatch, ids that already exist are skipped and left out of the result
        # (Cloudflare's REST reference does not say otherwise): a client resending a batch gets back fewer ids.
        taken: set[str] = set()
        validated = [self._validate_create(workflow, item, taken, skip_existing=True) for item in body]
        created = [self.new_execution(workflow, p, execution_id=i) for i, p in validated if p is not SKIPPED]
        return self._ok([self._created(call, ex) for ex in created])

    def list_workflows(self, call: Call) -> web.Response:
        """GET .../workflows: Cloudflare's list of deployed workflows (page/per_page pagination)."""
        per_page = int_param(call.query, "per_page", 10)
        page = int_param(call.query, "page", 1)
        if not 1 <= per_page <= 100 or page < 1:
            raise ApiError(400, "per_page must be between 1 and 100 and page >= 1", 10001)
        names = self.state.known_workflows(self.NAME)
        created = iso(datetime.now(timezone.utc))
        result = [
            {
                "id": self._ids(name)[0],
                "name": name,
                "class_name": "EmulatedWorkflow",
                "script_name": "emulated-worker",
                "created_on": created,
                "modified_on": created,
            }
            for name in names[(page - 1) * per_page : page * per_page]
        ]
        info = {"count": len(result), "per_page": per_page, "page": page, "total_count": len(names)}
        return self._ok(result, info)

    def _instance(self, call: Call) -> Execution:
        instance_id = call.params["id"]
        if len(instance_id) > MAX_ADDRESSABLE_ID or not ADDRESSABLE_ID.match(instance_id):
            raise ApiError(400, "instance.invalid_id", 10001)
        ex = self.find(call.params["workflow"], instance_id)
        if ex is None:
            raise ApiError(404, "instance.not_found", 10001)
        return ex

    def start_cron_instance(self, workflow: str, cron: str, script: Any) -> str:
        """An instance as a cron trigger starts it: id ``"<cron>-<scheduled time in epoch ms>"``, source cron."""
        scheduled = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        while self.find(workflow, cron_instance_id(cron, scheduled)) is not None:
            scheduled += timedelta(minutes=1)  # the next tick of a schedule already run this minute
        instance_id = cron_instance_id(cron, scheduled)
        if len(instance_id) > MAX_ADDRESSABLE_ID or not ADDRESSABLE_ID.match(instance_id):
            raise ValueError(f"{cron!r} does not make a valid instance id")
        return self.new_execution(workflow, {}, execution_id=instance_id, script=script, mode="cron").id

    @staticmethod
    def _trigger(ex: Execution) -> dict[str, Any]:
        return {"source": ex.mode if ex.mode in ("api", "binding", "event", "cron") else "api"}

    def get_instance(self, call: Call) -> web.Response:
        ex = self._instance(call)
        phase = ex.phase(call.now)
        _, version_id = self._ids(ex.workflow)
        step_list = ex.steps(call.now)
        wait = self._wait_step(ex, call.now)
        failed = phase == FAILED
        result: dict[str, Any] = {
            "status": ex.status(call.now, call.mystery),
            "success": True if phase == SUCCEEDED else False if phase in (FAILED, CANCELED) else None,
            "error": {"name": "Error", "message": ex.script.error_message} if failed else None,
            "output": ex.output() if phase == SUCCEEDED else None,
            "params": ex.payload,
            "queued": iso(ex.created_wall),
            "start": iso(ex.started_at(call.now)),
            "end": iso(ex.ended_at(call.now)),
            "versionId": version_id,
            "trigger": self._trigger(ex),
            "step_count": len(step_list) + (wait is not None),
            # Required (nullable) in the published schema: no rollback ran.
            "rollback": None,
        }
        if ex.mode == "cron":
            cron, _, scheduled_ms = ex.id.rpartition("-")
            result["schedule"] = {"cron": cron, "scheduledTime": int(scheduled_ms)}
        if call.query.get("simple", "").lower() != "true":
            steps: list[dict[str, Any]] = [
                {
                    "name": name,
                    "type": "step",
                    "start": iso(start),
                    "end": iso(end),
                    "success": True if step_phase == SUCCEEDED else False if step_phase == FAILED else None,
                    # A step's output in the logs is a (truncated) string; the full value is at .../step.
                    "output": json.dumps({"step": name, "ok": True}) if step_phase == SUCCEEDED else None,
                    "error": {"name": "Error", "message": ex.script.error_message} if step_phase == FAILED else None,
                    "attempts": [
                        {
                            "start": iso(start),
                            "end": iso(end),
                            "success": True if step_phase == SUCCEEDED else False if step_phase == FAILED else None,
                            "error": (
                                {"name": "Error", "message": ex.script.error_message} if step_phase == FAILED else None
                            ),
                        }
                    ],
                    # step.do's default configuration (Cloudflare Workflows docs: 5 retries, 10 s, exponential).
                    "config": {
                        "retries": {"limit": 5, "delay": 10000, "backoff": "exponential"},
                        "timeout": "10 minutes",
                    },
                }
                for name, step_phase, start, end in step_list
            ]
            if wait is not None:
                steps.insert(min(ex.steps_before_wait(), len(steps)), wait)
            result["steps"] = steps
        return self._ok(result)

    @staticmethod
    def _wait_step(ex: Execution, now: float) -> dict[str, Any] | None:
        """The steps[] entry of step.waitForEvent (Cloudflare's ``type: "waitForEvent"`` shape), once reached."""
        reached = ex.wait_step(now)
        if reached is None:
            return None
        start, end, finished = reached
        return {
            "name": f"wait for {ex.script.wait_for_event}",
            "type": "waitForEvent",
            "start": iso(start),
            "end": iso(end),
            "finished": finished,
            "output": copy.deepcopy(ex.awaited_payload) if finished else None,
            "error": None,
        }

    def list_instances(self, call: Call) -> web.Response:
        query = call.query
        per_page = int_param(query, "per_page", 50)
        if not 1 <= per_page <= 100:
            raise ApiError(400, "per_page must be between 1 and 100", 10001)
        cursor, page_raw = query.get("cursor"), query.get("page")
        if cursor and page_raw:
            raise ApiError(400, "page and cursor are mutually exclusive", 10001)
        direction = query.get("direction")
        if direction not in (None, "asc", "desc"):
            raise ApiError(400, "direction must be asc or desc", 10001)
        status = query.get("status")
        if status is not None and status not in STATUS_FILTERS:
            raise ApiError(400, f"Invalid status filter {status!r}", 10001)
        try:
            date_start = parse_iso(query["date_start"]) if query.get("date_start") else None
            date_end = parse_iso(query["date_end"]) if query.get("date_end") else None
        except ValueError:
            raise ApiError(400, "date_start and date_end must be ISO 8601 date-times", 10001) from None

        matching = [
            ex
            for ex in self.listing(call.params["workflow"])
            if (status is None or ex.status(call.now) == status)
            and (date_start is None or ex.created_wall >= date_start)
            and (date_end is None or ex.created_wall <= date_end)
        ]
        info: dict[str, Any] = {}
        after: tuple[int, int] | None = None
        if cursor:
            after, cursor_direction = decode_cursor(cursor)
            direction = direction or cursor_direction
        direction = direction or "desc"
        if direction == "asc":
            matching.reverse()
        matching_after = matching
        if after is not None:
            # Cursors mark the last item seen (not an offset), so new instances never shift later pages.
            mark = after
            matching_after = [
                ex for ex in matching if (ex.sort_key() > mark if direction == "asc" else ex.sort_key() < mark)
            ]
        if page_raw:
            page_number = int_param(query, "page", 1)
            if page_number < 1:
                raise ApiError(400, "page must be >= 1", 10001)
            offset = (page_number - 1) * per_page
            info["page"] = page_number
        else:
            offset = 0
        page = matching_after[offset : offset + per_page]
        more = len(matching_after) > offset + len(page)
        workflow_id, version_id = self._ids(call.params["workflow"])
        result = [
            {
                "id": ex.id,
                "created_on": iso(ex.created_wall),
                "modified_on": iso(ex.modified_at(call.now)),
                "started_on": iso(ex.started_at(call.now)),
                "ended_on": iso(ex.ended_at(call.now)),
                "status": ex.status(call.now, call.mystery),
                "version_id": version_id,
                "workflow_id": workflow_id,
                "trigger_source": self._trigger(ex)["source"],
            }
            for ex in page
        ]
        info.update(
            {
                "count": len(page),
                "per_page": per_page,
                "total_count": len(matching),
            }
        )
        if self.list_cursors:
            info["cursor"] = encode_cursor(page[-1].sort_key(), direction) if more and page else ""
        return self._ok(result, info)

    @staticmethod
    def _status_operation(body: bytes) -> str:
        """A terminate is the "cancel" operation (faults and the log key on it); others are "status"."""
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            return "status"
        return "cancel" if isinstance(parsed, dict) and parsed.get("status") == "terminate" else "status"

    def change_status(self, call: Call) -> web.Response:
        """PATCH .../status: the instance's state machine (an action that does not fit answers 400, 10001).

        - ``pause``: from queued, running or waiting -> paused (the script clock stops; a wait keeps waiting
          for its event, which may still arrive while paused). Refused when paused or finished.
        - ``resume``: from paused only -> back where it was: queued/running, or waiting while the awaited
          event has not arrived. Refused in every other state, a finished instance included.
        - ``terminate``: from queued, running, paused or waiting -> terminated. Refused when finished.
        - ``restart``: from any state, finished ones included -> starts over from scratch (new creation
          time, queued again; pauses, termination and received events are all forgotten).
        """
        ex = self._instance(call)
        body = json_body(call)
        action = body.get("status") if isinstance(body, dict) else None
        if action not in ("pause", "resume", "terminate", "restart"):
            raise ApiError(400, "status must be one of pause, resume, terminate, restart", 10001)
        now = call.now
        phase = ex.phase(now)
        current = self.STATUSES[phase]
        if action == "restart":
            ex.restart(now)
        elif phase in TERMINAL:
            raise ApiError(400, f"Cannot {action} instance: instance is already {current}", 10001)
        elif action == "terminate":
            if phase == PAUSED:
                ex.pauses[-1] = (ex.pauses[-1][0], now)
            ex.canceled_mono = now
        elif action == "pause":
            if phase == PAUSED:
                raise ApiError(400, "Cannot pause instance: instance is already paused", 10001)
            ex.pauses.append((now, None))
        else:
            if phase != PAUSED:
                raise ApiError(400, f"Cannot resume instance: instance is {current}, not paused", 10001)
            ex.pauses[-1] = (ex.pauses[-1][0], now)
        return self._ok({"status": ex.status(now, call.mystery), "timestamp": iso(ex.wall(now))})

    def send_event(self, call: Call) -> web.Response:
        """POST .../events/{type}: the JSON body is the payload (empty body: null).

        Any unfinished instance takes any event type (200, result {}) and records it; the type its
        script waits for resumes a waiting instance (or is buffered until the wait begins, or, while
        paused, takes effect on resume). A finished instance refuses events (400, 10001).
        """
        ex = self._instance(call)
        payload = json_body(call)
        phase = ex.phase(call.now)
        if phase in TERMINAL:
            current = self.STATUSES[phase]
            raise ApiError(
                400, f"Cannot send event to instance: instance is already {current} and not waiting for events", 10001
            )
        ex.receive_event(call.params["event"], payload, call.now)
        # The published schema types result as an object (not nullable).
        return self._ok({})


def cron_instance_id(cron: str, scheduled: datetime) -> str:
    return f"{cron}-{int(scheduled.timestamp() * 1000)}"


def encode_cursor(key: tuple[int, int], direction: str) -> str:
    raw = json.dumps({"after": list(key), "direction": direction}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[tuple[int, int], str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created, seq = data["after"]
        return (int(created), int(seq)), str(data["direction"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise ApiError(400, "Invalid cursor", 10001) from None
