"""Datadog Workflow Automation API v2, as the emulator answers it under ``/datadog``.

Auth: ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers (a wrong key of either kind: 403, as Datadog answers).
Errors: ``{"errors": [...]}`` (strings, or objects with ``code``/``detail``). Listing: ``page[size]`` /
``page[number]``. Answers take the shapes Datadog recorded for its own client's tests
(DataDog/datadog-api-client-python ``tests/v2/cassettes/test_scenarios/``, copied under
``tests/contracts/datadog/cassettes/``): ``type: "instances"``, the workflow under
``relationships.workflow.data.id``, ``instanceStatus: {detailsKind, displayName}``, steps as
``{"stepName", "stepState"}``, ``endTimestamp`` only once the instance is over.

Datadog has recorded only ``IN_PROGRESS`` ("Running") and ``CANCELED`` ("Canceled"). The strings for success
and failure are nowhere documented, so the emulator does not pretend to know them: they come from a
:class:`DatadogVocabulary`, chosen with ``WorkflowEmulator.set_datadog_vocabulary`` (``VOCABULARIES``),
and the hook is tested against each. A failed step's ``error`` is this emulator's assumption, too.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    PHASES,
    SUCCEEDED,
    TERMINAL,
    EmulatorState,
    Execution,
)

# What Datadog's recorded answers show: {"detailsKind": ..., "displayName": ...}.
RECORDED_RUNNING = ("IN_PROGRESS", "Running")
RECORDED_CANCELED = ("CANCELED", "Canceled")


@dataclass(frozen=True)
class DatadogVocabulary:
    """The (detailsKind, displayName) of a succeeded and of a failed instance, and their steps' stepState.

    None of these is documented by Datadog: each vocabulary is one plausible guess to test the hook against.
    """

    name: str
    succeeded: tuple[str, str]
    failed: tuple[str, str]
    step_succeeded: str
    step_failed: str

    def instance_status(self, phase: str) -> tuple[str, str]:
        if phase == SUCCEEDED:
            return self.succeeded
        if phase == FAILED:
            return self.failed
        return RECORDED_CANCELED if phase == CANCELED else RECORDED_RUNNING

    def step_state(self, phase: str) -> str:
        if phase == SUCCEEDED:
            return self.step_succeeded
        if phase == FAILED:
            return self.step_failed
        return RECORDED_CANCELED[0] if phase == CANCELED else RECORDED_RUNNING[0]


VOCABULARIES: dict[str, DatadogVocabulary] = {
    v.name: v
    for v in (
        # What the list meta's succeededCount / failedCount suggest (the default).
        DatadogVocabulary("succeeded-failed", ("SUCCEEDED", "Succeeded"), ("FAILED", "Failed"), "SUCCEEDED", "FAILED"),
        DatadogVocabulary("success-failure", ("SUCCESS", "Success"), ("FAILURE", "Failure"), "SUCCESS", "FAILURE"),
        DatadogVocabulary("completed-error", ("COMPLETED", "Completed"), ("ERROR", "Error"), "COMPLETED", "ERROR"),
        # Strings no map knows: only the display names give the outcome away.
        DatadogVocabulary(
            "undocumented", ("FINISHED", "Finished"), ("ENDED_WITH_ERRORS", "Ended with errors"), "DONE", "BROKEN"
        ),
        # Status and display name tell nothing; only the steps' states do.
        DatadogVocabulary("opaque", ("STATE_5", "Ended"), ("STATE_6", "Ended"), "SUCCEEDED", "FAILED"),
    )
}
DEFAULT_VOCABULARY = "succeeded-failed"

INSTANCES = r"/api/v2/workflows/(?P<workflow>[^/]+)/instances"


class DatadogApi(VendorApi):
    NAME = "datadog"
    # Datadog publishes no number for these endpoints (its answers announce it in X-RateLimit-*); this one
    # is the emulator's assumption, per API key.
    DOCUMENTED_LIMIT = (1000, 60.0)
    FAULT_429_HEADERS = "both"
    # The default vocabulary's words; an instance uses statuses(), which follows the chosen vocabulary.
    STATUSES = {phase: VOCABULARIES[DEFAULT_VOCABULARY].instance_status(phase)[0] for phase in PHASES}

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(state)
        self.vocabulary = VOCABULARIES[DEFAULT_VOCABULARY]

    def statuses(self) -> dict[str, str]:
        """detailsKind per phase in the current vocabulary; every state short of the end is IN_PROGRESS."""
        return {phase: self.vocabulary.instance_status(phase)[0] for phase in PHASES}

    def new_execution(self, workflow: str, payload: Any, **options: Any) -> Execution:
        # An execution keeps the vocabulary it was started under.
        return self.state.new_execution(self.NAME, workflow, payload, self.statuses(), **options)

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
            # GET /api/v1/validate  (the API key alone; what the Test button asks after a 403)
            route("GET", r"/api/v1/validate", "validate", self.validate_api_key),
        ]

    # -- envelope ------------------------------------------------------------------------------------
    def credential(self, call: Call) -> str:
        return call.headers.get("DD-API-KEY") or ""

    def authenticate(self, call: Call) -> web.Response | None:
        creds = self.credentials
        if not same(call.headers.get("DD-API-KEY"), creds.datadog_api_key):
            raise ApiError(403, "Forbidden")
        if call.operation == "validate":
            return None  # checks the API key only
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
        # Recorded: 200 (not 201), {"data": {"attributes": {}, "id", "type": "instances"}, "meta": {"workflowId"}}.
        return json_response(
            200, {"data": {"attributes": {}, "id": ex.id, "type": "instances"}, "meta": {"workflowId": workflow}}
        )

    def _instance_status(self, ex: Execution, call: Call) -> dict[str, Any]:
        if call.mystery:
            return {"detailsKind": ex.status(call.now, mystery=True)}
        kind, display = self.vocabulary.instance_status(ex.phase(call.now))
        return {"detailsKind": kind, "displayName": display}

    def _resource(self, ex: Execution, call: Call, with_steps: bool) -> dict[str, Any]:
        phase = ex.phase(call.now)
        attributes: dict[str, Any] = {
            "instanceStatus": self._instance_status(ex, call),
            "startTimestamp": iso(ex.created_wall, 6),
        }
        ended = ex.ended_at(call.now)
        if ended is not None:
            attributes["endTimestamp"] = iso(ended, 6)
        if with_steps:
            attributes["outputs"] = ex.output() if phase == SUCCEEDED else {}
            steps = []
            for name, step_phase, _, _ in ex.steps(call.now):
                step: dict[str, Any] = {"stepName": name, "stepState": self.vocabulary.step_state(step_phase)}
                if step_phase == FAILED:
                    step["error"] = {"message": ex.script.error_message}  # assumed: no failure is recorded
                steps.append(step)
            attributes["stepStateAssociations"] = steps
            attributes["trigger"] = {}
        return {
            "attributes": attributes,
            "id": ex.id,
            "relationships": {"workflow": {"data": {"id": ex.workflow, "type": "workflows"}}},
            "type": "instances",
        }

    def _instance(self, call: Call) -> Execution:
        ex = self.find(call.params["workflow"], call.params["id"])
        if ex is None:
            raise ApiError(404, f"instance {call.params['id']} not found", "INSTANCE_NOT_FOUND")
        return ex

    def get_instance(self, call: Call) -> web.Response:
        ex = self._instance(call)
        meta = {"outputsTooBig": False, "sourceTooBig": False, "triggerTooBig": False}
        return json_response(200, {"data": self._resource(ex, call, with_steps=True), "meta": meta})

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
        data = [self._resource(ex, call, with_steps=False) for ex in page]
        meta = {
            "canceledCount": phases.count(CANCELED),
            "failedCount": phases.count(FAILED),
            "page": {"totalCount": len(everything), "totalFilteredCount": len(everything)},
            "succeededCount": phases.count(SUCCEEDED),
        }
        return json_response(200, {"data": data, "meta": meta})

    def cancel_instance(self, call: Call) -> web.Response:
        ex = self._instance(call)
        phase = ex.phase(call.now)
        if phase in TERMINAL:
            raise ApiError(
                400,
                f"Workflow instance {ex.id} already finished with status {ex.status(call.now)}",
                "INSTANCE_ALREADY_FINISHED",
            )
        ex.canceled_mono = call.now
        return json_response(200, {})

    def validate_api_key(self, call: Call) -> web.Response:
        return json_response(200, {"valid": True})
