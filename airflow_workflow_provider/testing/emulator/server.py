"""The emulator's one aiohttp server: lifecycle, the test-facing controls, and dispatch of vendor requests.

Dispatch is the same for every vendor: match the route the vendor module lists, count the request against
the rate limit, apply a queued fault, authenticate and run the handler under the lock, log the request. What
differs per vendor (paths, statuses, envelopes, auth) lives in ``datadog.py``, ``cloudflare.py`` and
``sailpoint.py``; the ``/_emulator/*`` control API in ``control.py``.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from airflow_workflow_provider.testing.emulator import control
from airflow_workflow_provider.testing.emulator.cloudflare import CloudflareApi
from airflow_workflow_provider.testing.emulator.common import (
    ApiError,
    Call,
    Route,
    VendorApi,
    iso,
    json_response,
    log,
)
from airflow_workflow_provider.testing.emulator.datadog import VOCABULARIES as DATADOG_VOCABULARIES
from airflow_workflow_provider.testing.emulator.datadog import DatadogApi
from airflow_workflow_provider.testing.emulator.faults import (
    FAULTS,
    OPERATIONS,
    STATUS_FAULTS,
    Fault,
    rate_limited,
    status_fault_response,
)
from airflow_workflow_provider.testing.emulator.sailpoint import SailPointApi
from airflow_workflow_provider.testing.emulator.state import (
    VENDORS,
    EmulatorCredentials,
    EmulatorState,
    RequestRecord,
    WorkflowScript,
)


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


class WorkflowEmulator:
    """In-process emulator of the three vendor workflow APIs; see the module docstring.

    All state sits behind one ``threading.Lock``: the server thread and the test's thread both touch it.
    """

    def __init__(
        self,
        credentials: EmulatorCredentials | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        control_token: str | None = None,
    ) -> None:
        # The emulator accepts well-known credentials, so it must never be reachable from another machine.
        if not is_loopback(host):
            raise ValueError(f"refusing to listen on non-loopback host {host!r}")
        #: What a caller of the ``/_emulator/*`` control API sends in ``X-Emulator-Token``: new for each
        #: emulator unless given, so that nothing but the process that started it can drive it.
        self.control_token = control_token or secrets.token_urlsafe(24)
        self._state = EmulatorState(credentials or EmulatorCredentials())
        self._host = host
        self._requested_port = port
        self._lock = self._state.lock
        self._sailpoint = SailPointApi(self._state)
        self._datadog = DatadogApi(self._state)
        self._cloudflare = CloudflareApi(self._state)
        apis: tuple[VendorApi, ...] = (self._datadog, self._cloudflare, self._sailpoint)
        self._apis = {api.NAME: api for api in apis}
        # Each vendor module lists its own routes; the server only matches them under the vendor's prefix.
        self._routes = {name: api.routes() for name, api in self._apis.items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def credentials(self) -> EmulatorCredentials:
        return self._state.credentials

    @credentials.setter
    def credentials(self, credentials: EmulatorCredentials) -> None:
        self._state.credentials = credentials

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

    @property
    def control_headers(self) -> dict[str, str]:
        """Headers for a call to the ``/_emulator/*`` control API (send POST bodies as JSON)."""
        return {control.CONTROL_TOKEN_HEADER: self.control_token}

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
            self._state.scripts[(self._vendor(vendor), workflow)] = copy.deepcopy(script)

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
            self._state.faults.add(Fault(vendor, operation, fault, times, dict(params)))

    def set_rate_limit(self, vendor: str, limit: int, period: float, blocks_for_a_period: bool = False) -> None:
        """Answer 429 beyond ``limit`` requests per fixed window of ``period`` seconds, per credential.

        Limit 0 removes it. ``blocks_for_a_period``: past the limit, the credential is refused for a whole
        period from then (Cloudflare's rule).
        """
        self._vendor(vendor)
        with self._lock:
            self._state.faults.set_rate_limit(vendor, limit, period, blocks_for_a_period)

    def enforce_documented_limits(self, *vendors: str) -> None:
        """Enforce each vendor's documented limit per credential (every vendor when none is named)."""
        for vendor in vendors or VENDORS:
            api = self._apis[self._vendor(vendor)]
            limit, period = api.DOCUMENTED_LIMIT
            self.set_rate_limit(vendor, limit, period, api.BLOCKS_FOR_A_PERIOD)

    def executions(self, vendor: str, workflow: str | None = None) -> list[dict[str, Any]]:
        """Snapshot, in creation order, of id, vendor, workflow, vendor status, created_at (ISO), payload.

        Cloudflare executions also carry ``events``: every event received since creation (or the last
        restart), oldest first, as ``{"type", "payload"}``.
        """
        self._vendor(vendor)
        with self._lock:
            now = time.monotonic()
            snapshot = []
            for ex in self._state.executions.values():
                if ex.vendor != vendor or (workflow is not None and ex.workflow != workflow):
                    continue
                item = {
                    "id": ex.id,
                    "vendor": ex.vendor,
                    "workflow": ex.workflow,
                    "status": ex.status(now),
                    "created_at": iso(ex.created_wall, 6),
                    "payload": copy.deepcopy(ex.payload),
                }
                item.update(self._apis[vendor].snapshot(ex))
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
        durations: list[float] | None = None,
    ) -> list[str]:
        """Seed ``count`` executions (oldest first) for pagination tests.

        ``outcome`` is "success", "failure" or "canceled". With ``finished`` the executions are back-dated
        ``spacing`` seconds apart, the newest ``duration + spacing`` ago, so all are already terminal
        (listings sort by creation time, so the seeds of separate calls interleave); otherwise they start
        now with the workflow's script. ``mode`` is the SailPoint trigger ("test" or "external"). Finished
        seeds never wait for an event: they are history, so their script's ``wait_for_event`` is dropped.
        ``durations`` (unfinished seeds): one execution per duration, each running that long.
        """
        if durations is not None:
            count = len(durations)
        self._vendor(vendor)
        if outcome not in ("success", "failure", "canceled"):
            raise ValueError("outcome must be 'success', 'failure' or 'canceled'")
        if count < 0 or spacing < 0:
            raise ValueError("count and spacing must be >= 0")
        with self._lock:
            base = self._state.script_for(vendor, workflow)
            if outcome != "canceled":
                base.outcome = outcome
            if finished:
                base.wait_for_event = None
            now_mono, now_wall = time.monotonic(), datetime.now(timezone.utc)
            ids = []
            for index in range(count):
                age = (base.duration + (count - index) * spacing) if finished else 0.0
                script = copy.deepcopy(base)
                if durations is not None:
                    script.duration = float(durations[index])
                ex = self._apis[vendor].new_execution(
                    workflow,
                    copy.deepcopy(payload) if payload is not None else {"index": index},
                    script=script,
                    created=(now_mono - age, now_wall - timedelta(seconds=age)),
                    mode=mode,
                )
                if outcome == "canceled":
                    ex.canceled_mono = ex.created_mono + min(base.queued_for, base.duration / 2)
                ids.append(ex.id)
            return ids

    def set_datadog_vocabulary(self, name: str) -> None:
        """Which undocumented strings Datadog's success and failure take (``datadog.VOCABULARIES``).

        Datadog has recorded only IN_PROGRESS and CANCELED; instances started from now on use the chosen
        guess for the rest, instances already started keep theirs.
        """
        if name not in DATADOG_VOCABULARIES:
            raise ValueError(f"unknown Datadog vocabulary {name!r}; expected one of {', '.join(DATADOG_VOCABULARIES)}")
        with self._lock:
            self._datadog.vocabulary = DATADOG_VOCABULARIES[name]

    def set_cloudflare_list_cursors(self, enabled: bool) -> None:
        """Whether Cloudflare's instance list hands out ``result_info.cursor`` (else it pages by ``page=`` only)."""
        with self._lock:
            self._cloudflare.list_cursors = bool(enabled)

    def start_cron_instance(
        self, workflow: str, cron: str = "*/30 * * * *", script: WorkflowScript | None = None
    ) -> str:
        """Start a Cloudflare instance as a cron trigger does; its id is ``"<cron>-<scheduled epoch ms>"``."""
        if script is not None:
            script.validate()
        with self._lock:
            return self._cloudflare.start_cron_instance(workflow, cron, copy.deepcopy(script) if script else None)

    def archive_execution(self, vendor: str, execution_id: str) -> None:
        """Forget an execution the way SailPoint's 90-day archive does: it then answers 404."""
        self._vendor(vendor)
        with self._lock:
            keys = [key for key in self._state.executions if key[0] == vendor and key[2] == execution_id]
            if not keys:
                raise KeyError(f"no {vendor} execution {execution_id!r}")
            for key in keys:
                del self._state.executions[key]

    def revoke_tokens(self) -> None:
        """Invalidate every SailPoint access token issued so far (the next API call gets 401)."""
        with self._lock:
            self._sailpoint.revoke_tokens()

    def sailpoint_per_service(self, enabled: bool) -> None:
        """Serve SailPoint's per-service paths (the default), or answer 404 there like a tenant without them."""
        with self._lock:
            self._sailpoint.serve_per_service(enabled)

    @property
    def requests(self) -> list[RequestRecord]:
        """Copy of the vendor request log, oldest first."""
        with self._lock:
            return list(self._state.requests)

    def reset(self) -> None:
        """Forget executions, faults, scripts, rate limits and the request log (issued tokens stay valid)."""
        with self._lock:
            self._state.executions.clear()
            self._state.faults.clear()
            self._state.scripts.clear()
            self._state.requests.clear()
            self._sailpoint.serve_per_service(True)

    # -- HTTP dispatch -----------------------------------------------------------------------------
    # -- HTTP dispatch -----------------------------------------------------------------------------
    def _match(self, vendor: str, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, path params, whether the path exists under another method)."""
        path_known = False
        for route in self._routes[vendor]:
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
            return await control.answer(self, request, raw_path[len("/_emulator") :])
        vendor, _, rest = raw_path.lstrip("/").partition("/")
        if vendor not in VENDORS:
            return json_response(404, {"error": f"unknown vendor prefix; use one of /{', /'.join(VENDORS)}"})
        api = self._apis[vendor]
        route, params, path_known = self._match(vendor, request.method, "/" + rest)
        operation = route.operation if route else "unknown"
        status: int | None = None
        arrived = time.time()
        try:
            body = await request.read()
            if route is not None:
                operation = api.operation(route, body)
            call = Call(vendor, operation, request.method, raw_path, params, request.query, request.headers, body)
            response = await self._vendor_call(api, route, call, path_known)
            if response is None:
                return self._drop(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # e.g. a body over client_max_size
            status = exc.status
            raise
        finally:
            with self._lock:
                self._state.requests.append(RequestRecord(vendor, operation, request.method, raw_path, status, arrived))
            # Only these five fields are ever logged: never headers, query strings or bodies (secrets).
            log.info("%s %s %s %s -> %s", vendor, operation, request.method, raw_path, status or "dropped")

    async def _vendor_call(
        self, api: VendorApi, route: Route | None, call: Call, path_known: bool
    ) -> web.Response | None:
        """Answer a vendor request, applying rate limits and faults; None means drop the connection."""
        vendor = call.vendor
        faults = self._state.faults
        credential = api.credential(call)
        if route is None:
            with self._lock:
                rate = faults.check_rate_limit(vendor, credential, time.monotonic())
            if rate is not None:
                return rate_limited(api, rate, credential, time.monotonic())
            if path_known:
                return api.error(ApiError(405, "Method Not Allowed"))
            return api.error(api.no_route())
        with self._lock:
            rate = faults.check_rate_limit(vendor, credential, time.monotonic())
            fault = None if rate is not None else faults.take(vendor, call.operation)
        if rate is not None:
            return rate_limited(api, rate, credential, time.monotonic())
        kind = fault.fault if fault else None
        if fault is not None and kind in STATUS_FAULTS:
            return status_fault_response(api, call, fault)
        if kind == "reset_before":
            return None
        if kind == "malformed_json":
            return web.Response(status=200, text='{"data": ', content_type="application/json")
        if fault is not None and kind == "slow":
            await asyncio.sleep(float(fault.params.get("delay", 2)))
        call.mystery = kind == "unknown_status"
        response = self._process(api, route, call)
        if kind == "reset_after":
            return None
        return self._with_rate_headers(api, credential, response)

    def _process(self, api: VendorApi, route: Route, call: Call) -> web.Response:
        # Authentication and handling run under the lock in one go, so every answer is a consistent snapshot.
        try:
            with self._lock:
                call.now = time.monotonic()
                denied = api.authenticate(call)
                if denied is not None:
                    return denied
                return route.handler(call)
        except ApiError as exc:
            return api.error(exc)
        except Exception:
            log.exception("workflow emulator handler failed for %s %s", call.vendor, call.operation)
            return api.error(ApiError(500, "Internal Server Error"))

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without answering; the client sees a reset / server disconnect."""
        if request.transport is not None:
            request.transport.close()
        # aiohttp's write of this response fails on the closed transport, which it handles as a client
        # disconnect: nothing reaches the wire and nothing is logged as an error.
        return web.Response(status=599)

    def _with_rate_headers(self, api: VendorApi, credential: str, response: web.Response) -> web.Response:
        with self._lock:
            limit = self._state.faults.rate_limits.get(api.NAME)
            if limit is not None:
                now = time.monotonic()
                remaining, reset = limit.remaining(credential, now), limit.reset_in(credential, now)
                response.headers.update(api.rate_headers(limit.limit, limit.period, remaining, reset))
        return response
