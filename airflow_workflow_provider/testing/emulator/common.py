"""What every vendor API module shares: the request being answered, its routes, JSON answers, ISO times.

A vendor module subclasses :class:`VendorApi`: it lists its routes (:meth:`VendorApi.routes`) and renders its
own statuses, error envelope, authentication and rate-limit headers; the server (``server.py``) does the
dispatch, faults and rate limits once for all three.
"""

from __future__ import annotations

import hmac
import http
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

if TYPE_CHECKING:
    from airflow_workflow_provider.testing.emulator.state import EmulatorCredentials, EmulatorState, Execution

# One logger for the whole emulator, named after the package: the request log lines are what tests capture.
log = logging.getLogger("airflow_workflow_provider.testing.emulator")

NO_BODY = object()


class ApiError(Exception):
    """Raised by handlers; rendered in the vendor's error envelope by the dispatcher.

    ``code`` is the Datadog object-shape code (str), or the Cloudflare numeric code (int).
    """

    def __init__(self, status: int, message: str, code: str | int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Call:
    vendor: str
    operation: str
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    mystery: bool = False
    now: float = 0.0


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Callable[[Call], web.Response]


def route(method: str, path: str, operation: str, handler: Callable[[Call], web.Response]) -> Route:
    """A route of one vendor: ``path`` is a regular expression of the path after the vendor prefix."""
    return Route(method, re.compile(path + "$"), operation, handler)


class VendorApi:
    """One vendor's API on the shared server. Handlers run with ``state.lock`` held, after authentication."""

    NAME: ClassVar[str]
    # The vendor's name of each phase (state.QUEUED ... state.CANCELED).
    STATUSES: ClassVar[Mapping[str, str]]
    # Which rate-limit headers an injected 429 carries unless the fault says: "retry-after", "reset" or "both".
    FAULT_429_HEADERS: ClassVar[str] = "retry-after"
    # The limit the vendor documents per credential, (requests, seconds), enforced on request
    # (``WorkflowEmulator.enforce_documented_limits``, ``--documented-limits``).
    DOCUMENTED_LIMIT: ClassVar[tuple[int, float]]
    # Past the limit: 429 until the window ends (False), or for a whole period from then (True).
    BLOCKS_FOR_A_PERIOD: ClassVar[bool] = False

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def credentials(self) -> EmulatorCredentials:
        return self.state.credentials

    def routes(self) -> list[Route]:
        raise NotImplementedError

    # -- this vendor's executions (the lock is held) -------------------------------------------------
    def new_execution(self, workflow: str, payload: Any, **options: Any) -> Execution:
        return self.state.new_execution(self.NAME, workflow, payload, self.STATUSES, **options)

    def find(self, workflow: str, execution_id: str) -> Execution | None:
        return self.state.find(self.NAME, workflow, execution_id)

    def listing(self, workflow: str) -> list[Execution]:
        return self.state.listing(self.NAME, workflow)

    # -- the vendor's wire conventions ---------------------------------------------------------------

    def operation(self, matched: Route, body: bytes) -> str:
        """The operation a request counts as (faults and the request log key on it)."""
        return matched.operation

    def authenticate(self, call: Call) -> web.Response | None:
        """Raise :class:`ApiError` or answer (a response) to refuse the call; None lets it through."""
        raise NotImplementedError

    def credential(self, call: Call) -> str:
        """What the vendor counts a request against: its rate limits are per credential."""
        return call.headers.get("Authorization") or ""

    def error(self, exc: ApiError) -> web.Response:
        """``exc`` in the vendor's error envelope."""
        raise NotImplementedError

    def no_route(self) -> ApiError:
        return ApiError(404, "Not found")

    def too_many_requests(self, headers: dict[str, str]) -> web.Response:
        raise NotImplementedError

    def status_fault(self, call: Call, status: int) -> web.Response:
        """The answer of an injected status fault (not 429) in the vendor's words."""
        return self.error(ApiError(status, http.HTTPStatus(status).phrase))

    def rate_headers(self, limit: int, period: float, remaining: int, reset: float) -> dict[str, str]:
        """Rate-limit headers the vendor sends with every answer while a limit is set."""
        return {}

    def snapshot(self, ex: Execution) -> dict[str, Any]:
        """Vendor-specific fields of an execution in ``WorkflowEmulator.executions()``."""
        return {}


def json_response(status: int, body: Any = NO_BODY, headers: Mapping[str, str] | None = None) -> web.Response:
    if body is NO_BODY:
        return web.Response(status=status, headers=headers)
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)


def json_body(call: Call, empty: Any = None) -> Any:
    if not call.body.strip():
        return empty
    try:
        return json.loads(call.body)
    except ValueError:
        raise ApiError(400, "Bad Request") from None


def iso(moment: datetime | None, digits: int = 3) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + digits] + "Z"


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` or offset, up to nanoseconds); a naive value is UTC, as Cloudflare documents."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # fromisoformat() accepts at most microseconds; SailPoint prints nanoseconds.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def seconds_header(value: Any) -> str:
    """Integral seconds print without a decimal point, which strict Retry-After parsers require."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def same(given: str | None, expected: str) -> bool:
    # Constant-time comparison: the emulator should not teach hooks habits that would leak in production.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
