"""``make live``: check the provider against your own Datadog, Cloudflare or SailPoint tenant in a minute.

Never run in CI: it starts real executions. For each vendor whose ``AWP_LIVE_<VENDOR>_...`` variables are
set, it presses the connection's Test button, starts one execution of the workflow you name and waits for
it, lists the workflow's latest executions, then starts a second execution and cancels it. Every step and
every answer the vendor gave is printed, with credentials and tokens replaced by ``***``. A vendor without
its variables is skipped with the list of what to set.

Variables (``<V>`` is ``DATADOG``, ``CLOUDFLARE`` or ``SAILPOINT``)::

    AWP_LIVE_<V>_WORKFLOW     the workflow to run (Datadog/SailPoint id, Cloudflare name)     required
    AWP_LIVE_<V>_PAYLOAD      its input, a JSON object                                         default {}
    AWP_LIVE_<V>_EXTRA        more connection extras, a JSON object (e.g. {"start_mode": "test"})
    AWP_LIVE_<V>_BASE_URL     API base URL override (a proxy; the emulator in this package's tests)
    AWP_LIVE_DATADOG_API_KEY, AWP_LIVE_DATADOG_APP_KEY                                        required
    AWP_LIVE_DATADOG_SITE                                                                      default datadoghq.com
    AWP_LIVE_CLOUDFLARE_ACCOUNT_ID, AWP_LIVE_CLOUDFLARE_API_TOKEN                             required
    AWP_LIVE_CLOUDFLARE_EMAIL (only with a Global API Key in AWP_LIVE_CLOUDFLARE_API_TOKEN)
    AWP_LIVE_SAILPOINT_TENANT, AWP_LIVE_SAILPOINT_CLIENT_ID, AWP_LIVE_SAILPOINT_CLIENT_SECRET required
    AWP_LIVE_TIMEOUT          seconds to wait for the first execution                          default 300
    AWP_LIVE_POLL             seconds between two checks                                       default 5

Run ``python -m airflow_workflow_provider.testing.live [datadog|cloudflare|sailpoint ...]``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

PREFIX = "AWP_LIVE_"
MAX_BODY_CHARS = 1500
LISTED = 5
# Keys whose values are credentials wherever they appear in an answer (SailPoint's token answer, echoes).
SECRET_KEY = re.compile(r"token|secret|password|authorization|api[_-]?key|app(lication)?[_-]?key", re.IGNORECASE)


@dataclass(frozen=True)
class LiveVendor:
    """What one vendor needs from the environment, and how it becomes an Airflow connection."""

    name: str
    label: str
    hook_path: str
    required: tuple[str, ...]
    connection: Callable[[Mapping[str, str]], dict[str, Any]]
    # Filters that keep the listing step to one small page.
    list_filters: Mapping[str, Any]

    def variable(self, suffix: str) -> str:
        return f"{PREFIX}{self.name.upper()}_{suffix}"

    def missing(self, env: Mapping[str, str]) -> list[str]:
        return [self.variable(s) for s in ("WORKFLOW", *self.required) if not env.get(self.variable(s))]


def _datadog(get: Mapping[str, str]) -> dict[str, Any]:
    return {
        "conn_type": "datadog_workflows",
        "host": get.get("SITE") or "datadoghq.com",
        "password": get["API_KEY"],
        "extra": {"application_key_secret": get["APP_KEY"]},
    }


def _cloudflare(get: Mapping[str, str]) -> dict[str, Any]:
    return {
        "conn_type": "cloudflare_workflows",
        "login": get.get("EMAIL") or None,
        "password": get["API_TOKEN"],
        "extra": {"account_id": get["ACCOUNT_ID"]},
    }


def _sailpoint(get: Mapping[str, str]) -> dict[str, Any]:
    return {
        "conn_type": "sailpoint_workflows",
        "host": get["TENANT"],
        "login": get["CLIENT_ID"],
        "password": get["CLIENT_SECRET"],
        "extra": {},
    }


VENDORS: dict[str, LiveVendor] = {
    "datadog": LiveVendor(
        "datadog",
        "Datadog",
        "airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook",
        ("API_KEY", "APP_KEY"),
        _datadog,
        {"page_size": LISTED},
    ),
    "cloudflare": LiveVendor(
        "cloudflare",
        "Cloudflare",
        "airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook",
        ("ACCOUNT_ID", "API_TOKEN"),
        _cloudflare,
        {"per_page": LISTED},
    ),
    "sailpoint": LiveVendor(
        "sailpoint",
        "SailPoint",
        "airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook",
        ("TENANT", "CLIENT_ID", "CLIENT_SECRET"),
        _sailpoint,
        {"limit": LISTED},
    ),
}


class LiveCheckFailed(Exception):
    """A step of the live check did not go as it should; the message says which and why."""


def _json_object(name: str, text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LiveCheckFailed(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LiveCheckFailed(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every credential replaced: by key name, and every secret the client holds, by value."""
    if isinstance(value, dict):
        return {k: "***" if SECRET_KEY.search(str(k)) else redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(item, redact) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value


def describe_body(body: bytes, redact: Callable[[str], str]) -> str:
    """An answer's body for a person to read: redacted, compact JSON, cut after MAX_BODY_CHARS."""
    if not body:
        return "(empty body)"
    try:
        text = json.dumps(redacted(json.loads(body), redact), separators=(",", ":"))
    except ValueError:
        text = redact(body.decode("utf-8", "replace"))
    if len(text) > MAX_BODY_CHARS:
        text = f"{text[:MAX_BODY_CHARS]}... ({len(text) - MAX_BODY_CHARS} more characters)"
    return text


class RecordingSender:
    """The hook's sender, printing every exchange (method, path, status, redacted body) as it happens."""

    def __init__(self, sender: Any, redact: Callable[[str], str], say: Callable[[str], None]) -> None:
        self._sender, self._redact, self._say = sender, redact, say
        self._last: dict[str, str] = {}  # the last answer shown per call: a poll repeats it until something changes

    def send(self, base_url: str, request: Any, budget: Any = None) -> Any:
        response = self._sender.send(base_url, request, budget)
        query = "&".join(f"{k}={v}" for k, v in request.params)
        target = self._redact(request.path + (f"?{query}" if query else ""))
        body = describe_body(response.body, self._redact)
        call = f"{request.method} {target}"
        self._say(f"      {call} -> HTTP {response.status}")
        self._say(f"        {body}" if self._last.get(call) != body else "        (the same answer as last time)")
        self._last[call] = body
        return response

    def close(self) -> None:
        self._sender.close()


def _hook(vendor: LiveVendor, env: Mapping[str, str], say: Callable[[str], None]) -> Any:
    """The vendor's hook on an Airflow connection defined in the environment, as a deployment may define it."""
    from importlib import import_module

    from airflow_workflow_provider.core.http import SyncSender

    values = {s: env[vendor.variable(s)] for s in ("SITE", "EMAIL", *vendor.required) if env.get(vendor.variable(s))}
    connection = vendor.connection(values)
    connection["extra"].update(_json_object(vendor.variable("EXTRA"), env.get(vendor.variable("EXTRA"))))
    if env.get(vendor.variable("BASE_URL")):
        connection["extra"]["base_url"] = env[vendor.variable("BASE_URL")]
    conn_id = f"awp_live_{vendor.name}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({k: v for k, v in connection.items() if v is not None})
    module, _, name = vendor.hook_path.rpartition(".")
    hook = getattr(import_module(module), name)(conn_id)
    api = hook.api
    hook._sender = RecordingSender(SyncSender(api.vendor, api.settings.timeouts), api.redact, say)
    return hook


def _wait(hook: Any, workflow: str, execution_id: str, timeout: float, poll: float, say: Callable[[str], None]) -> Any:
    started, last = time.monotonic(), None
    while True:
        execution = hook.get_execution(workflow, execution_id)
        if execution.state is not last:
            say(f"    {time.monotonic() - started:6.1f} s  {execution.state.value} ({execution.vendor_status!r})")
            last = execution.state
        if execution.is_terminal:
            return execution
        if time.monotonic() - started >= timeout:
            raise LiveCheckFailed(
                f"execution {execution_id} still {execution.state.value} after {timeout:.0f} s (AWP_LIVE_TIMEOUT); "
                f"see {execution.url}"
            )
        time.sleep(poll)


def check_vendor(
    vendor: LiveVendor, env: Mapping[str, str], *, timeout: float, poll: float, say: Callable[[str], None]
) -> None:
    """The five steps for one vendor; raises LiveCheckFailed (or the provider's error) at the first that fails."""
    workflow = env[vendor.variable("WORKFLOW")]
    payload = _json_object(vendor.variable("PAYLOAD"), env.get(vendor.variable("PAYLOAD")))
    hook = _hook(vendor, env, say)
    try:
        say("  1. Test button (the cheapest authenticated call)")
        ok, message = hook.test_connection()
        say(f"    -> {'OK' if ok else 'FAILED'}: {hook.api.redact(message)}")
        if not ok:
            raise LiveCheckFailed(f"the connection test failed: {hook.api.redact(message)}")

        say(f"  2. start an execution of {workflow!r} with payload {json.dumps(payload)}")
        first = hook.start_execution(workflow, payload)
        say(f"    -> execution id {first!r}; UI: {hook.execution_url(workflow, first)}")

        say(f"  3. wait for it (a check every {poll:g} s, at most {timeout:g} s)")
        try:
            execution = _wait(hook, workflow, first, timeout, poll, say)
        except LiveCheckFailed:
            hook.cancel_execution(workflow, first)
            say(f"    canceled {first!r}, which was still running")
            raise
        if execution.state.is_failure:
            execution = hook.explain_failure(execution)
        note = f"; {execution.state_note}" if execution.state_note else ""
        say(f"    -> {execution.state.value}{note}")
        say(f"    -> as the provider reads it: {json.dumps(execution.summary(), default=str)}")

        say(f"  4. list the workflow's latest executions (first {LISTED})")
        listed = list(islice(hook.list_executions(workflow, **vendor.list_filters), LISTED))
        for item in listed:
            say(f"    -> {item.id}  {item.state.value} ({item.vendor_status!r})  started {item.started_at}")
        if first not in {item.id for item in listed}:
            say(f"    (execution {first!r} is not among these {LISTED}: newer executions came first)")

        say("  5. start a second execution and cancel it")
        second = hook.start_execution(workflow, payload)
        say(f"    -> execution id {second!r}")
        hook.cancel_execution(workflow, second)
        after = hook.get_execution(workflow, second)
        say(f"    -> after the cancel: {after.state.value} ({after.vendor_status!r})")
        if after.state.is_terminal and after.succeeded:
            say("    (it had already succeeded before the cancel arrived: a workflow this short cannot be canceled)")
    finally:
        hook.close()


def run(vendors: Sequence[str], env: Mapping[str, str], say: Callable[[str], None] = print) -> dict[str, str]:
    """Check each vendor; returns ``{vendor: "passed" | "skipped" | "failed: why"}``."""
    from airflow_workflow_provider.core.errors import WorkflowProviderError

    timeout = float(env.get(f"{PREFIX}TIMEOUT") or 300)
    poll = float(env.get(f"{PREFIX}POLL") or 5)
    results: dict[str, str] = {}
    for name in vendors:
        vendor = VENDORS[name]
        missing = vendor.missing(env)
        if missing:
            say(f"== {vendor.label}: SKIPPED (set {', '.join(missing)} to check it)")
            results[name] = "skipped"
            continue
        say(f"== {vendor.label}")
        try:
            check_vendor(vendor, env, timeout=timeout, poll=poll, say=say)
        except (LiveCheckFailed, WorkflowProviderError) as exc:
            say(f"  FAILED: {exc}")
            results[name] = f"failed: {exc}"
        else:
            say(f"  {vendor.label}: every step passed")
            results[name] = "passed"
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    unknown = [a for a in args if a not in VENDORS]
    if unknown:
        print(f"unknown vendor(s) {', '.join(unknown)}; choose among {', '.join(VENDORS)}", file=sys.stderr)
        return 2
    # Airflow writes its configuration where AIRFLOW_HOME points: keep it out of the user's home unless set.
    os.environ.setdefault("AIRFLOW_HOME", os.path.join(tempfile.gettempdir(), "awp-live-airflow-home"))
    results = run(args or list(VENDORS), os.environ)
    print("\nlive check: " + ", ".join(f"{name} {outcome.split(':')[0]}" for name, outcome in results.items()))
    if all(outcome == "skipped" for outcome in results.values()):
        print("nothing was checked: no vendor has its AWP_LIVE_* variables (see the module's help)")
    return 1 if any(outcome.startswith("failed") for outcome in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
