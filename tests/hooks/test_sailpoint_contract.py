"""SailPoint as its published contract (sailpoint-oss/api-specs, cut into tests/contracts/sailpoint/) describes it.

Each test names the part of the api-specs it comes from; each failed against the provider as it was
before: reads with the external trigger's client, a 200 without an execution id taken for a bad
answer, the deprecated v3 history and list paths only.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_workflow_provider.connection_forms import SAILPOINT
from airflow_workflow_provider.core.api import ClientSettings
from airflow_workflow_provider.core.errors import BadRequestError, NotFoundError, PermissionDeniedError
from airflow_workflow_provider.core.http import ApiResponse
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.sailpoint import SailPointApi, SailPointWorkflowsHook
from airflow_workflow_provider.testing import WorkflowEmulator, WorkflowScript

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts" / "sailpoint"


def _contract(name: str) -> dict[str, Any]:
    """A fragment of SailPoint's published document, fetched by scripts/refresh-contracts.py (not committed)."""
    path = CONTRACTS / name
    if not path.exists():
        pytest.skip(f"{path.name}: {CONTRACT_MISSING}")
    return yaml.safe_load(path.read_text())


CONTRACT_MISSING = (
    "SailPoint's published document is not kept in this repository; "
    "run `python scripts/refresh-contracts.py sailpoint` with GitHub access to fetch it "
    "(no package on a registry CI reaches ships it, so CI skips this)"
)


def _trigger_connection(emulator: WorkflowEmulator, set_connection: Any, **user: str) -> str:
    """login/password = the external trigger's own OAuth client, as SailPoint creates it for the trigger."""
    creds = emulator.credentials
    overrides = {"login": creds.sailpoint_trigger_client_id, "password": creds.sailpoint_trigger_client_secret}
    return set_connection("sailpoint", conn_id="sp_trigger", overrides=overrides, **user)


def _user_extras(emulator: WorkflowEmulator) -> dict[str, str]:
    creds = emulator.credentials
    return {"user_client_id": creds.sailpoint_client_id, "user_client_secret": creds.sailpoint_client_secret}


# -- external mode: the trigger's client starts, a user-level credential reads ---------------------


def test_security_sections_say_the_trigger_client_may_only_start() -> None:
    """The premise of the two credentials, read from the contract rather than assumed."""
    paths = _contract("workflows-v1.yaml")["paths"]
    external = paths["/workflows/v1/execute/external/{id}"]["post"]["security"]
    assert {"applicationAuth": ["sp:workflow-execute:external"]} in external
    for path, method in [
        ("/workflow-executions/v1/{id}", "get"),
        ("/workflow-executions/v1/{id}/history-v2", "get"),
        ("/workflows/v1/{id}/executions", "get"),
        ("/workflows/v1", "get"),
        ("/workflow-executions/v1/{id}/cancel", "post"),
    ]:
        schemes = {name for requirement in paths[path][method]["security"] for name in requirement}
        assert schemes == {"userAuth"}, (path, schemes)


def test_external_mode_reads_with_the_user_credential(emulator: WorkflowEmulator, set_connection: Any) -> None:
    emulator.script("sailpoint", "wf", WorkflowScript(duration=0.2, enabled=True))
    hook = SailPointWorkflowsHook(_trigger_connection(emulator, set_connection, **_user_extras(emulator)))

    execution_id = hook.start_execution("wf", {"x": 1})
    execution = hook.get_execution("wf", execution_id)
    assert execution.id == execution_id
    assert [e.id for e in hook.list_executions("wf")] == [execution_id]
    assert hook.get_execution_history(execution_id)[0]["type"] == "WorkflowExecutionStarted"
    # Two clients, two tokens: the start went out with the trigger's, every read with the user's (the
    # trigger's token may call nothing but execute/external, so the reads above prove the user's was used).
    assert len([r for r in emulator.requests if r.operation == "token" and r.status == 200]) >= 2


def test_trigger_client_alone_cannot_poll_and_test_says_what_to_add(
    emulator: WorkflowEmulator, set_connection: Any
) -> None:
    emulator.script("sailpoint", "wf", WorkflowScript(duration=0.2, enabled=True))
    hook = SailPointWorkflowsHook(_trigger_connection(emulator, set_connection))

    execution_id = hook.start_execution("wf")
    with pytest.raises(PermissionDeniedError):
        hook.get_execution("wf", execution_id)
    ok, message = hook.test_connection()
    assert not ok
    assert "sp:workflow:read" in message and "extra.user_client_id" in message


def test_test_connection_checks_both_credentials(emulator: WorkflowEmulator, set_connection: Any) -> None:
    both = _trigger_connection(emulator, set_connection, **_user_extras(emulator))
    ok, message = SailPointWorkflowsHook(both).test_connection()
    assert ok and "user credential (extra.user_client_id)" in message and "trigger client" in message

    wrong_user = {**_user_extras(emulator), "user_client_secret": "wrong-user-secret"}
    ok, message = SailPointWorkflowsHook(_trigger_connection(emulator, set_connection, **wrong_user)).test_connection()
    assert not ok and "extra.user_client_id" in message and "wrong-user-secret" not in message

    wrong_trigger = set_connection(
        "sailpoint", conn_id="sp_bad_trigger", overrides={"password": "wrong-trigger-secret"}, **_user_extras(emulator)
    )
    ok, message = SailPointWorkflowsHook(wrong_trigger).test_connection()
    assert not ok and "trigger client in login (Client ID)" in message and "wrong-trigger-secret" not in message


def test_the_user_secret_is_a_masked_secret(emulator: WorkflowEmulator, set_connection: Any) -> None:
    field = SAILPOINT.extra_fields["user_client_secret"]
    assert field.secret
    # Airflow masks extras by name: the name must contain one of its sensitive words.
    assert "secret" in "user_client_secret"
    hook = SailPointWorkflowsHook(_trigger_connection(emulator, set_connection, **_user_extras(emulator)))
    assert emulator.credentials.sailpoint_client_secret in hook.api.secrets
    assert emulator.credentials.sailpoint_client_secret not in repr(hook.api)


# -- start answered 200 without an execution id ----------------------------------------------------


def test_start_answered_200_without_an_id_fails_with_the_vendor_message(
    emulator: WorkflowEmulator, set_connection: Any
) -> None:
    answer = _contract("workflows-v1.yaml")["paths"]["/workflows/v1/execute/external/{id}"]["post"]["responses"]["200"]
    documented = answer["content"]["application/json"]["schema"]["properties"]["message"]["example"]
    emulator.script("sailpoint", "off", WorkflowScript(enabled=False))
    set_connection("sailpoint")

    with pytest.raises(BadRequestError) as caught:
        SailPointWorkflowsHook().start_execution("off", mode="external")
    assert documented in str(caught.value)
    assert emulator.executions("sailpoint") == []


def test_parse_start_reads_the_documented_message_without_io() -> None:
    api = SailPointApi(tenant="acme", client_id="id", client_secret="secret", settings=ClientSettings())
    request = api.start_request("wf", {})
    body = b'{"message": "Workflow was not executed externally. Check enabled flag on workflow definition"}'
    response = ApiResponse(vendor="SailPoint", operation="start_execution", status=200, headers={}, body=body)
    with pytest.raises(BadRequestError, match="Check enabled flag"):
        api.parse_start(request, response)


# -- current paths first, the deprecated ones where a tenant lacks them -----------------------------


def _request_paths(api: SailPointApi) -> dict[str, str]:
    return {
        "start_external": api.start_request("wf", {}, mode="external").path,
        "start_test": api.start_request("wf", {}, mode="test").path,
        "get": api.get_request("wf", "ex-1").path,
        "history": api.history_request("ex-1").path,
        "cancel": api.cancel_request("wf", "ex-1").path,
        "list": api.list_request("wf", None, {}).path,
        "check": api.check_request().path,
    }


def _documented(path: str, document: dict[str, Any]) -> bool:
    """Whether ``path`` is one of the document's path templates with its parameters filled in."""
    return any(re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) for template in document["paths"])


def test_every_operation_asks_the_per_service_path_first() -> None:
    api = SailPointApi(tenant="acme-paths", client_id="id", client_secret="secret", settings=ClientSettings())
    for operation, path in _request_paths(api).items():
        assert _documented(path, _contract("workflows-v1.yaml")), (operation, path)
    # ...and the history it asks for is history-v2, the one the v3 document's deprecation points to.
    assert api.history_request("ex-1").path.endswith("/history-v2")
    deprecated = _contract("v3.yaml")["paths"]["/workflow-executions/{id}/history"]["get"]
    assert deprecated.get("deprecated") is True and "history-v2" in deprecated["description"]


def test_a_tenant_without_the_per_service_paths_is_served_by_the_versioned_ones(
    emulator: WorkflowEmulator, set_connection: Any
) -> None:
    emulator.sailpoint_per_service(False)
    emulator.script("sailpoint", "wf", WorkflowScript(duration=0.2))
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()

    first = hook.start_execution("wf")
    second = hook.start_execution("wf")
    assert hook.get_execution("wf", first).id == first
    # A 401 (a token another emulator issued on this port) is retried with a new token: not a path decision.
    starts = [r.path for r in emulator.requests if r.operation == "start" and r.status != 401]
    # The first start learns that this tenant lacks /workflows/v1; the second goes straight to /v3.
    assert starts == [
        "/sailpoint/workflows/v1/execute/external/wf",
        "/sailpoint/v3/workflows/execute/external/wf",
        "/sailpoint/v3/workflows/execute/external/wf",
    ]
    assert {e.id for e in hook.list_executions("wf")} == {first, second}
    hook.cancel_execution("wf", second)
    assert hook.get_execution("wf", second).state is ExecutionState.CANCELED


def test_a_missing_execution_is_not_found_on_both_generations(emulator: WorkflowEmulator, set_connection: Any) -> None:
    set_connection("sailpoint")
    with pytest.raises(NotFoundError):
        SailPointWorkflowsHook().get_execution("wf", "no-such-execution")


# -- history-v2, and the deprecated history paged --------------------------------------------------


def test_history_v2_is_read_in_one_request(emulator: WorkflowEmulator, set_connection: Any) -> None:
    emulator.script("sailpoint", "wf", WorkflowScript(duration=0.0, outcome="failure", failing_step="Send mail"))
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()
    execution = _finished(hook, hook.start_execution("wf"))

    explained = hook.explain_failure(execution)
    assert explained.failing_step == "Send mail" and explained.error_message == "Simulated failure"
    histories = [r.path for r in emulator.requests if r.operation == "history" and r.status != 401]
    assert len(histories) == 1 and histories[0].endswith("/history-v2")


def test_a_long_deprecated_history_is_paged(emulator: WorkflowEmulator, set_connection: Any) -> None:
    emulator.sailpoint_per_service(False)
    # 300 routine events first: the failure is only on the second page of 250.
    script = WorkflowScript(duration=0.0, outcome="failure", failing_step="Last step", extra_history_events=300)
    emulator.script("sailpoint", "long", script)
    set_connection("sailpoint")
    hook = SailPointWorkflowsHook()
    execution = _finished(hook, hook.start_execution("long"))

    explained = hook.explain_failure(execution)
    assert explained.failing_step == "Last step"
    before = len(emulator.requests)
    events = hook.get_execution_history(execution.id)
    pages = [r.path for r in emulator.requests[before:] if r.operation == "history" and r.status != 401]
    # 300 routine events + start + steps + end: two pages of at most 250, straight from /v3 (learned above).
    assert len(events) > 300 and events[-1]["type"] == "WorkflowExecutionFailed"
    assert len(pages) == 2 and all("/v3/workflow-executions/" in path for path in pages)


def test_the_execution_model_has_no_output() -> None:
    schema = _contract("workflows-v1.yaml")["components"]["schemas"]["workflowexecution"]
    assert "output" not in schema["properties"]
    api = SailPointApi(tenant="acme", client_id="id", client_secret="secret", settings=ClientSettings())
    example = {name: spec.get("example") for name, spec in schema["properties"].items()}
    request = api.get_request("wf", str(example["id"]))
    body = json.dumps(example).encode()
    execution = api.parse_execution(
        request, ApiResponse(vendor="SailPoint", operation="get_execution", status=200, headers={}, body=body)
    )
    assert execution.state is ExecutionState.SUCCEEDED and execution.output is None


def _finished(hook: SailPointWorkflowsHook, execution_id: str, deadline: float = 10.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        execution = hook.get_execution("wf", execution_id)
        if execution.state.is_terminal:
            return execution
        if time.monotonic() > end:
            raise AssertionError(f"{execution_id} not finished after {deadline} s")
        time.sleep(0.05)
