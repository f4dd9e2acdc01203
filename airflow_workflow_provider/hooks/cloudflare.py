"""Cloudflare Workflows (API v4): create, get, list and terminate workflow instances.

Reference: https://developers.cloudflare.com/api/resources/workflows/subresources/instances/
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pendulum

from airflow_workflow_provider.connection_forms import CLOUDFLARE
from airflow_workflow_provider.core.api import ClientSettings, VendorApi, object_at, require_mapping, require_secret
from airflow_workflow_provider.core.errors import (
    ConflictError,
    ErrorDetails,
    InvalidResponseError,
    NotFoundError,
    WorkflowInputError,
)
from airflow_workflow_provider.core.hook import BaseWorkflowsHook, ignore_body
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.ratelimit import RateLimit
from airflow_workflow_provider.core.states import ExecutionState as S
from airflow_workflow_provider.core.states import StatusMap
from airflow_workflow_provider.core.validation import (
    path_segment,
    require_choice,
    require_id,
    require_int_in_range,
    require_json_object,
    require_json_serializable,
)

API_ORIGIN = "https://api.cloudflare.com"
MAX_PER_PAGE = 100
# cloudflare/workers-sdk packages/workflows-shared/src/lib/validators.ts: ids a caller creates (and workflow
# names) follow ALLOWED_STRING_ID_PATTERN; ids that address an existing instance may also be the ones cron
# triggers generate, e.g. "*/30 * * * *-1786001400000" (ALLOWED_ADDRESSABLE_WORKFLOW_INSTANCE_ID_PATTERN).
INSTANCE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9-_]*$")
MAX_INSTANCE_ID_LENGTH = 100
ADDRESSABLE_INSTANCE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9, */#_-]+$")
MAX_ADDRESSABLE_INSTANCE_ID_LENGTH = 271
# "An id of exactly `cf_` followed by 64 lowercase hex characters is reserved for system-generated instances"
# (cloudflare/cloudflare-typescript, InstanceCreateParams.instance_id).
RESERVED_INSTANCE_ID = re.compile(r"^cf_[0-9a-f]{64}$")
WORKFLOW_NAME_PATTERN = INSTANCE_ID_PATTERN
MAX_WORKFLOW_NAME_LENGTH = 64
# The official SDK escapes a path value like encodeURIPath: RFC 3986 pchar stays as is, the rest
# ("/", " ", "#") is percent-encoded (cloudflare-typescript src/internal/utils/path.ts).
PATH_SAFE = "-._~!$&'()*+,;=:@"

CLOUDFLARE_STATUSES = StatusMap(
    "Cloudflare",
    {
        "queued": S.QUEUED,
        "running": S.RUNNING,
        # Still running: a pause was asked for, or a failed step is being compensated.
        "waitingForPause": S.RUNNING,
        "rollingBack": S.RUNNING,
        "paused": S.PAUSED,
        "waiting": S.WAITING,
        "complete": S.SUCCEEDED,
        "errored": S.FAILED,
        "terminated": S.CANCELED,
        "unknown": S.UNKNOWN,
    },
    case_sensitive=True,
)
STATUS_ACTIONS = ("pause", "resume", "terminate", "restart")
MAX_BATCH_SIZE = 100
# The list filter takes every status the API answers (cloudflare-typescript InstanceListParams.status).
LIST_STATUSES = (
    "queued",
    "running",
    "paused",
    "errored",
    "terminated",
    "complete",
    "waitingForPause",
    "waiting",
    "rollingBack",
)
LIST_DIRECTIONS = ("asc", "desc")


def require_instance_id(value: Any) -> str:
    """A caller-chosen instance id, as Cloudflare accepts it."""
    instance_id = require_id("instance_id", value, max_length=MAX_INSTANCE_ID_LENGTH)
    if not INSTANCE_ID_PATTERN.match(instance_id):
        raise WorkflowInputError(
            "instance_id", "may hold only letters, digits, '-' and '_', and must not start with '-'"
        )
    if RESERVED_INSTANCE_ID.match(instance_id):
        raise WorkflowInputError(
            "instance_id", "the form 'cf_' followed by 64 lower-case hex characters is reserved by Cloudflare"
        )
    return instance_id


def require_addressable_instance_id(value: Any, field: str = "instance_id") -> str:
    """The id of an existing instance: one a caller chose, Cloudflare generated, or a cron trigger made."""
    if not isinstance(value, str):
        raise WorkflowInputError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise WorkflowInputError(field, "must not be empty")
    if len(value) > MAX_ADDRESSABLE_INSTANCE_ID_LENGTH:
        raise WorkflowInputError(
            field, f"must be at most {MAX_ADDRESSABLE_INSTANCE_ID_LENGTH} characters, got {len(value)}"
        )
    if not ADDRESSABLE_INSTANCE_ID_PATTERN.match(value):
        raise WorkflowInputError(
            field, "may hold only letters, digits, spaces and the characters , * / # _ - (as cron-made ids do)"
        )
    return value


def _utc_iso(field: str, value: Any) -> str:
    """Cloudflare wants ISO 8601 in UTC without an offset."""
    if isinstance(value, datetime):
        moment = pendulum.instance(value)
    elif isinstance(value, str):
        try:
            moment = pendulum.parse(value, tz="UTC")  # type: ignore[assignment]
        except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
            raise WorkflowInputError(field, f"must be an ISO 8601 date-time, got {value!r}") from exc
    else:
        raise WorkflowInputError(field, f"must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    return moment.in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


class CloudflareApi(VendorApi):
    vendor = "Cloudflare"
    status_map = CLOUDFLARE_STATUSES
    # https://developers.cloudflare.com/fundamentals/api/reference/limits/ : 1,200 requests per 5 minutes per user.
    documented_limit = RateLimit(1200, 300.0)

    def __init__(
        self, *, account_id: str | None, api_token: str | None, email: str | None = None, settings: ClientSettings
    ) -> None:
        if not account_id:
            raise WorkflowInputError("extra.account_id (Account ID)", "is empty; set the Cloudflare account id")
        self.account_id = require_id("extra.account_id (Account ID)", account_id)
        self._secret = require_secret("password (API token)", api_token, "Cloudflare API token or Global API Key")
        # The email goes into a header too: stripped and checked like a credential.
        self._email = require_secret("login (Email)", email, "Cloudflare account email") if email else None
        super().__init__(base_url=settings.base_url or API_ORIGIN, settings=settings, secrets=(self._secret,))

    def auth_headers(self) -> dict[str, str]:
        if self._email:
            return {"X-Auth-Email": self._email, "X-Auth-Key": self._secret}
        return {"Authorization": f"Bearer {self._secret}"}

    def _workflow(self, workflow: str) -> str:
        if len(workflow) > MAX_WORKFLOW_NAME_LENGTH:
            raise WorkflowInputError("workflow", f"a workflow name has at most {MAX_WORKFLOW_NAME_LENGTH} characters")
        if not WORKFLOW_NAME_PATTERN.match(workflow):
            raise WorkflowInputError(
                "workflow", "a workflow name holds only letters, digits, '-' and '_', and does not start with '-'"
            )
        return f"/client/v4/accounts/{path_segment(self.account_id)}/workflows/{path_segment(workflow)}"

    def _instance(self, workflow: str, instance_id: str) -> str:
        instance = path_segment(require_addressable_instance_id(instance_id), safe=PATH_SAFE)
        return f"{self._workflow(workflow)}/instances/{instance}"

    def check_execution_id(self, value: Any) -> str:
        return require_addressable_instance_id(value, "execution_id")

    # POST .../workflows/{workflow_name}/instances  {"instance_id"?, "params"}
    def start_request(self, workflow: str, payload: Mapping[str, Any] | None, **options: Any) -> ApiRequest:
        instance_id = options.pop("instance_id", None)
        if options:
            raise WorkflowInputError(", ".join(sorted(options)), "Cloudflare start options are: instance_id")
        body: dict[str, Any] = {"params": dict(payload or {})}
        if instance_id is not None:
            body["instance_id"] = require_instance_id(instance_id)
        return self.request(
            "start_execution",
            "POST",
            f"{self._workflow(workflow)}/instances",
            json_body=body,
            # With a caller-chosen id a resend cannot make a second instance: it is "already exists".
            idempotent=instance_id is not None,
            context={"instance_id": instance_id, "caller_ids": [instance_id] if instance_id else None},
        )

    def is_error(self, request: ApiRequest, response: ApiResponse) -> bool:
        # With caller-chosen ids, "already exists" means an earlier try created them: attach.
        if request.context.get("caller_ids") and self._already_exists(response):
            return False
        if not response.ok:
            return True
        body = response.json()
        return isinstance(body, dict) and body.get("success") is False

    def _already_exists(self, response: ApiResponse) -> bool:
        if response.status == 409:
            return True
        if response.ok or response.status >= 500:
            return False
        try:
            details = self.error_details(response)
        except Exception:
            return False
        return "already exist" in details.message.lower() or "already_exists" in details.message.lower()

    def parse_start(self, request: ApiRequest, response: ApiResponse) -> str:
        return self.parse_start_or_attach(request, response)[0]

    def parse_start_or_attach(self, request: ApiRequest, response: ApiResponse) -> tuple[str, bool]:
        """The instance id, and whether it already existed (an earlier try, or someone else, created it)."""
        if self._already_exists(response):
            return str(request.context["instance_id"]), True
        result = require_mapping(response, _result(response), "result")
        return str(result["id"]), False

    def is_our_instance(self, execution: WorkflowExecution, payload: Mapping[str, Any] | None) -> bool:
        """Whether an instance that already existed under our id is the one we asked for: same ``params``."""
        params = execution.raw.get("params")
        return params is not None and params == json.loads(json.dumps(dict(payload or {})))

    # GET .../instances/{instance_id}?simple=true  (simple leaves out the steps: a cheap poll)
    def get_request(self, workflow: str, execution_id: str, *, include_steps: bool = False) -> ApiRequest:
        return self.request(
            "get_execution",
            "GET",
            self._instance(workflow, execution_id),
            params=() if include_steps else (("simple", "true"),),
            context={"workflow": workflow, "instance_id": execution_id},
        )

    def parse_execution(self, request: ApiRequest, response: ApiResponse) -> WorkflowExecution:
        result = require_mapping(response, _result(response), "result")
        error = result.get("error") if isinstance(result.get("error"), dict) else None
        steps = [s for s in result.get("steps") or [] if isinstance(s, dict)]
        failed_step = next((s for s in steps if s.get("success") is False or s.get("error")), None)
        return self.execution(
            workflow=request.context["workflow"],
            id=str(result.get("id") or request.context["instance_id"]),
            vendor_status=result.get("status"),
            started_at=result.get("start"),
            ended_at=result.get("end"),
            output=result.get("output"),
            error_message=_error_text(error),
            failing_step=failed_step.get("name") if failed_step else None,
            steps=steps,
            raw=result,
        )

    def failure_detail_request(self, execution: WorkflowExecution) -> ApiRequest | None:
        # Polls use simple=true; the steps (and so the failing one) come only with the full answer.
        if execution.failing_step or execution.steps:
            return None
        return self.get_request(execution.workflow, execution.id, include_steps=True)

    def parse_failure_detail(
        self, request: ApiRequest, response: ApiResponse, execution: WorkflowExecution
    ) -> WorkflowExecution:
        return self.parse_execution(request, response)

    # PATCH .../instances/{instance_id}/status  {"status": "terminate"}
    def cancel_request(self, workflow: str, execution_id: str) -> ApiRequest:
        return replace(self.change_status_request(workflow, execution_id, "terminate"), operation="cancel_execution")

    # POST .../instances/batch  [{"instance_id"?, "params"}, ...]
    def batch_start_request(self, workflow: str, items: Sequence[Mapping[str, Any]]) -> ApiRequest:
        if not isinstance(items, list) or not items:
            raise WorkflowInputError("instances", "must be a non-empty list of {'params': {...}, 'instance_id'?: ...}")
        if len(items) > MAX_BATCH_SIZE:
            raise WorkflowInputError("instances", f"at most {MAX_BATCH_SIZE} per batch, got {len(items)}")
        body = []
        for index, item in enumerate(items):
            unknown = set(item) - {"params", "instance_id"}
            if unknown:
                raise WorkflowInputError(
                    f"instances[{index}]", f"takes only params and instance_id, not {sorted(unknown)}"
                )
            entry: dict[str, Any] = {"params": require_json_object(f"instances[{index}].params", item.get("params"))}
            if item.get("instance_id") is not None:
                entry["instance_id"] = require_instance_id(item["instance_id"])
            body.append(entry)
        return self.request(
            "start_executions_batch",
            "POST",
            f"{self._workflow(workflow)}/instances/batch",
            json_body=body,
            # With every id chosen by the caller, a resend cannot create anything twice.
            idempotent=all("instance_id" in entry for entry in body),
            context={"caller_ids": [e["instance_id"] for e in body] if all("instance_id" in e for e in body) else None},
        )

    def parse_batch_start(self, request: ApiRequest, response: ApiResponse) -> list[str]:
        if request.context.get("caller_ids") and self._already_exists(response):
            return list(request.context["caller_ids"])
        result = _result(response)
        if not isinstance(result, list):
            raise InvalidResponseError(
                vendor=self.vendor, operation=request.operation, status_code=response.status, message="expected a list"
            )
        return [str(item.get("id")) for item in result if isinstance(item, dict)]

    # PATCH .../instances/{instance_id}/status  {"status": "pause" | "resume" | "terminate" | "restart"}
    def change_status_request(self, workflow: str, instance_id: str, action: str) -> ApiRequest:
        return self.request(
            f"{require_choice('action', action, STATUS_ACTIONS)}_instance",
            "PATCH",
            f"{self._instance(workflow, instance_id)}/status",
            json_body={"status": action},
        )

    def parse_status_change(self, request: ApiRequest, response: ApiResponse) -> str:
        result = _result(response)
        return str(result.get("status")) if isinstance(result, dict) else ""

    # POST .../instances/{instance_id}/events/{event_type}  (the body is the event's payload)
    def send_event_request(self, workflow: str, instance_id: str, event_type: str, payload: Any) -> ApiRequest:
        event = require_id("event_type", event_type, max_length=MAX_INSTANCE_ID_LENGTH)
        return self.request(
            "send_event",
            "POST",
            f"{self._instance(workflow, instance_id)}/events/{path_segment(event)}",
            json_body=require_json_serializable("payload", payload if payload is not None else {}),
            # Delivering an event twice could resume two waits: never resend blindly.
            idempotent=False,
        )

    # GET .../instances?per_page=&status=&date_start=&date_end=&direction=&cursor=  (or &page=)
    def list_request(self, workflow: str, page: Any, filters: Mapping[str, Any]) -> ApiRequest:
        """One page of instances; ``page`` is None, ``("cursor", token)`` or ``("page", number)``.

        Wrangler pages by ``result_info.cursor`` (the whole list, "not a best effort set"), sending the
        same filters and direction with every cursor; the official SDKs still page by ``page=``. So:
        follow the cursor, and fall back to page numbers when an answer carries none.
        """
        allowed = {"status", "date_start", "date_end", "per_page", "direction"}
        unknown = set(filters) - allowed
        if unknown:
            raise WorkflowInputError(
                ", ".join(sorted(unknown)), f"Cloudflare list filters are: {', '.join(sorted(allowed))}"
            )
        per_page = require_int_in_range("per_page", filters.get("per_page", MAX_PER_PAGE), 1, MAX_PER_PAGE)
        params = [("per_page", str(per_page))]
        if filters.get("status") is not None:
            params.append(("status", require_choice("status", filters["status"], LIST_STATUSES)))
        for name in ("date_start", "date_end"):
            if filters.get(name) is not None:
                params.append((name, _utc_iso(name, filters[name])))
        if filters.get("direction") is not None:
            params.append(("direction", require_choice("direction", filters["direction"], LIST_DIRECTIONS)))
        page_number = 1
        if page is not None:
            kind, value = page
            if kind == "cursor":
                params.append(("cursor", str(value)))
            else:
                page_number = int(value)
                params.append(("page", str(page_number)))
        return self.request(
            "list_executions",
            "GET",
            f"{self._workflow(workflow)}/instances",
            params=params,
            context={
                "workflow": workflow,
                "page": page_number,
                "per_page": per_page,
                "by_cursor": page is not None and page[0] == "cursor",
            },
        )

    def status_listing(self, vendor_status: str | None) -> dict[str, Any] | None:
        if vendor_status is None:
            return {"per_page": MAX_PER_PAGE}
        return {"status": vendor_status, "per_page": MAX_PER_PAGE} if vendor_status in LIST_STATUSES else None

    def parse_list(self, request: ApiRequest, response: ApiResponse) -> Page:
        body = require_mapping(response, response.json(), "instance list")
        items = [item for item in body.get("result") or [] if isinstance(item, dict)]
        executions = [
            self.execution(
                workflow=request.context["workflow"],
                id=str(item.get("id")),
                vendor_status=item.get("status"),
                started_at=item.get("started_on"),
                ended_at=item.get("ended_on"),
                raw=item,
            )
            for item in items
        ]
        return Page(executions=executions, next_page=_next_list_page(request, body, len(items)))

    # GET /accounts/{account_id}/workflows?per_page=1
    def check_request(self) -> ApiRequest:
        return self.request(
            "test_connection",
            "GET",
            f"/client/v4/accounts/{path_segment(self.account_id)}/workflows",
            params=[("per_page", "1")],
        )

    def execution_url(self, workflow: str, execution_id: str) -> str:
        return (
            f"https://dash.cloudflare.com/{path_segment(self.account_id)}/workers/workflows/"
            f"{path_segment(workflow)}/instance/{path_segment(execution_id)}"
        )

    # {"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]}
    def error_details(self, response: ApiResponse) -> ErrorDetails:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        ray = response.header("cf-ray")
        if not errors:
            return ErrorDetails(message=f"HTTP {response.status} with no error detail", tracking_id=ray)
        codes = [str(e.get("code")) for e in errors if isinstance(e, dict) and e.get("code") is not None]
        messages = [str(e.get("message")) if isinstance(e, dict) else str(e) for e in errors]
        return ErrorDetails(message="; ".join(messages), code=",".join(codes) or None, tracking_id=ray)


def _next_list_page(request: ApiRequest, body: Mapping[str, Any], count: int) -> tuple[str, Any] | None:
    """Where the listing goes on: the answer's cursor, else the next page number while pages come full."""
    if count == 0:
        return None
    info = object_at(body, "result_info")
    cursor = info.get("cursor")
    if cursor:
        return ("cursor", str(cursor))
    if request.context.get("by_cursor"):
        return None  # a cursor walk ends with the answer that carries no cursor
    number, per_page = request.context["page"], request.context["per_page"]
    total_pages, total_count = info.get("total_pages"), info.get("total_count")
    if isinstance(total_pages, int):
        more = number < total_pages
    elif isinstance(total_count, int):
        more = number * per_page < total_count
    else:
        more = count >= per_page
    return ("page", number + 1) if more else None


def _result(response: ApiResponse) -> Any:
    body = response.json()
    return body.get("result") if isinstance(body, dict) else None


def _error_text(error: Mapping[str, Any] | None) -> str | None:
    if not error:
        return None
    name, message = error.get("name"), error.get("message")
    return f"{name}: {message}" if name and message else str(message or name)


class CloudflareWorkflowsHook(BaseWorkflowsHook[CloudflareApi]):
    """Run Cloudflare Workflows.

    Connection: extra ``account_id``; password = API token (Bearer), or login = email and
    password = Global API Key for the legacy scheme.
    """

    connection_form = CLOUDFLARE
    default_conn_name = "cloudflare_workflows_default"
    conn_name_attr = "cloudflare_conn_id"

    def __init__(self, cloudflare_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(cloudflare_conn_id, **kwargs)

    @classmethod
    def build_api(cls, conn: Any, extra: Mapping[str, Any]) -> CloudflareApi:
        return CloudflareApi(
            account_id=extra.get("account_id"),
            api_token=conn.password,
            email=conn.login,
            settings=ClientSettings.from_extra(extra),
        )

    def start_execution(self, workflow: str, payload: Mapping[str, Any] | None = None, **vendor_options: Any) -> str:
        """Start an instance and return its id; with an ``instance_id`` that already exists, attach only if ours.

        "Already exists" is what a resent start meets when its first answer was lost: the instance is ours.
        It is also what a start meets when another deployment already used the id: that instance is followed
        only when its ``params`` are the payload asked for, else the start fails with ``ConflictError``.
        """
        request = self.api.start_request(
            require_id("workflow", workflow), require_json_object("payload", payload), **vendor_options
        )
        execution_id, attached = self._call(request, self.api.parse_start_or_attach)
        if attached:
            existing = self._call(
                self.api.get_request(workflow, execution_id, include_steps=True), self.api.parse_execution
            )
            if not self.api.is_our_instance(existing, payload):
                raise ConflictError(
                    vendor=self.api.vendor,
                    operation="start_execution",
                    status_code=409,
                    message=(
                        f"instance {execution_id} of workflow {workflow} already exists with other params: it was "
                        "not started by this task (another deployment or DAG used the same instance id); "
                        "choose another instance_id"
                    ),
                )
            self.log.info(
                "Cloudflare instance %s of workflow %s already existed with our params: attached",
                execution_id,
                workflow,
            )
        else:
            self.log.info("Cloudflare started execution %s of workflow %s", execution_id, workflow)
        return execution_id

    # -- Cloudflare's instance controls ------------------------------------------------------------

    def start_executions_batch(self, workflow: str, instances: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create several instances in one call; returns their ids in the order given.

        With ids chosen by the caller, every one of them is returned, whatever the answer leaves out:
        Cloudflare skips ids that already exist (a retry resending its batch, or a lost answer resent)
        and does not list them. Each id left out is confirmed to exist (else the error says so), so that
        a retry follows every instance it asked for instead of succeeding without waiting.
        """
        request = self.api.batch_start_request(require_id("workflow", workflow), instances)
        ids = self._call(request, self.api.parse_batch_start)
        asked = request.context.get("caller_ids")
        if asked:
            omitted = [i for i in asked if i not in set(ids)]
            for instance_id in omitted:
                try:
                    self.get_execution(workflow, instance_id)
                except NotFoundError as exc:
                    raise InvalidResponseError(
                        vendor=self.api.vendor,
                        operation=request.operation,
                        message=f"the batch answer left out instance {instance_id}, which does not exist either",
                    ) from exc
            if omitted:
                self.log.info(
                    "Cloudflare: %d of the %d instance ids existed already (an earlier try made them); following them",
                    len(omitted),
                    len(asked),
                )
            ids = list(asked)
        self.log.info("Cloudflare started %d instances of workflow %s", len(ids), workflow)
        return ids

    def change_instance_status(self, workflow: str, instance_id: str, action: str) -> str:
        """Pause, resume, terminate or restart an instance; returns the status Cloudflare reports."""
        request = self.api.change_status_request(
            require_id("workflow", workflow), require_addressable_instance_id(instance_id), action
        )
        status = self._call(request, self.api.parse_status_change)
        self.log.info("Cloudflare instance %s: %s done, now %s", instance_id, action, status or "unknown")
        return status

    def send_event(self, workflow: str, instance_id: str, event_type: str, payload: Any = None) -> None:
        """Deliver an event to an instance waiting for it (``step.waitForEvent``)."""
        request = self.api.send_event_request(
            require_id("workflow", workflow), require_addressable_instance_id(instance_id), event_type, payload
        )
        self._call(request, ignore_body)
        self.log.info("Cloudflare instance %s: sent event %s", instance_id, event_type)
