"""Datadog Workflow Automation API v2, as the emulator answers it under ``/datadog``.

Auth: ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers. Errors: ``{"errors": [...]}`` (strings, or objects
with ``code``/``detail``). Every non-final state is ``IN_PROGRESS``. Listing: ``page[size]`` / ``page[number]``.
"""

from __future__ import annotations

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
    route,
    same,
)
from airflow_workflow_provider.testing.emulator.faults import rate_limit_headers
from airflow_workflow_provider.testing.emulator.state import (
    CANCELED,
    FAILED,
    PAUSED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    WAITING,
    Execution,
)

INSTANCES = r"/api/v2/workflows/(?P<workflow>[^/]+)/instances"


class DatadogApi(VendorApi):
    NAME = "datadog"
    # Datadog reports every non-final state as IN_PROGRESS (that is what its own CLI polls on).
    STATUSES = {
        QUEUED: "IN_PROGRESS",
        RUNNING: "IN_PROGRESS",
        PAUSED: "IN_PROGRESS",
        WAITING: "IN_PROGRESS",
        SUCCEEDED: "SUCCEEDED",
        FAILED: "FAILED",
        CANCELED: "CANCELED",
    }
    FAULT_429_HEADERS = "both"

    def routes(self) -> list[Route]:
        return [
            # POST /api/v2/workflows/{workflow_id}/instances
            route("POST", INSTANCES, "start", self.start_instance),
            # GET /api/v2/workflows/{workflow_id}/instances
            route("GET", INSTANCES, "list", self.list_instances),
            # GET /api/v2/workflows/{workflow_id}/instances/{instance_id}
            route("GET", INSTANCES + r"/(?P<id>[^/]+)", "get", self.get_instance),
            # PUT /api/v2/workflows/{workflow_id}/instances/{instance_id}/cancel
            route("PUT", INSTANCES + r"/(?P<id>[^/]+)/cancel", "cancel", self.cancel_instance),
        ]

    # -- envelope ------------------------------------------------------------------------------------
    def authenticate(self, call: Call) -> web.Response | None:
        creds = self.credentials
        if not same(call.headers.get("DD-API-KEY"), creds.datadog_api_key):
            raise ApiError(403, "Forbidden")
        if not same(call.headers.get("DD-APPLICATION-KEY"), creds.datadog_application_key):
            raise ApiError(403, "Failed permission authorization checks", "FORBIDDEN")
        return None

    def error(self, exc: ApiError) -> web.Response:
        if isinstance(exc.code, str):
            return json_response(exc.status, {"errors": [{"code": exc.code, "detail": exc.message}]})
        return json_response(exc.status, {"errors": [exc.message]})

    def too_many_requests(self, headers: dict[str, str]) -> web.Response:
        return json_response(429, {"errors": ["Too many requests"]}, headers)

    def rate_headers(self, limit: int, period: float, remaining: int, reset: float) -> dict[str, str]:
        return rate_limit_headers(limit, period, remaining, reset)

    # -- workflow instances --------------------------------------------------------------------------
    def start_instance(self, call: Call) -> web.Response:
        body = json_body(call, empty={})
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request")
        meta = body.get("meta")
        meta = {} if meta is None else meta
        payload = meta.get("payload") if isinstance(meta, dict) else None
        payload = {} if payload is None else payload
        if not isinstance(meta, dict) or not isinstance(payload, dict):
            raise ApiError(400, "Bad Request")
        workflow = call.params["workflow"]
        ex = self.new_execution(workflow, payload)
        return json_response(
            200, {"data": {"id": ex.id, "type": "workflow_instances"}, "meta": {"workflowId": workflow}}
        )

    def _attributes(self, ex: Execution, call: Call, with_steps: bool) -> dict[str, Any]:
        phase = ex.phase(call.now)
        attributes: dict[str, Any] = {
            "id": ex.id,
            "workflowId": ex.workflow,
            "instanceStatus": {"detailsKind": ex.status(call.now, call.mystery)},
            "startTimestamp": iso(ex.created_wall),
            "endTimestamp": iso(ex.ended_at(call.now)),
            "outputs": ex.output() if phase == SUCCEEDED else {},
            "payload": ex.payload,
        }
        if with_steps:
            steps = []
            for name, step_phase, _, _ in ex.steps(call.now):
                step: dict[str, Any] = {"stepName": name, "status": self.STATUSES[step_phase]}
                if step_phase == FAILED:
                    step["error"] = {"message": ex.script.error_message}
                elif step_phase == SUCCEEDED:
                    step["outputs"] = {"step": name, "ok": True}
                steps.append(step)
            attributes["stepStateAssociations"] = steps
        return attributes

    def _instance(self, call: Call) -> Execution:
        ex = self.find(call.params["workflow"], call.params["id"])
        if ex is None:
            raise ApiError(404, f"Workflow instance {call.params['id']} not found", "INSTANCE_NOT_FOUND")
        return ex

    def get_instance(self, call: Call) -> web.Response:
        ex = self._instance(call)
        attributes = self._attributes(ex, call, with_steps=True)
        return json_response(200, {"data": {"id": ex.id, "type": "workflow_instances", "attributes": attributes}})

    def list_instances(self, call: Call) -> web.Response:
        size = int_param(call.query, "page[size]", 10)
        number = int_param(call.query, "page[number]", 0)
        if size > 100:
            raise ApiError(400, "page[size] must be <= 100")
        if size < 1:
            raise ApiError(400, "page[size] must be >= 1")
        if number < 0:
            raise ApiError(400, "page[number] must be >= 0")
        everything = self.listing(call.params["workflow"])
        phases = [ex.phase(call.now) for ex in everything]
        page = everything[number * size : (number + 1) * size]
        data = [
            {
                "id": ex.id,
                "type": "workflow_instances",
                "attributes": self._attributes(ex, call, with_steps=False),
            }
            for ex in page
        ]
        meta = {
            "page": {"totalCount": len(everything)},
            "succeededCount": phases.count(SUCCEEDED),
            "failedCount": phases.count(FAILED),
            "canceledCount": phases.count(CANCELED),
        }
        return json_response(200, {"data": data, "meta": meta})

    def cancel_instance(self, call: Call) -> web.Response:
        ex = self._instance(call)
        phase = ex.phase(call.now)
        if phase in TERMINAL:
            raise ApiError(
                400,
                f"Workflow instance {ex.id} already finished with status {self.STATUSES[phase]}",
                "INSTANCE_ALREADY_FINISHED",
            )
        ex.canceled_mono = call.now
        return json_response(200, {})
