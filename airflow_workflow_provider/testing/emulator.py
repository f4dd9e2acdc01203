"""Offline emulator of the Datadog, Cloudflare and SailPoint workflow APIs.

One aiohttp server, run in a background thread with its own event loop, answers for the three vendors under
a path prefix each (``/datadog``, ``/cloudflare``, ``/sailpoint``), so a hook's ``base_url`` override can
point at ``emulator.base_url(vendor)`` and keep appending the vendor's real paths. Executions advance on the
wall clock according to a :class:`WorkflowScript`; faults, rate limits and token revocation can be injected
from Python or, for another process, through the ``/_emulator/...`` control API.

Run standalone with ``python -m airflow_workflow_provider.testing.emulator [--port N] [--url-file PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import copy
import dataclasses
import hmac
import http
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote

from aiohttp import web

__all__ = [
    "FAULTS",
    "MYSTERY_STATUS",
    "OPERATIONS",
    "VENDORS",
    "EmulatorCredentials",
    "RequestRecord",
    "WorkflowEmulator",
    "WorkflowScript",
    "main",
]

log = logging.getLogger(__name__)

VENDORS: tuple[str, ...] = ("datadog", "cloudflare", "sailpoint")
OPERATIONS: tuple[str, ...] = (
    "token",
    "start",
    "get",
    "cancel",
    "list",
    "history",
    "status",
    "event",
    "list_workflows",  # beyond the spec: the cheap call hooks use for test_connection
    "any",
)
FAULTS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "401",
    "403",
    "404",
    "reset_before",
    "reset_after",
    "slow",
    "malformed_json",
    "unknown_status",
)
MYSTERY_STATUS = "MYSTERY_STATUS"

_STATUS_FAULTS = frozenset({"429", "500", "502", "503", "504", "401", "403", "404"})

# Vendor-neutral lifecycle phases; each vendor renders them with its own vocabulary below.
_QUEUED, _RUNNING, _PAUSED, _WAITING = "queued", "running", "paused", "waiting"
_SUCCEEDED, _FAILED, _CANCELED = "succeeded", "failed", "canceled"
_TERMINAL = frozenset({_SUCCEEDED, _FAILED, _CANCELED})

_VENDOR_STATUS: dict[str, dict[str, str]] = {
    # Datadog reports every non-final state as IN_PROGRESS (that is what its own CLI polls on).
    "datadog": {
        _QUEUED: "IN_PROGRESS",
        _RUNNING: "IN_PROGRESS",
        _PAUSED: "IN_PROGRESS",
        _WAITING: "IN_PROGRESS",
        _SUCCEEDED: "SUCCEEDED",
        _FAILED: "FAILED",
        _CANCELED: "CANCELED",
    },
    "cloudflare": {
        _QUEUED: "queued",
        _RUNNING: "running",
        _PAUSED: "paused",
        _WAITING: "waiting",
        _SUCCEEDED: "complete",
        _FAILED: "errored",
        _CANCELED: "terminated",
    },
    "sailpoint": {
        _QUEUED: "Queued",
        _RUNNING: "Executing",
        _PAUSED: "Executing",
        _WAITING: "Executing",
        _SUCCEEDED: "Completed",
        _FAILED: "Failed",
        _CANCELED: "Canceled",
    },
}
_CF_STATUSES = frozenset(
    {"queued", "running", "paused", "errored", "terminated", "complete", "waitingForPause", "waiting"}
)
_CF_INSTANCE_ID = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9\-_]*$")
# Cloudflare keeps "cf_" + 64 hex characters for its own generated ids.
_CF_RESERVED_ID = re.compile(r"^cf_[0-9a-fA-F]{64}$")
_SP_DETAIL_CODES = {
    400: "400.1 Bad Request Content",
    403: "403 Forbidden",
    404: "404 Not found",
    405: "405 Method Not Allowed",
    500: "500.0 Internal Fault",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}
_CF_DEFAULT_CODES = {400: 10001, 401: 10000, 403: 10000, 404: 10001, 405: 10405, 409: 10021, 429: 971}
_SP_JWT_ERROR = "JWT validation failed: JWT is expired"
_SP_FILTER_CLAUSE = re.compile(r'\s*(\w+)\s+(\w+)\s+"([^"]*)"\s*')
_SP_FILTER_AND = re.compile(r"and\s+", re.IGNORECASE)
_NO_BODY = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class EmulatorCredentials:
    """The credentials the emulator accepts; anything else is rejected like the real APIs do."""

    # repr=False keeps the secrets out of logs and assertion messages that print the dataclass.
    datadog_api_key: str = field(default="dd-api-key-emulator", repr=False)
    datadog_application_key: str = field(default="dd-app-key-emulator", repr=False)
    cloudflare_account_id: str = "cf-account-emulator"
    cloudflare_api_token: str = field(default="cf-token-emulator", repr=False)
    cloudflare_email: str = "ops@example.com"
    cloudflare_global_api_key: str = field(default="cf-global-key-emulator", repr=False)
    sailpoint_client_id: str = "sp-client-emulator"
    sailpoint_client_secret: str = field(default="sp-secret-emulator", repr=False)
    sailpoint_token_ttl: float = 749.0  # expires_in seconds returned by /oauth/token


@dataclass
class WorkflowScript:
    """How executions of one workflow behave.

    ``duration`` is counted from creation and includes ``queued_for``: the execution is queued for
    ``queued_for`` seconds, running until ``duration`` seconds, then terminal.

    Cloudflare only: with ``wait_for_event`` (an event type) the instance models ``step.waitForEvent``.
    After ``wait_after`` seconds of running (so ``queued_for + wait_after`` seconds after creation, at most
    ``duration``) it turns ``waiting`` and its clock stops until ``POST .../events/{wait_for_event}``
    arrives; it then runs the rest of its duration (``duration - queued_for - wait_after``) and, on
    success, reports the event's payload as ``output["event"]``. An event sent before the wait begins is
    buffered, as Cloudflare does, so the instance then passes the wait without stopping.
    """

    duration: float = 1.0
    outcome: str = "success"  # "success" | "failure"
    output: Any = None  # None means {"result": "ok", "input": <payload>}
    steps: list[str] = field(default_factory=lambda: ["step_1", "step_2"])
    failing_step: str | None = None  # on failure; defaults to the last step
    error_message: str = "Simulated failure"
    # SailPoint only: None allows /test and external triggers, False only /test (a disabled workflow),
    # True only the external trigger (an enabled workflow).
    enabled: bool | None = None
    queued_for: float = 0.1
    wait_for_event: str | None = None  # Cloudflare only: the event type step.waitForEvent waits for
    wait_after: float = 0.3  # seconds of running before the wait begins

    def validate(self) -> None:
        if self.outcome not in ("success", "failure"):
            raise ValueError(f"outcome must be 'success' or 'failure', not {self.outcome!r}")
        if self.duration < 0 or self.queued_for < 0:
            raise ValueError("duration and queued_for must be >= 0")
        if not isinstance(self.steps, list) or not all(isinstance(s, str) for s in self.steps):
            raise ValueError("steps must be a list of strings")
        if self.wait_for_event is not None and (not isinstance(self.wait_for_event, str) or not self.wait_for_event):
            raise ValueError("wait_for_event must be a non-empty string (an event type) or None")
        if isinstance(self.wait_after, bool) or not isinstance(self.wait_after, (int, float)) or self.wait_after < 0:
            raise ValueError("wait_after must be a number >= 0")
        # The tolerance forgives float sums: queued_for 0.05 + wait_after 0.1 is 0.15000000000000002.
        if self.wait_for_event is not None and self.queued_for + self.wait_after > self.duration + 1e-9:
            raise ValueError(
                f"wait_after ({self.wait_after}) must be <= duration - queued_for "
                f"({self.duration} - {self.queued_for}): the wait has to begin before the execution ends"
            )


@dataclass(frozen=True)
class RequestRecord:
    """One vendor request as seen by the emulator. ``path`` never carries the query string."""

    vendor: str
    operation: str
    method: str
    path: str
    status: int | None  # None: the connection was dropped without an answer (reset faults)


@dataclass
class _Fault:
    vendor: str
    operation: str
    fault: str
    remaining: int
    params: dict[str, Any]


@dataclass
class _RateLimit:
    limit: int
    period: float
    window_start: float = 0.0
    count: int = 0

    def reset_in(self, now: float) -> float:
        return max(0.0, self.window_start + self.period - now)


class _ApiError(Exception):
    """Raised by handlers; rendered in the vendor's error envelope by the dispatcher.

    ``code`` is the Datadog object-shape code (str), or the Cloudflare numeric code (int).
    """

    def __init__(self, status: int, message: str, code: str | int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class _Call:
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
class _Route:
    vendor: str
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Callable[[_Call], web.Response]


@dataclass(eq=False)
class _Execution:
    vendor: str
    workflow: str
    id: str
    seq: int
    payload: Any
    script: WorkflowScript
    created_mono: float
    created_wall: datetime
    mode: str = "api"
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Closed or open (end None) pause intervals on the monotonic clock; the script clock stops while paused.
    pauses: list[tuple[float, float | None]] = field(default_factory=list)
    canceled_mono: float | None = None
    # Cloudflare events received ({"type", "payload"}), oldest first; a restart clears them.
    events: list[dict[str, Any]] = field(default_factory=list)
    # When the event the script waits for first arrived (monotonic), and its payload.
    awaited_mono: float | None = None
    awaited_payload: Any = None

    # -- clock -------------------------------------------------------------------------------------
    def _cut(self, now: float) -> float:
        return now if self.canceled_mono is None else min(now, self.canceled_mono)

    @property
    def wait_point(self) -> float | None:
        """Script time at which step.waitForEvent begins (None: the script does not wait)."""
        if self.script.wait_for_event is None:
            return None
        return min(self.run_start + self.script.wait_after, self.script.duration)

    def _hold(self) -> tuple[float, float | None] | None:
        """The wait for the event on the monotonic clock: (start, end or None while still waiting).

        None when the script does not wait or has not reached the wait yet (it is paused before it).
        An event that arrived before the wait began makes the interval empty.
        """
        point = self.wait_point
        if point is None:
            return None
        start = self._walk(self.created_mono, point, self.pauses)
        if start is None:
            return None
        if self.awaited_mono is None:
            return start, None
        return start, max(start, self.awaited_mono)

    def _frozen(self) -> list[tuple[float, float | None]]:
        """Merged, sorted intervals during which the script clock stands still (pauses and the wait)."""
        intervals = list(self.pauses)
        hold = self._hold()
        if hold is not None:
            intervals.append(hold)
        intervals.sort(key=lambda interval: interval[0])
        merged: list[tuple[float, float | None]] = []
        for start, end in intervals:
            if merged and (merged[-1][1] is None or start <= merged[-1][1]):
                last_start, last_end = merged[-1]
                merged[-1] = (last_start, None if last_end is None or end is None else max(last_end, end))
            else:
                merged.append((start, end))
        return merged

    def waiting(self, now: float) -> bool:
        """Whether the script stands in step.waitForEvent at ``now`` (paused or not): the event is missing."""
        hold = self._hold()
        return hold is not None and hold[1] is None and hold[0] <= self._cut(now)

    def elapsed(self, now: float) -> float:
        """Script time (seconds since creation minus time spent paused or waiting) at ``now``."""
        if self.waiting(now):
            point = self.wait_point
            assert point is not None
            return point  # exact, so step boundaries at the wait point compare cleanly
        t = self._cut(now)
        frozen = sum(max(0.0, min(end if end is not None else t, t) - start) for start, end in self._frozen())
        return t - self.created_mono - frozen

    @staticmethod
    def _walk(
        created_mono: float, script_time: float, frozen: list[tuple[float, float | None]], last: bool = False
    ) -> float | None:
        t = created_mono + script_time
        for start, end in frozen:
            if start < t or (last and start == t):
                if end is None:
                    return None
                t += end - start
        return t

    def instant(self, script_time: float, last: bool = False) -> float | None:
        """Monotonic instant at which the script clock reached ``script_time`` (None: not while stopped).

        The clock shows the same time all through a stop that starts there: ``last`` asks for the instant
        it moves on (a step after the wait starts when the event arrives, not when the wait began).
        """
        return self._walk(self.created_mono, script_time, self._frozen(), last)

    def wall(self, mono: float) -> datetime:
        return self.created_wall + timedelta(seconds=mono - self.created_mono)

    @property
    def run_start(self) -> float:
        return min(self.script.queued_for, self.script.duration)

    # -- state -------------------------------------------------------------------------------------
    def phase(self, now: float) -> str:
        # A cancel is only accepted before the end, so a canceled execution never reached its outcome.
        if self.canceled_mono is not None:
            return _CANCELED
        waiting = self.waiting(now)
        elapsed = self.elapsed(now)
        if elapsed >= self.script.duration and not waiting:
            return _SUCCEEDED if self.script.outcome == "success" else _FAILED
        if self.pauses and self.pauses[-1][1] is None:
            return _PAUSED
        if waiting:
            return _WAITING
        return _QUEUED if elapsed < self.script.queued_for else _RUNNING

    def started_at(self, now: float) -> datetime | None:
        if self.elapsed(now) < self.run_start:
            return None
        mono = self.instant(self.run_start)
        return self.wall(mono if mono is not None else self._cut(now))

    def ended_at(self, now: float) -> datetime | None:
        if self.canceled_mono is not None:
            return self.wall(self.canceled_mono)
        if self.phase(now) not in (_SUCCEEDED, _FAILED):
            return None
        mono = self.instant(self.script.duration)
        return self.wall(mono if mono is not None else now)

    def modified_at(self, now: float) -> datetime:
        marks = [self.created_mono]
        marks += [m for start, end in self.pauses for m in (start, end) if m is not None and m <= now]
        hold = self._hold()
        if hold is not None:
            marks += [m for m in hold if m is not None and m <= self._cut(now)]
        for at in (self.started_at(now), self.ended_at(now)):
            if at is not None:
                marks.append(self.created_mono + (at - self.created_wall).total_seconds())
        return self.wall(max(marks))

    def step_names(self) -> list[str]:
        steps = list(self.script.steps)
        if self.script.outcome == "failure":
            failing = self.script.failing_step
            if failing is None:
                return steps
            # A failure stops the workflow, so the steps after the failing one are never reached.
            return steps[: steps.index(failing) + 1] if failing in steps else [*steps, failing]
        return steps

    def steps_before_wait(self) -> int:
        """How many steps run before step.waitForEvent: in proportion to the time, the last one always after."""
        names = self.step_names()
        point = self.wait_point
        if point is None or not names:
            return len(names)
        span = self.script.duration - self.run_start
        share = (point - self.run_start) / span if span > 0 else 1.0
        return max(0, min(len(names) - 1, round(len(names) * share)))

    def _step_spans(self) -> list[tuple[str, float, float]]:
        """(name, begin, finish) in script time: spread evenly over the running span, split at the wait."""
        names = self.step_names()
        point = self.wait_point
        if point is None:
            segments = [(names, self.run_start, self.script.duration)]
        else:
            before = self.steps_before_wait()
            segments = [(names[:before], self.run_start, point), (names[before:], point, self.script.duration)]
        spans: list[tuple[str, float, float]] = []
        for chunk, low, high in segments:
            for index, name in enumerate(chunk):
                begin = low + (high - low) * index / len(chunk)
                finish = high if index == len(chunk) - 1 else low + (high - low) * (index + 1) / len(chunk)
                spans.append((name, begin, finish))
        return spans

    def steps(self, now: float) -> list[tuple[str, str, datetime, datetime | None]]:
        """(name, phase, start, end) of every step reached so far (no step runs during the wait)."""
        spans = self._step_spans()
        if not spans:
            return []
        elapsed = self.elapsed(now)
        point = self.wait_point
        holding = self.waiting(now)
        failed_outcome = self.script.outcome == "failure"
        result: list[tuple[str, str, datetime, datetime | None]] = []
        for index, (name, begin, finish) in enumerate(spans):
            if elapsed < begin or (holding and point is not None and begin >= point):
                break
            begin_mono = self.instant(begin, last=point is not None and begin >= point)
            start = self.wall(begin_mono if begin_mono is not None else self._cut(now))
            if elapsed >= finish:
                finish_mono = self.instant(finish)
                end = self.wall(finish_mono if finish_mono is not None else self._cut(now))
                last = index == len(spans) - 1
                result.append((name, _FAILED if failed_outcome and last else _SUCCEEDED, start, end))
            elif self.canceled_mono is not None:
                result.append((name, _CANCELED, start, self.wall(self.canceled_mono)))
            else:
                result.append((name, _RUNNING, start, None))
        return result

    def wait_step(self, now: float) -> tuple[datetime, datetime | None, bool] | None:
        """(start, end, finished) of step.waitForEvent once reached, else None."""
        hold = self._hold()
        if hold is None or hold[0] > self._cut(now):
            return None
        start, end = hold
        if end is not None:
            return self.wall(start), self.wall(end), True
        if self.canceled_mono is not None:
            return self.wall(start), self.wall(self.canceled_mono), False
        return self.wall(start), None, False

    def receive_event(self, event_type: str, payload: Any, now: float) -> None:
        self.events.append({"type": event_type, "payload": payload})
        if event_type == self.script.wait_for_event and self.awaited_mono is None:
            self.awaited_mono, self.awaited_payload = now, payload

    def restart(self, now: float) -> None:
        """Start over from scratch: new creation time, no pauses, no cancel, no events."""
        self.created_mono, self.created_wall = now, datetime.now(timezone.utc)
        self.pauses, self.canceled_mono = [], None
        self.events, self.awaited_mono, self.awaited_payload = [], None, None

    def sort_key(self) -> tuple[int, int]:
        """Creation time in whole microseconds, then creation order: the listing order, exact for cursors."""
        return (self.created_wall - _EPOCH) // timedelta(microseconds=1), self.seq

    def output(self) -> Any:
        output = self.script.output
        if output is None:
            output = {"result": "ok", "input": self.payload}
        if self.script.wait_for_event is None or self.awaited_mono is None:
            return output
        # The payload of the event step.waitForEvent returned, as a workflow would pass it on.
        if isinstance(output, dict):
            return {**output, "event": self.awaited_payload}
        return {"result": output, "event": self.awaited_payload}

    def status(self, now: float, mystery: bool = False) -> str:
        return MYSTERY_STATUS if mystery else _VENDOR_STATUS[self.vendor][self.phase(now)]


def _iso(moment: datetime | None, digits: int = 3) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + digits] + "Z"


def _parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` or offset, up to nanoseconds); a naive value is UTC, as Cloudflare documents."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # fromisoformat() accepts at most microseconds; SailPoint prints nanoseconds.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _json(status: int, body: Any = _NO_BODY, headers: Mapping[str, str] | None = None) -> web.Response:
    if body is _NO_BODY:
        return web.Response(status=status, headers=headers)
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)


def _seconds_header(value: Any) -> str:
    """Integral seconds print without a decimal point, which strict Retry-After parsers require."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(400, f"{name} must be an integer") from None


def _is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


class WorkflowEmulator:
    """In-process emulator of the three vendor workflow APIs; see the module docstring.

    All state sits behind one ``threading.Lock``: the server thread and the test's thread both touch it.
    """

    def __init__(self, credentials: EmulatorCredentials | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        # The emulator accepts well-known credentials, so it must never be reachable from another machine.
        if not _is_loopback(host):
            raise ValueError(f"refusing to listen on non-loopback host {host!r}")
        self.credentials = credentials or EmulatorCredentials()
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._executions: dict[tuple[str, str, str], _Execution] = {}
        self._scripts: dict[tuple[str, str], WorkflowScript] = {}
        self._faults: list[_Fault] = []
        self._rate_limits: dict[str, _RateLimit] = {}
        self._requests: list[RequestRecord] = []
        self._tokens: dict[str, float] = {}
        self._cf_workflow_ids: dict[str, tuple[str, str]] = {}
        self._seq = 0
        self._routes = self._build_routes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> WorkflowEmulator:
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        # Binding here, in the caller's thread, makes an unusable address fail start() directly.
        family, _, _, _, address = socket.getaddrinfo(self._host, self._requested_port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._bound = sock.getsockname()[:2]
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run_loop, args=(loop,), name="workflow-emulator", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._serve(sock), loop).result(timeout=30)
        except BaseException:
            self.stop()
            sock.close()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
            except Exception:  # the loop is torn down below anyway; a failed cleanup must not mask that
                log.exception("workflow emulator cleanup failed")
        self._halt()

    def __enter__(self) -> WorkflowEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._bound is None:
            raise RuntimeError("emulator not started")
        return self._bound[1]

    @property
    def url(self) -> str:
        if self._bound is None:
            raise RuntimeError("emulator not started")
        host = self._bound[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{self._vendor(vendor)}"

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # Handlers still sleeping in a "slow" fault outlive the shutdown timeout; cancel them so the
            # loop closes cleanly instead of warning about destroyed pending tasks.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # access_log=None: aiohttp's access log prints query strings, which may carry secrets.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock, backlog=1024).start()

    def _halt(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop = self._thread = self._runner = None

    # -- test-facing controls --------------------------------------------------------------------------
    @staticmethod
    def _vendor(vendor: str) -> str:
        if vendor not in VENDORS:
            raise ValueError(f"unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)}")
        return vendor

    def script(self, vendor: str, workflow: str, script: WorkflowScript) -> None:
        """Set how new executions of ``workflow`` behave; executions already started keep their script."""
        script.validate()
        if script.wait_for_event is not None and self._vendor(vendor) != "cloudflare":
            raise ValueError("wait_for_event models Cloudflare's step.waitForEvent: only cloudflare scripts take it")
        with self._lock:
            self._scripts[(self._vendor(vendor), workflow)] = copy.deepcopy(script)

    def inject_fault(self, vendor: str, operation: str, fault: str, times: int = 1, **params: Any) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``operation`` ("any" matches all), FIFO."""
        self._vendor(vendor)
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")
        fault = str(fault)
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        with self._lock:
            self._faults.append(_Fault(vendor, operation, fault, times, dict(params)))

    def set_rate_limit(self, vendor: str, limit: int, period: float) -> None:
        """Answer 429 beyond ``limit`` requests per fixed window of ``period`` seconds; limit 0 removes it."""
        self._vendor(vendor)
        with self._lock:
            if limit <= 0:
                self._rate_limits.pop(vendor, None)
            else:
                if period <= 0:
                    raise ValueError("period must be > 0")
                self._rate_limits[vendor] = _RateLimit(limit, period, time.monotonic())

    def executions(self, vendor: str, workflow: str | None = None) -> list[dict[str, Any]]:
        """Snapshot, in creation order, of id, vendor, workflow, vendor status, created_at (ISO), payload.

        Cloudflare executions also carry ``events``: every event received since creation (or the last
        restart), oldest first, as ``{"type", "payload"}``.
        """
        self._vendor(vendor)
        with self._lock:
            now = time.monotonic()
            snapshot = []
            for ex in self._executions.values():
                if ex.vendor != vendor or (workflow is not None and ex.workflow != workflow):
                    continue
                item = {
                    "id": ex.id,
                    "vendor": ex.vendor,
                    "workflow": ex.workflow,
                    "status": ex.status(now),
                    "created_at": _iso(ex.created_wall, 6),
                    "payload": copy.deepcopy(ex.payload),
                }
                if vendor == "cloudflare":
                    item["events"] = copy.deepcopy(ex.events)
                snapshot.append(item)
            return snapshot

    def create_executions(
        self,
        vendor: str,
        workflow: str,
        count: int,
        *,
        outcome: str = "success",
        finished: bool = True,
        payload: Any = None,
        spacing: float = 1.0,
        mode: str = "test",
    ) -> list[str]:
        """Seed ``count`` executions (oldest first) for pagination tests.

        ``outcome`` is "success", "failure" or "canceled". With ``finished`` the executions are back-dated
        ``spacing`` seconds apart, the newest ``duration + spacing`` ago, so all are already terminal
        (listings sort by creation time, so the seeds of separate calls interleave); otherwise they start
        now with the workflow's script. ``mode`` is the SailPoint trigger ("test" or "external"). Finished
        seeds never wait for an event: they are history, so their script's ``wait_for_event`` is dropped.
        """
        self._vendor(vendor)
        if outcome not in ("success", "failure", "canceled"):
            raise ValueError("outcome must be 'success', 'failure' or 'canceled'")
        if count < 0 or spacing < 0:
            raise ValueError("count and spacing must be >= 0")
        with self._lock:
            base = self._script_for(vendor, workflow)
            if outcome != "canceled":
                base.outcome = outcome
            if finished:
                base.wait_for_event = None
            now_mono, now_wall = time.monotonic(), datetime.now(timezone.utc)
            ids = []
            for index in range(count):
                age = (base.duration + (count - index) * spacing) if finished else 0.0
                ex = self._new_execution(
                    vendor,
                    workflow,
                    copy.deepcopy(payload) if payload is not None else {"index": index},
                    script=copy.deepcopy(base),
                    created=(now_mono - age, now_wall - timedelta(seconds=age)),
                    mode=mode,
                )
                if outcome == "canceled":
                    ex.canceled_mono = ex.created_mono + min(base.queued_for, base.duration / 2)
                ids.append(ex.id)
            return ids

    def archive_execution(self, vendor: str, execution_id: str) -> None:
        """Forget an execution the way SailPoint's 90-day archive does: it then answers 404."""
        self._vendor(vendor)
        with self._lock:
            keys = [key for key in self._executions if key[0] == vendor and key[2] == execution_id]
            if not keys:
                raise KeyError(f"no {vendor} execution {execution_id!r}")
            for key in keys:
                del self._executions[key]

    def revoke_tokens(self) -> None:
        """Invalidate every SailPoint access token issued so far (the next API call gets 401)."""
        with self._lock:
            self._tokens.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """Copy of the vendor request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget executions, faults, scripts, rate limits and the request log (issued tokens stay valid)."""
        with self._lock:
            self._executions.clear()
            self._faults.clear()
            self._scripts.clear()
            self._rate_limits.clear()
            self._requests.clear()

    # -- state helpers (callers hold the lock) -----------------------------------------------------
    def _script_for(self, vendor: str, workflow: str) -> WorkflowScript:
        script = self._scripts.get((vendor, workflow))
        if script is not None:
            return copy.deepcopy(script)
        return WorkflowScript(outcome="failure" if "fail" in workflow.lower() else "success")

    def _new_execution(
        self,
        vendor: str,
        workflow: str,
        payload: Any,
        *,
        execution_id: str | None = None,
        script: WorkflowScript | None = None,
        created: tuple[float, datetime] | None = None,
        mode: str = "api",
    ) -> _Execution:
        self._seq += 1
        mono, wall = created or (time.monotonic(), datetime.now(timezone.utc))
        ex = _Execution(
            vendor=vendor,
            workflow=workflow,
            id=execution_id or str(uuid.uuid4()),
            seq=self._seq,
            payload=payload,
            script=script or self._script_for(vendor, workflow),
            created_mono=mono,
            created_wall=wall,
            mode=mode,
        )
        self._executions[self._key(vendor, workflow, ex.id)] = ex
        return ex

    @staticmethod
    def _key(vendor: str, workflow: str, execution_id: str) -> tuple[str, str, str]:
        # SailPoint addresses executions without their workflow, so its ids live in one flat namespace.
        return (vendor, "" if vendor == "sailpoint" else workflow, execution_id)

    def _find(self, vendor: str, workflow: str, execution_id: str) -> _Execution | None:
        return self._executions.get(self._key(vendor, workflow, execution_id))

    def _listing(self, vendor: str, workflow: str) -> list[_Execution]:
        """Executions of one workflow, newest first by creation time like the vendors sort them."""
        found = [ex for ex in self._executions.values() if ex.vendor == vendor and ex.workflow == workflow]
        found.sort(key=_Execution.sort_key, reverse=True)
        return found

    def _take_fault(self, vendor: str, operation: str) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.vendor == vendor and fault.operation in (operation, "any"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[index]
                return fault
        return None

    def _check_rate_limit(self, vendor: str, now: float) -> _RateLimit | None:
        """Count this request; return the limit when it is exceeded."""
        limit = self._rate_limits.get(vendor)
        if limit is None:
            return None
        if now - limit.window_start >= limit.period:
            limit.window_start, limit.count = now, 0
        if limit.count >= limit.limit:
            return limit
        limit.count += 1
        return None

    # -- HTTP dispatch -----------------------------------------------------------------------------
    def _build_routes(self) -> list[_Route]:
        dd = r"/api/v2/workflows/(?P<workflow>[^/]+)/instances"
        cf_workflows = r"/client/v4/accounts/(?P<account>[^/]+)/workflows"
        cf = cf_workflows + r"/(?P<workflow>[^/]+)/instances"
        sp = r"/(?P<version>v\d+|beta)"
        sp_wf = sp + r"/workflows/(?P<workflow>[^/]+)"
        sp_ex = sp + r"/workflow-executions/(?P<id>[^/]+)"
        table: list[tuple[str, str, str, str, Callable[[_Call], web.Response]]] = [
            ("datadog", "POST", dd, "start", self._dd_start),
            ("datadog", "GET", dd, "list", self._dd_list),
            ("datadog", "GET", dd + r"/(?P<id>[^/]+)", "get", self._dd_get),
            ("datadog", "PUT", dd + r"/(?P<id>[^/]+)/cancel", "cancel", self._dd_cancel),
            ("cloudflare", "GET", cf_workflows, "list_workflows", self._cf_workflows),
            ("cloudflare", "POST", cf, "start", self._cf_start),
            ("cloudflare", "POST", cf + r"/batch", "start", self._cf_batch),
            ("cloudflare", "GET", cf, "list", self._cf_list),
            ("cloudflare", "GET", cf + r"/(?P<id>[^/]+)", "get", self._cf_get),
            ("cloudflare", "PATCH", cf + r"/(?P<id>[^/]+)/status", "status", self._cf_status),
            ("cloudflare", "POST", cf + r"/(?P<id>[^/]+)/events/(?P<event>[^/]+)", "event", self._cf_event),
            ("sailpoint", "POST", r"/oauth/token", "token", self._sp_token),
            ("sailpoint", "GET", sp + r"/workflows", "list_workflows", self._sp_workflows),
            ("sailpoint", "POST", sp_wf + r"/test", "start", self._sp_test),
            (
                "sailpoint",
                "POST",
                sp + r"/workflows/execute/external/(?P<workflow>[^/]+)",
                "start",
                self._sp_external,
            ),
            ("sailpoint", "GET", sp_ex, "get", self._sp_get),
            ("sailpoint", "GET", sp_ex + r"/history", "history", self._sp_history),
            ("sailpoint", "POST", sp_ex + r"/cancel", "cancel", self._sp_cancel),
            ("sailpoint", "GET", sp_wf + r"/executions", "list", self._sp_list),
        ]
        return [_Route(v, m, re.compile(p + "$"), op, h) for v, m, p, op, h in table]

    def _match(self, vendor: str, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        """Return (route, path params, whether the path exists under another method)."""
        path_known = False
        for route in self._routes:
            if route.vendor != vendor:
                continue
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                # Matching on the raw path keeps an encoded "/" inside an id from splitting segments.
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, True
            path_known = True
        return None, {}, path_known

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if raw_path == "/_emulator" or raw_path.startswith("/_emulator/"):
            return await self._control(request, raw_path[len("/_emulator") :])
        vendor, _, rest = raw_path.lstrip("/").partition("/")
        if vendor not in VENDORS:
            return _json(404, {"error": f"unknown vendor prefix; use one of /{', /'.join(VENDORS)}"})
        route, params, path_known = self._match(vendor, request.method, "/" + rest)
        operation = route.operation if route else "unknown"
        status: int | None = None
        try:
            body = await request.read()
            if route is not None and route.vendor == "cloudflare" and route.operation == "status":
                operation = self._cf_status_operation(body)
            call = _Call(vendor, operation, request.method, raw_path, params, request.query, request.headers, body)
            response = await self._vendor_call(route, call, path_known)
            if response is None:
                return self._drop(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # e.g. a body over client_max_size
            status = exc.status
            raise
        finally:
            with self._lock:
                self._requests.append(RequestRecord(vendor, operation, request.method, raw_path, status))
            # Only these five fields are ever logged: never headers, query strings or bodies (secrets).
            log.info("%s %s %s %s -> %s", vendor, operation, request.method, raw_path, status or "dropped")

    async def _vendor_call(self, route: _Route | None, call: _Call, path_known: bool) -> web.Response | None:
        """Answer a vendor request, applying rate limits and faults; None means drop the connection."""
        vendor = call.vendor
        if route is None:
            with self._lock:
                rate = self._check_rate_limit(vendor, time.monotonic())
            if rate is not None:
                return self._rate_limited(vendor, rate)
            if path_known:
                return self._error(vendor, _ApiError(405, "Method Not Allowed"))
            if vendor == "cloudflare":
                return self._error(vendor, _ApiError(404, "No route for that URI", 7000))
            return self._error(vendor, _ApiError(404, "Not found"))
        with self._lock:
            rate = self._check_rate_limit(vendor, time.monotonic())
            fault = None if rate is not None else self._take_fault(vendor, call.operation)
        if rate is not None:
            return self._rate_limited(vendor, rate)
        kind = fault.fault if fault else None
        if fault is not None and kind in _STATUS_FAULTS:
            return self._fault_response(call, fault)
        if kind == "reset_before":
            return None
        if kind == "malformed_json":
            return web.Response(status=200, text='{"data": ', content_type="application/json")
        if fault is not None and kind == "slow":
            await asyncio.sleep(float(fault.params.get("delay", 2)))
        call.mystery = kind == "unknown_status"
        response = self._process(route, call)
        if kind == "reset_after":
            return None
        return self._with_rate_headers(vendor, response)

    def _process(self, route: _Route, call: _Call) -> web.Response:
        # Authentication and handling run under the lock in one go, so every answer is a consistent snapshot.
        try:
            with self._lock:
                call.now = time.monotonic()
                denied = self._authenticate(call)
                if denied is not None:
                    return denied
                return route.handler(call)
        except _ApiError as exc:
            return self._error(call.vendor, exc)
        except Exception:
            log.exception("workflow emulator handler failed for %s %s", call.vendor, call.operation)
            return self._error(call.vendor, _ApiError(500, "Internal Server Error"))

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without answering; the client sees a reset / server disconnect."""
        if request.transport is not None:
            request.transport.close()
        # aiohttp's write of this response fails on the closed transport, which it handles as a client
        # disconnect: nothing reaches the wire and nothing is logged as an error.
        return web.Response(status=599)

    def _with_rate_headers(self, vendor: str, response: web.Response) -> web.Response:
        if vendor != "datadog":
            return response
        with self._lock:
            limit = self._rate_limits.get(vendor)
            if limit is not None:
                remaining, reset = limit.limit - limit.count, limit.reset_in(time.monotonic())
                response.headers.update(self._dd_rate_headers(limit.limit, limit.period, remaining, reset))
        return response

    @staticmethod
    def _dd_rate_headers(limit: int, period: float, remaining: int, reset: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Period": _seconds_header(period),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": _seconds_header(reset),
            "X-RateLimit-Name": "workflows",
        }

    def _rate_limited(self, vendor: str, limit: _RateLimit) -> web.Response:
        # Retry-After must be whole seconds; round up so a client honouring it lands in the next window.
        wait = max(1, math.ceil(limit.reset_in(time.monotonic())))
        headers = {"Retry-After": str(wait)}
        if vendor == "datadog":
            headers.update(self._dd_rate_headers(limit.limit, limit.period, 0, wait))
        return self._too_many(vendor, headers)

    @staticmethod
    def _too_many(vendor: str, headers: dict[str, str]) -> web.Response:
        if vendor == "datadog":
            return _json(429, {"errors": ["Too many requests"]}, headers)
        if vendor == "cloudflare":
            body = {
                "success": False,
                "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}],
                "messages": [],
                "result": None,
            }
            return _json(429, body, headers)
        return _json(429, {"message": "Rate Limit Exceeded"}, headers)

    def _fault_response(self, call: _Call, fault: _Fault) -> web.Response:
        status = int(fault.fault)
        if status == 429:
            retry = fault.params.get("retry_after", 1)
            style = fault.params.get("header", "both" if call.vendor == "datadog" else "retry-after")
            headers: dict[str, str] = {}
            if style in ("both", "retry-after"):
                headers["Retry-After"] = _seconds_header(retry)
            if style in ("both", "reset"):
                headers.update(self._dd_rate_headers(1, 60, 0, float(retry)))
            return self._too_many(call.vendor, headers)
        if call.vendor == "sailpoint" and status == 401 and call.operation == "token":
            return _json(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        if call.vendor == "sailpoint" and status == 401:
            return _json(401, {"error": _SP_JWT_ERROR})
        message = http.HTTPStatus(status).phrase
        if call.vendor == "cloudflare" and status in (401, 403):
            return self._error(call.vendor, _ApiError(status, "Authentication error", 10000))
        if call.vendor == "cloudflare" and status == 404:
            return self._error(call.vendor, _ApiError(404, "instance.not_found", 10001))
        if call.vendor == "cloudflare" and status >= 500:
            return self._error(call.vendor, _ApiError(status, message, 10002))
        return self._error(call.vendor, _ApiError(status, message))

    def _error(self, vendor: str, exc: _ApiError) -> web.Response:
        if vendor == "datadog":
            if isinstance(exc.code, str):
                return _json(exc.status, {"errors": [{"code": exc.code, "detail": exc.message}]})
            return _json(exc.status, {"errors": [exc.message]})
        if vendor == "cloudflare":
            code = exc.code if isinstance(exc.code, int) else _CF_DEFAULT_CODES.get(exc.status, 10000)
            body = {
                "success": False,
                "errors": [{"code": code, "message": exc.message}],
                "messages": [],
                "result": None,
            }
            return _json(exc.status, body)
        if exc.status == 401:
            return _json(401, {"error": exc.message})
        body = {
            "detailCode": _SP_DETAIL_CODES.get(exc.status, f"{exc.status} {http.HTTPStatus(exc.status).phrase}"),
            "trackingId": uuid.uuid4().hex,
            "messages": [{"locale": "en-US", "localeOrigin": "DEFAULT", "text": exc.message}],
            "causes": [],
        }
        return _json(exc.status, body)

    # -- authentication (lock held) ----------------------------------------------------------------
    def _authenticate(self, call: _Call) -> web.Response | None:
        creds = self.credentials
        headers = call.headers
        if call.vendor == "datadog":
            if not _same(headers.get("DD-API-KEY"), creds.datadog_api_key):
                raise _ApiError(403, "Forbidden")
            if not _same(headers.get("DD-APPLICATION-KEY"), creds.datadog_application_key):
                raise _ApiError(403, "Failed permission authorization checks", "FORBIDDEN")
            return None
        if call.vendor == "cloudflare":
            authorization = headers.get("Authorization")
            if authorization is not None:
                scheme, _, token = authorization.partition(" ")
                ok = scheme.lower() == "bearer" and _same(token.strip(), creds.cloudflare_api_token)
            else:
                ok = _same(headers.get("X-Auth-Email"), creds.cloudflare_email) and _same(
                    headers.get("X-Auth-Key"), creds.cloudflare_global_api_key
                )
            if not ok:
                raise _ApiError(403, "Authentication error", 10000)
            if call.params.get("account") != creds.cloudflare_account_id:
                raise _ApiError(
                    404,
                    f"Could not route to {call.path.removeprefix('/cloudflare')}, "
                    "perhaps your object identifier is invalid?",
                    7003,
                )
            return None
        if call.operation == "token":
            return None
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= call.now:
            return _json(401, {"error": _SP_JWT_ERROR})
        return None

    # -- body helpers ------------------------------------------------------------------------------
    @staticmethod
    def _json_body(call: _Call, empty: Any = None) -> Any:
        if not call.body.strip():
            return empty
        try:
            return json.loads(call.body)
        except ValueError:
            raise _ApiError(400, "Bad Request") from None

    # -- Datadog -----------------------------------------------------------------------------------
    def _dd_start(self, call: _Call) -> web.Response:
        body = self._json_body(call, empty={})
        if not isinstance(body, dict):
            raise _ApiError(400, "Bad Request")
        meta = body.get("meta")
        meta = {} if meta is None else meta
        payload = meta.get("payload") if isinstance(meta, dict) else None
        payload = {} if payload is None else payload
        if not isinstance(meta, dict) or not isinstance(payload, dict):
            raise _ApiError(400, "Bad Request")
        workflow = call.params["workflow"]
        ex = self._new_execution("datadog", workflow, payload)
        return _json(200, {"data": {"id": ex.id, "type": "workflow_instances"}, "meta": {"workflowId": workflow}})

    def _dd_attributes(self, ex: _Execution, call: _Call, with_steps: bool) -> dict[str, Any]:
        phase = ex.phase(call.now)
        attributes: dict[str, Any] = {
            "id": ex.id,
            "workflowId": ex.workflow,
            "instanceStatus": {"detailsKind": ex.status(call.now, call.mystery)},
            "startTimestamp": _iso(ex.created_wall),
            "endTimestamp": _iso(ex.ended_at(call.now)),
            "outputs": ex.output() if phase == _SUCCEEDED else {},
            "payload": ex.payload,
        }
        if with_steps:
            steps = []
            for name, step_phase, _, _ in ex.steps(call.now):
                step: dict[str, Any] = {"stepName": name, "status": _VENDOR_STATUS["datadog"][step_phase]}
                if step_phase == _FAILED:
                    step["error"] = {"message": ex.script.error_message}
                elif step_phase == _SUCCEEDED:
                    step["outputs"] = {"step": name, "ok": True}
                steps.append(step)
            attributes["stepStateAssociations"] = steps
        return attributes

    def _dd_instance(self, call: _Call) -> _Execution:
        ex = self._find("datadog", call.params["workflow"], call.params["id"])
        if ex is None:
            raise _ApiError(404, f"Workflow instance {call.params['id']} not found", "INSTANCE_NOT_FOUND")
        return ex

    def _dd_get(self, call: _Call) -> web.Response:
        ex = self._dd_instance(call)
        attributes = self._dd_attributes(ex, call, with_steps=True)
        return _json(200, {"data": {"id": ex.id, "type": "workflow_instances", "attributes": attributes}})

    def _dd_list(self, call: _Call) -> web.Response:
        size = _int_param(call.query, "page[size]", 10)
        number = _int_param(call.query, "page[number]", 0)
        if size > 100:
            raise _ApiError(400, "page[size] must be <= 100")
        if size < 1:
            raise _ApiError(400, "page[size] must be >= 1")
        if number < 0:
            raise _ApiError(400, "page[number] must be >= 0")
        everything = self._listing("datadog", call.params["workflow"])
        phases = [ex.phase(call.now) for ex in everything]
        page = everything[number * size : (number + 1) * size]
        data = [
            {
                "id": ex.id,
                "type": "workflow_instances",
                "attributes": self._dd_attributes(ex, call, with_steps=False),
            }
            for ex in page
        ]
        meta = {
            "page": {"totalCount": len(everything)},
            "succeededCount": phases.count(_SUCCEEDED),
            "failedCount": phases.count(_FAILED),
            "canceledCount": phases.count(_CANCELED),
        }
        return _json(200, {"data": data, "meta": meta})

    def _dd_cancel(self, call: _Call) -> web.Response:
        ex = self._dd_instance(call)
        phase = ex.phase(call.now)
        if phase in _TERMINAL:
            raise _ApiError(
                400,
                f"Workflow instance {ex.id} already finished with status {_VENDOR_STATUS['datadog'][phase]}",
                "INSTANCE_ALREADY_FINISHED",
            )
        ex.canceled_mono = call.now
        return _json(200, {})

    # -- Cloudflare --------------------------------------------------------------------------------
    def _cf_ids(self, workflow: str) -> tuple[str, str]:
        """Stable (workflow_id, version_id) per workflow name, like a deployed workflow has."""
        if workflow not in self._cf_workflow_ids:
            self._cf_workflow_ids[workflow] = (str(uuid.uuid4()), str(uuid.uuid4()))
        return self._cf_workflow_ids[workflow]

    def _cf_ok(self, result: Any, result_info: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
        if result_info is not None:
            body["result_info"] = result_info
        return _json(200, body)

    def _cf_validate_create(self, workflow: str, body: Any, taken: set[str]) -> tuple[str | None, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, "Invalid request body: expected an object", 10001)
        instance_id = body.get("instance_id")
        if instance_id is not None:
            if (
                not isinstance(instance_id, str)
                or len(instance_id) > 100
                or not _CF_INSTANCE_ID.match(instance_id)
                or _CF_RESERVED_ID.match(instance_id)
            ):
                raise _ApiError(400, "instance.invalid_id", 10001)
            if instance_id in taken or self._find("cloudflare", workflow, instance_id) is not None:
                raise _ApiError(409, "instance.already_exists", 10021)
            taken.add(instance_id)
        params = body.get("params")
        return instance_id, params if params is not None else {}

    def _cf_created(self, call: _Call, ex: _Execution) -> dict[str, Any]:
        workflow_id, version_id = self._cf_ids(ex.workflow)
        return {
            "id": ex.id,
            "status": ex.status(call.now, call.mystery),
            "version_id": version_id,
            "workflow_id": workflow_id,
        }

    def _cf_start(self, call: _Call) -> web.Response:
        workflow = call.params["workflow"]
        instance_id, params = self._cf_validate_create(workflow, self._json_body(call, empty={}), set())
        ex = self._new_execution("cloudflare", workflow, params, execution_id=instance_id)
        return self._cf_ok(self._cf_created(call, ex))

    def _cf_batch(self, call: _Call) -> web.Response:
        workflow = call.params["workflow"]
        body = self._json_body(call)
        if not isinstance(body, list):
            raise _ApiError(400, "Invalid request body: expected a list of instances", 10001)
        if len(body) > 100:
            raise _ApiError(400, "A batch can create at most 100 instances", 10001)
        # Validate the whole batch first: one bad or duplicate entry rejects the request without side effects.
        taken: set[str] = set()
        validated = [self._cf_validate_create(workflow, item, taken) for item in body]
        created = [self._new_execution("cloudflare", workflow, p, execution_id=i) for i, p in validated]
        return self._cf_ok([self._cf_created(call, ex) for ex in created])

    def _known_workflows(self, vendor: str) -> list[str]:
        """Workflows the emulator has heard of (scripted or executed), in first-seen order."""
        names = [workflow for v, workflow in self._scripts if v == vendor]
        names += [ex.workflow for ex in self._executions.values() if ex.vendor == vendor]
        return list(dict.fromkeys(names))

    def _cf_workflows(self, call: _Call) -> web.Response:
        """GET .../workflows: Cloudflare's list of deployed workflows (page/per_page pagination)."""
        per_page = _int_param(call.query, "per_page", 10)
        page = _int_param(call.query, "page", 1)
        if not 1 <= per_page <= 100 or page < 1:
            raise _ApiError(400, "per_page must be between 1 and 100 and page >= 1", 10001)
        names = self._known_workflows("cloudflare")
        created = _iso(datetime.now(timezone.utc))
        result = [
            {
                "id": self._cf_ids(name)[0],
                "name": name,
                "class_name": "EmulatedWorkflow",
                "script_name": "emulated-worker",
                "created_on": created,
                "modified_on": created,
            }
            for name in names[(page - 1) * per_page : page * per_page]
        ]
        info = {"count": len(result), "per_page": per_page, "page": page, "total_count": len(names)}
        return self._cf_ok(result, info)

    def _cf_instance(self, call: _Call) -> _Execution:
        ex = self._find("cloudflare", call.params["workflow"], call.params["id"])
        if ex is None:
            raise _ApiError(404, "instance.not_found", 10001)
        return ex

    def _cf_get(self, call: _Call) -> web.Response:
        ex = self._cf_instance(call)
        phase = ex.phase(call.now)
        _, version_id = self._cf_ids(ex.workflow)
        step_list = ex.steps(call.now)
        wait = self._cf_wait_step(ex, call.now)
        failed = phase == _FAILED
        result: dict[str, Any] = {
            "status": ex.status(call.now, call.mystery),
            "success": True if phase == _SUCCEEDED else False if phase in (_FAILED, _CANCELED) else None,
            "error": {"name": "Error", "message": ex.script.error_message} if failed else None,
            "output": ex.output() if phase == _SUCCEEDED else None,
            "params": ex.payload,
            "queued": _iso(ex.created_wall),
            "start": _iso(ex.started_at(call.now)),
            "end": _iso(ex.ended_at(call.now)),
            "versionId": version_id,
            "trigger": {"source": "api"},
            "step_count": len(step_list) + (wait is not None),
        }
        if call.query.get("simple", "").lower() != "true":
            steps: list[dict[str, Any]] = [
                {
                    "name": name,
                    "type": "step",
                    "start": _iso(start),
                    "end": _iso(end),
                    "success": True if step_phase == _SUCCEEDED else False if step_phase == _FAILED else None,
                    "output": {"step": name, "ok": True} if step_phase == _SUCCEEDED else None,
                    "error": {"name": "Error", "message": ex.script.error_message} if step_phase == _FAILED else None,
                }
                for name, step_phase, start, end in step_list
            ]
            if wait is not None:
                steps.insert(min(ex.steps_before_wait(), len(steps)), wait)
            result["steps"] = steps
        return self._cf_ok(result)

    @staticmethod
    def _cf_wait_step(ex: _Execution, now: float) -> dict[str, Any] | None:
        """The steps[] entry of step.waitForEvent (Cloudflare's ``type: "waitForEvent"`` shape), once reached."""
        reached = ex.wait_step(now)
        if reached is None:
            return None
        start, end, finished = reached
        return {
            "name": f"wait for {ex.script.wait_for_event}",
            "type": "waitForEvent",
            "start": _iso(start),
            "end": _iso(end),
            "finished": finished,
            "output": copy.deepcopy(ex.awaited_payload) if finished else None,
            "error": None,
        }

    def _cf_list(self, call: _Call) -> web.Response:
        query = call.query
        per_page = _int_param(query, "per_page", 50)
        if not 1 <= per_page <= 100:
            raise _ApiError(400, "per_page must be between 1 and 100", 10001)
        cursor, page_raw = query.get("cursor"), query.get("page")
        if cursor and page_raw:
            raise _ApiError(400, "page and cursor are mutually exclusive", 10001)
        direction = query.get("direction")
        if direction not in (None, "asc", "desc"):
            raise _ApiError(400, "direction must be asc or desc", 10001)
        status = query.get("status")
        if status is not None and status not in _CF_STATUSES:
            raise _ApiError(400, f"Invalid status filter {status!r}", 10001)
        try:
            date_start = _parse_iso(query["date_start"]) if query.get("date_start") else None
            date_end = _parse_iso(query["date_end"]) if query.get("date_end") else None
        except ValueError:
            raise _ApiError(400, "date_start and date_end must be ISO 8601 date-times", 10001) from None

        matching = [
            ex
            for ex in self._listing("cloudflare", call.params["workflow"])
            if (status is None or ex.status(call.now) == status)
            and (date_start is None or ex.created_wall >= date_start)
            and (date_end is None or ex.created_wall <= date_end)
        ]
        info: dict[str, Any] = {}
        after: tuple[int, int] | None = None
        if cursor:
            after, cursor_direction = _decode_cursor(cursor)
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
            page_number = _int_param(query, "page", 1)
            if page_number < 1:
                raise _ApiError(400, "page must be >= 1", 10001)
            offset = (page_number - 1) * per_page
            info["page"] = page_number
        else:
            offset = 0
        page = matching_after[offset : offset + per_page]
        more = len(matching_after) > offset + len(page)
        workflow_id, version_id = self._cf_ids(call.params["workflow"])
        result = [
            {
                "id": ex.id,
                "created_on": _iso(ex.created_wall),
                "modified_on": _iso(ex.modified_at(call.now)),
                "started_on": _iso(ex.started_at(call.now)),
                "ended_on": _iso(ex.ended_at(call.now)),
                "status": ex.status(call.now, call.mystery),
                "version_id": version_id,
                "workflow_id": workflow_id,
            }
            for ex in page
        ]
        info.update(
            {
                "count": len(page),
                "per_page": per_page,
                "total_count": len(matching),
                "cursor": _encode_cursor(page[-1].sort_key(), direction) if more and page else "",
            }
        )
        return self._cf_ok(result, info)

    @staticmethod
    def _cf_status_operation(body: bytes) -> str:
        """A terminate is the "cancel" operation (faults and the log key on it); others are "status"."""
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            return "status"
        return "cancel" if isinstance(parsed, dict) and parsed.get("status") == "terminate" else "status"

    def _cf_status(self, call: _Call) -> web.Response:
        """PATCH .../status: the instance's state machine (an action that does not fit answers 400, 10001).

        - ``pause``: from queued, running or waiting -> paused (the script clock stops; a wait keeps waiting
          for its event, which may still arrive while paused). Refused when paused or finished.
        - ``resume``: from paused only -> back where it was: queued/running, or waiting while the awaited
          event has not arrived. Refused in every other state, a finished instance included.
        - ``terminate``: from queued, running, paused or waiting -> terminated. Refused when finished.
        - ``restart``: from any state, finished ones included -> starts over from scratch (new creation
          time, queued again; pauses, termination and received events are all forgotten).
        """
        ex = self._cf_instance(call)
        body = self._json_body(call)
        action = body.get("status") if isinstance(body, dict) else None
        if action not in ("pause", "resume", "terminate", "restart"):
            raise _ApiError(400, "status must be one of pause, resume, terminate, restart", 10001)
        now = call.now
        phase = ex.phase(now)
        current = _VENDOR_STATUS["cloudflare"][phase]
        if action == "restart":
            ex.restart(now)
        elif phase in _TERMINAL:
            raise _ApiError(400, f"Cannot {action} instance: instance is already {current}", 10001)
        elif action == "terminate":
            if phase == _PAUSED:
                ex.pauses[-1] = (ex.pauses[-1][0], now)
            ex.canceled_mono = now
        elif action == "pause":
            if phase == _PAUSED:
                raise _ApiError(400, "Cannot pause instance: instance is already paused", 10001)
            ex.pauses.append((now, None))
        else:
            if phase != _PAUSED:
                raise _ApiError(400, f"Cannot resume instance: instance is {current}, not paused", 10001)
            ex.pauses[-1] = (ex.pauses[-1][0], now)
        return self._cf_ok({"status": ex.status(now, call.mystery), "timestamp": _iso(ex.wall(now))})

    def _cf_event(self, call: _Call) -> web.Response:
        """POST .../events/{type}: the JSON body is the payload (empty body: null).

        Any unfinished instance takes any event type (200, result null) and records it; the type its
        script waits for resumes a waiting instance (or is buffered until the wait begins, or, while
        paused, takes effect on resume). A finished instance refuses events (400, 10001).
        """
        ex = self._cf_instance(call)
        payload = self._json_body(call)
        phase = ex.phase(call.now)
        if phase in _TERMINAL:
            current = _VENDOR_STATUS["cloudflare"][phase]
            raise _ApiError(
                400, f"Cannot send event to instance: instance is already {current} and not waiting for events", 10001
            )
        ex.receive_event(call.params["event"], payload, call.now)
        return self._cf_ok(None)

    # -- SailPoint ---------------------------------------------------------------------------------
    def _sp_token(self, call: _Call) -> web.Response:
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
            return _json(400, body)
        creds = self.credentials
        known_client = _same(client_id, creds.sailpoint_client_id)
        if not (known_client and _same(client_secret, creds.sailpoint_client_secret)):
            return _json(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        if len(self._tokens) > 1000:
            # Long-running demos refresh tokens forever; forget the expired ones so the table stays small.
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > call.now}
        token = secrets.token_urlsafe(32)
        ttl = creds.sailpoint_token_ttl
        self._tokens[token] = call.now + ttl
        expires_in: float | int = int(ttl) if float(ttl).is_integer() else ttl
        return _json(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": expires_in,
                "scope": "sp:scopes:all",
            },
        )

    def _sp_workflows(self, call: _Call) -> web.Response:
        """GET /{v}/workflows: SailPoint's list of workflows (limit/offset/count like every v3 list)."""
        limit = _int_param(call.query, "limit", 250)
        offset = _int_param(call.query, "offset", 0)
        if not 0 <= limit <= 250 or offset < 0:
            raise _ApiError(400, "limit must be between 0 and 250 and offset >= 0")
        names = self._known_workflows("sailpoint")
        result = [
            {"id": name, "name": name, "enabled": self._script_for("sailpoint", name).enabled is not False}
            for name in names[offset : offset + limit]
        ]
        wants_count = call.query.get("count", "").lower() == "true"
        return _json(200, result, {"X-Total-Count": str(len(names))} if wants_count else None)

    def _sp_input(self, call: _Call) -> Any:
        body = self._json_body(call, empty={})
        if not isinstance(body, dict):
            raise _ApiError(400, "The request body must be a JSON object")
        payload = body.get("input")
        if payload is not None and not isinstance(payload, dict):
            raise _ApiError(400, "input must be a JSON object")
        return payload if payload is not None else {}

    def _sp_test(self, call: _Call) -> web.Response:
        workflow = call.params["workflow"]
        payload = self._sp_input(call)
        if self._script_for("sailpoint", workflow).enabled is True:
            raise _ApiError(400, "Workflow must be disabled to test")
        ex = self._new_execution("sailpoint", workflow, payload, mode="test")
        return _json(200, {"workflowExecutionId": ex.id})

    def _sp_external(self, call: _Call) -> web.Response:
        workflow = call.params["workflow"]
        payload = self._sp_input(call)
        if self._script_for("sailpoint", workflow).enabled is False:
            raise _ApiError(400, "Workflow must be enabled with an external trigger to be executed")
        ex = self._new_execution("sailpoint", workflow, payload, mode="external")
        return _json(200, {"workflowExecutionId": ex.id, "message": "Workflow was executed successfully."})

    def _sp_execution(self, call: _Call) -> _Execution:
        ex = self._find("sailpoint", "", call.params["id"])
        if ex is None:
            raise _ApiError(404, f"Workflow execution {call.params['id']} was not found")
        return ex

    @staticmethod
    def _sp_view(ex: _Execution, call: _Call) -> dict[str, Any]:
        return {
            "id": ex.id,
            "workflowId": ex.workflow,
            "requestId": ex.request_id,
            "startTime": _iso(ex.created_wall, 6),
            "closeTime": _iso(ex.ended_at(call.now), 6),
            "status": ex.status(call.now, call.mystery),
        }

    def _sp_get(self, call: _Call) -> web.Response:
        return _json(200, self._sp_view(self._sp_execution(call), call))

    def _sp_history(self, call: _Call) -> web.Response:
        ex = self._sp_execution(call)
        events: list[dict[str, Any]] = []

        def add(kind: str, at: datetime | None, attributes: dict[str, Any]) -> None:
            events.append({"type": kind, "timestamp": _iso(at, 6), "attributes": attributes})

        add("WorkflowExecutionStarted", ex.created_wall, {"input": ex.payload})
        for name, step_phase, start, end in ex.steps(call.now):
            add("ActivityTaskScheduled", start, {"displayName": name})
            if step_phase == _SUCCEEDED:
                add("ActivityTaskCompleted", end, {"displayName": name, "result": {"step": name, "ok": True}})
            elif step_phase == _FAILED:
                add("ActivityTaskFailed", end, {"displayName": name, "error": ex.script.error_message})
        phase = ex.phase(call.now)
        closing = {
            _SUCCEEDED: ("WorkflowExecutionCompleted", {"output": ex.output()}),
            _FAILED: ("WorkflowExecutionFailed", {"error": ex.script.error_message}),
            _CANCELED: ("WorkflowExecutionCanceled", {}),
        }.get(phase)
        if closing is not None:
            add(closing[0], ex.ended_at(call.now), closing[1])
        return _json(200, events)

    def _sp_cancel(self, call: _Call) -> web.Response:
        ex = self._sp_execution(call)
        phase = ex.phase(call.now)
        if phase in _TERMINAL:
            status = _VENDOR_STATUS["sailpoint"][phase]
            raise _ApiError(400, f"Workflow execution {ex.id} is already {status}")
        ex.canceled_mono = call.now
        return _json(204)

    def _sp_list(self, call: _Call) -> web.Response:
        limit = _int_param(call.query, "limit", 250)
        offset = _int_param(call.query, "offset", 0)
        if not 0 <= limit <= 250:
            raise _ApiError(400, "limit must be between 0 and 250")
        if offset < 0:
            raise _ApiError(400, "offset must be >= 0")
        predicates = _sp_filters(call.query.get("filters", ""))
        matching = [
            ex
            for ex in self._listing("sailpoint", call.params["workflow"])
            if all(predicate(ex, call.now) for predicate in predicates)
        ]
        wants_count = call.query.get("count", "").lower() == "true"
        headers = {"X-Total-Count": str(len(matching))} if wants_count else None
        return _json(200, [self._sp_view(ex, call) for ex in matching[offset : offset + limit]], headers)

    # -- control API -------------------------------------------------------------------------------
    async def _control(self, request: web.Request, sub: str) -> web.Response:
        method = request.method
        try:
            body: Any = None
            if method == "POST":
                raw = await request.read()
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            if sub == "/health" and method == "GET":
                return _json(200, {"status": "ok"})
            if sub == "/scripts" and method == "POST":
                vendor, workflow = body.pop("vendor"), body.pop("workflow")
                self.script(vendor, workflow, WorkflowScript(**body))
            elif sub == "/faults" and method == "POST":
                vendor, operation, fault = body.pop("vendor"), body.pop("operation"), body.pop("fault")
                self.inject_fault(vendor, operation, fault, body.pop("times", 1), **body)
            elif sub == "/rate_limit" and method == "POST":
                self.set_rate_limit(body["vendor"], int(body["limit"]), float(body.get("period", 1.0)))
            elif sub == "/revoke_tokens" and method == "POST":
                self.revoke_tokens()
            elif sub == "/archive" and method == "POST":
                self.archive_execution(body["vendor"], body["execution_id"])
            elif sub == "/reset" and method == "POST":
                self.reset()
            elif sub == "/executions" and method == "GET":
                vendor = request.query.get("vendor") or None
                workflow = request.query.get("workflow") or None
                vendors = [vendor] if vendor else list(VENDORS)
                return _json(200, [item for v in vendors for item in self.executions(v, workflow)])
            elif sub == "/requests" and method == "GET":
                return _json(200, [dataclasses.asdict(record) for record in self.requests])
            else:
                return _json(404, {"error": f"unknown control endpoint {method} /_emulator{sub}"})
        except KeyError as exc:
            return _json(400, {"error": f"missing or unknown key: {exc.args[0]}"})
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, {"status": "ok"})


def _same(given: str | None, expected: str) -> bool:
    # Constant-time comparison: the emulator should not teach hooks habits that would leak in production.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _encode_cursor(key: tuple[int, int], direction: str) -> str:
    raw = json.dumps({"after": list(key), "direction": direction}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[tuple[int, int], str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created, seq = data["after"]
        return (int(created), int(seq)), str(data["direction"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise _ApiError(400, "Invalid cursor", 10001) from None


def _sp_filters(text: str) -> list[Callable[[_Execution, float], bool]]:
    """Parse SailPoint's ``filters`` (``status eq`` and ``start_time eq|gt|ge|lt|le``, joined by ``and``)."""
    predicates: list[Callable[[_Execution, float], bool]] = []
    position, text = 0, text.strip()
    while position < len(text):
        clause = _SP_FILTER_CLAUSE.match(text, position)
        if clause is None:
            raise _ApiError(400, f"Invalid filter expression at position {position}: {text!r}")
        name, operator, value = clause.group(1), clause.group(2).lower(), clause.group(3)
        position = clause.end()
        if position < len(text):
            joiner = _SP_FILTER_AND.match(text, position)
            if joiner is None:
                raise _ApiError(400, f"Invalid filter expression at position {position}: {text!r}")
            position = joiner.end()
            if position >= len(text):
                raise _ApiError(400, "Invalid filter expression: dangling 'and'")
        predicates.append(_sp_predicate(name, operator, value))
    return predicates


def _sp_predicate(name: str, operator: str, value: str) -> Callable[[_Execution, float], bool]:
    if name == "status":
        if operator != "eq":
            raise _ApiError(400, f"Unsupported operator {operator!r} for status; only eq is supported")
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
            raise _ApiError(400, f"Unsupported operator {operator!r} for start_time")
        try:
            # startTime is rendered with microseconds, the precision stored, so eq matches a value read back.
            moment = _parse_iso(value)
        except ValueError:
            raise _ApiError(400, f"Invalid date-time {value!r} in filter") from None
        check = compare[operator]
        return lambda ex, now: check(ex.created_wall, moment)
    raise _ApiError(400, f"Unsupported filter field {name!r}; supported: status, start_time")


def _write_atomically(path: str, text: str) -> None:
    """Readers poll for the URL file; a rename makes sure they never see it half written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".emulator-url-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_workflow_provider.testing.emulator",
        description="Offline emulator of the Datadog, Cloudflare and SailPoint workflow APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--url-file", help="write the base URL to this file once listening")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"refusing to listen on non-loopback host {args.host!r}")
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emulator = WorkflowEmulator(host=args.host, port=args.port).start()
    try:
        # The file first: whoever sees the line may read the file right away.
        if args.url_file:
            _write_atomically(args.url_file, emulator.url)
        print(f"workflow emulator listening on {emulator.url}", flush=True)
        # A timeout keeps the main thread returning to the interpreter so signal handlers run promptly.
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        if args.url_file:
            # A stale URL file would point the next reader at a dead port.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.url_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
