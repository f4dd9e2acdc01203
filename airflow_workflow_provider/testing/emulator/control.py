"""The ``/_emulator/*`` control API: what the emulator's Python methods do, for a test in another process.

``GET /health``, ``POST /scripts`` / ``/faults`` / ``/rate_limit`` / ``/revoke_tokens`` / ``/archive`` /
``/datadog_vocabulary`` / ``/cloudflare_list_cursors`` / ``/cron_instance`` / ``/reset`` (JSON bodies carry
the method's arguments), ``POST /executions`` (seed running executions, one per ``durations`` entry),
``GET /executions`` and ``GET /requests``.

A web page open while a developer tests could otherwise reach it (DNS rebinding: a name that resolves to
127.0.0.1 after the page loaded), so every call must

- name a loopback ``Host`` (``127.0.0.1``, ``localhost``, ``[::1]``, any port): a rebound name is refused;
- carry the emulator's per-start token in ``X-Emulator-Token`` (``WorkflowEmulator.control_token``; the CLI
  writes it next to its ``--url-file``), except ``GET /health``, which changes and tells nothing;
- send ``POST`` bodies as ``application/json``, a type no page can send to another origin without asking.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from airflow_workflow_provider.testing.emulator.common import json_response
from airflow_workflow_provider.testing.emulator.state import VENDORS, WorkflowScript

if TYPE_CHECKING:
    from airflow_workflow_provider.testing.emulator.server import WorkflowEmulator


CONTROL_TOKEN_HEADER = "X-Emulator-Token"


def _loopback_host(host: str) -> bool:
    """Whether a ``Host`` header (name and optional port) names this machine's loopback interface."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refusal(emulator: WorkflowEmulator, request: web.Request, sub: str) -> web.Response | None:
    if not _loopback_host(request.headers.get("Host", "")):
        return json_response(403, {"error": "the control API answers only requests to a loopback Host"})
    if sub == "/health" and request.method == "GET":
        return None
    token = request.headers.get(CONTROL_TOKEN_HEADER, "")
    if not hmac.compare_digest(token.encode(), emulator.control_token.encode()):
        return json_response(
            403, {"error": f"missing or wrong {CONTROL_TOKEN_HEADER} (see WorkflowEmulator.control_token)"}
        )
    if request.method == "POST" and request.content_type != "application/json":
        return json_response(415, {"error": "control calls take a JSON body (Content-Type: application/json)"})
    return None


async def answer(emulator: WorkflowEmulator, request: web.Request, sub: str) -> web.Response:
    """Answer ``request`` to ``/_emulator{sub}``."""
    refused = _refusal(emulator, request, sub)
    if refused is not None:
        return refused
    method = request.method
    try:
        body: Any = None
        if method == "POST":
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        if sub == "/health" and method == "GET":
            return json_response(200, {"status": "ok"})
        if sub == "/scripts" and method == "POST":
            vendor, workflow = body.pop("vendor"), body.pop("workflow")
            emulator.script(vendor, workflow, WorkflowScript(**body))
        elif sub == "/faults" and method == "POST":
            vendor, operation, fault = body.pop("vendor"), body.pop("operation"), body.pop("fault")
            emulator.inject_fault(vendor, operation, fault, body.pop("times", 1), **body)
        elif sub == "/rate_limit" and method == "POST":
            if body.get("documented"):
                emulator.enforce_documented_limits(*([body["vendor"]] if body.get("vendor") else []))
            else:
                emulator.set_rate_limit(body["vendor"], int(body["limit"]), float(body.get("period", 1.0)))
        elif sub == "/revoke_tokens" and method == "POST":
            emulator.revoke_tokens()
        elif sub == "/archive" and method == "POST":
            emulator.archive_execution(body["vendor"], body["execution_id"])
        elif sub == "/datadog_vocabulary" and method == "POST":
            emulator.set_datadog_vocabulary(body["name"])
        elif sub == "/cloudflare_list_cursors" and method == "POST":
            emulator.set_cloudflare_list_cursors(bool(body["enabled"]))
        elif sub == "/cron_instance" and method == "POST":
            instance_id = emulator.start_cron_instance(body["workflow"], body.get("cron", "*/30 * * * *"))
            return json_response(200, {"id": instance_id})
        elif sub == "/reset" and method == "POST":
            emulator.reset()
        elif sub == "/executions" and method == "POST":
            # Seed running executions without going through the vendor API (and its rate limit).
            ids = emulator.create_executions(
                body["vendor"], body["workflow"], 0, finished=False, durations=[float(d) for d in body["durations"]]
            )
            return json_response(200, {"ids": ids})
        elif sub == "/executions" and method == "GET":
            vendor = request.query.get("vendor") or None
            workflow = request.query.get("workflow") or None
            vendors = [vendor] if vendor else list(VENDORS)
            return json_response(200, [item for v in vendors for item in emulator.executions(v, workflow)])
        elif sub == "/requests" and method == "GET":
            return json_response(200, [dataclasses.asdict(record) for record in emulator.requests])
        else:
            return json_response(404, {"error": f"unknown control endpoint {method} /_emulator{sub}"})
    except KeyError as exc:
        return json_response(400, {"error": f"missing or unknown key: {exc.args[0]}"})
    except (TypeError, ValueError) as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(200, {"status": "ok"})
