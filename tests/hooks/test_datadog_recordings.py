"""Datadog's own recorded answers (tests/contracts/datadog/cassettes/) through the hook's parsers.

Every status string, field name and shape asserted here is what Datadog's API really answered when
Datadog recorded its client's tests; see the README beside the fixtures for where each comes from.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_workflow_provider.core.api import ClientSettings
from airflow_workflow_provider.core.errors import BadRequestError, NotFoundError, PermissionDeniedError
from airflow_workflow_provider.core.http import ApiResponse
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.hooks.datadog import DatadogApi

CASSETTES = Path(__file__).parents[1] / "contracts" / "datadog" / "cassettes"
WORKFLOW = "ccf73164-1998-4785-a7a3-8d06c7e5f558"


def recorded(name: str) -> dict[str, Any]:
    """One of Datadog's recorded answers, fetched by scripts/refresh-contracts.py (not committed)."""
    path = CASSETTES / name
    if not path.exists():
        pytest.skip(
            f"{name}: Datadog's recorded answers are not kept in this repository; fetch them with "
            "`python scripts/refresh-contracts.py --from-registries datadog` (PyPI datadog-api-client, as `make test` "
            "does); tests/contracts/datadog/cassettes/README.md says which cassettes they are"
        )
    return json.loads(path.read_text())


def api() -> DatadogApi:
    return DatadogApi(site="datadoghq.com", api_key="k" * 32, application_key="a" * 40, settings=ClientSettings())


def answer(operation: str, status: int, body: Any) -> ApiResponse:
    return ApiResponse(vendor="Datadog", operation=operation, status=status, headers={}, body=json.dumps(body).encode())


def parse_get(body: dict[str, Any], workflow: str = WORKFLOW):
    client = api()
    request = client.get_request(workflow, body["data"]["id"])
    return client.parse_execution(request, answer("get_execution", 200, body))


def test_every_fixture_names_its_source() -> None:
    names = sorted(p.name for p in CASSETTES.glob("*.json"))
    if not names:
        recorded("any.json")  # skips, saying where the recorded answers come from
    assert len(names) >= 8
    for name in names:
        source = recorded(name)["_source"]
        assert source["repository"] == "DataDog/datadog-api-client-python"
        # A commit of the repository, or the pinned release of the client on PyPI whose sdist ships the cassettes.
        assert len(source["commit"]) == 40 if "commit" in source else source["package"] == "datadog-api-client"
        assert source["path"].startswith("tests/") and source["path"].endswith(".yaml")


def test_recorded_canceled_instance() -> None:
    execution = parse_get(recorded("get_instance_canceled.json")["response"]["body"])

    assert execution.state is ExecutionState.CANCELED
    assert execution.vendor_status == "CANCELED"
    assert execution.state_note is None  # read, not guessed
    assert execution.id == "305a472b-71ab-4ce8-8f8d-75db635627b5"
    assert execution.ended_at is not None and execution.started_at is not None
    # Steps carry stepState (not status): the canceled step is the one the cancel caught.
    assert execution.steps == [{"stepName": "Sleep", "stepState": "CANCELED"}]
    assert execution.failing_step == "Sleep"
    assert "at step 'Sleep'" in execution.describe_failure()


def test_workflow_id_comes_from_relationships() -> None:
    # No attributes.workflowId exists; the workflow is relationships.workflow.data.id.
    execution = parse_get(recorded("get_instance_canceled.json")["response"]["body"], workflow="asked-as-alias")
    assert execution.workflow == WORKFLOW


def test_recorded_list() -> None:
    body = recorded("list_instances.json")["response"]["body"]
    client = api()
    request = client.list_request(WORKFLOW, None, {})
    page = client.parse_list(request, answer("list_executions", 200, body))

    assert [(e.id, e.state) for e in page.executions] == [
        ("111e18d6-3f19-4ada-91d3-ab1e1546b8b4", ExecutionState.RUNNING),
        ("305a472b-71ab-4ce8-8f8d-75db635627b5", ExecutionState.CANCELED),
    ]
    assert all(e.workflow == WORKFLOW for e in page.executions)
    assert page.next_page is None  # meta.page.totalCount == 2


def test_recorded_execute_answer() -> None:
    fixture = recorded("execute_workflow.json")
    client = api()
    request = client.start_request(WORKFLOW, fixture["request"]["body"]["meta"]["payload"])
    assert request.json_body == fixture["request"]["body"]
    assert request.path == fixture["request"]["path"]
    status, body = fixture["response"]["status"], fixture["response"]["body"]
    assert client.parse_start(request, answer("start_execution", status, body)) == body["data"]["id"]


def test_recorded_cancel_request_and_answer() -> None:
    fixture = recorded("cancel_instance.json")
    client = api()
    request = client.cancel_request(WORKFLOW, "305a472b-71ab-4ce8-8f8d-75db635627b5")
    assert (request.method, request.path) == (fixture["request"]["method"], fixture["request"]["path"])
    assert not client.is_error(request, answer("cancel_execution", 200, fixture["response"]["body"]))


@pytest.mark.parametrize(
    ("name", "error", "code", "detail"),
    [
        ("cancel_instance_not_found.json", NotFoundError, "INSTANCE_NOT_FOUND", "not found"),
        ("get_instance_workflow_not_found.json", NotFoundError, "WORKFLOW_NOT_FOUND", "workflow not found"),
        ("malformed_workflow_id.json", BadRequestError, "INVALID_FIELD_VALUE", "invalid for field workflow_id"),
        ("api_key_forbidden.json", PermissionDeniedError, None, "API key required"),
    ],
)
def test_recorded_errors(name: str, error: type, code: str | None, detail: str) -> None:
    fixture = recorded(name)
    client = api()
    request = client.get_request(WORKFLOW, "e0c64dc8-f946-4ae8-8d79-54569031ce67")
    raised = client.error_for(
        request, answer("get_execution", fixture["response"]["status"], fixture["response"]["body"])
    )
    assert isinstance(raised, error)
    assert raised.code == code
    assert detail in str(raised)


def test_a_403_names_both_causes() -> None:
    # Datadog answers 403 {"errors": ["Forbidden"]} to a wrong key and to a missing permission alike.
    client = api()
    raised = client.error_for(client.check_request(), answer("test_connection", 403, {"errors": ["Forbidden"]}))
    assert "wrong API or application key" in str(raised)
    assert "Actions API access" in str(raised)
    assert "wrong" in client.explain_forbidden(raised, None) and "registered" in client.explain_forbidden(raised, None)
    assert "refused the API key" in client.explain_forbidden(raised, False)
    assert "accepted the API key" in client.explain_forbidden(raised, True)


# -- an instance that has ended, whatever detailsKind says -----------------------------------------


def ended_instance(details_kind: str | None, display_name: str | None, step_states: list[str]) -> dict[str, Any]:
    """The recorded canceled instance with its status and step states replaced."""
    body = copy.deepcopy(recorded("get_instance_canceled.json")["response"]["body"])
    attributes = body["data"]["attributes"]
    attributes["instanceStatus"] = {"detailsKind": details_kind, "displayName": display_name}
    attributes["stepStateAssociations"] = [
        {"stepName": f"step{i}", "stepState": state} for i, state in enumerate(step_states)
    ]
    return body


@pytest.mark.parametrize(
    ("kind", "display", "steps", "state"),
    [
        # Plausible vocabularies Datadog might use; none is documented.
        ("SUCCEEDED", "Succeeded", ["SUCCEEDED"], ExecutionState.SUCCEEDED),
        ("SUCCESS", "Success", ["SUCCESS"], ExecutionState.SUCCEEDED),
        ("COMPLETED", "Completed", ["COMPLETED"], ExecutionState.SUCCEEDED),
        ("FAILED", "Failed", ["SUCCEEDED", "FAILED"], ExecutionState.FAILED),
        ("ERROR", "Error", ["ERROR"], ExecutionState.FAILED),
        # Undocumented strings: the display name or the steps tell.
        ("FINISHED_OK", "Done", [], ExecutionState.SUCCEEDED),
        ("TERMINAL_2", "Timed out", ["SUCCEEDED"], ExecutionState.FAILED),
        ("TERMINAL_3", "Ended", ["DONE", "BROKE_DOWN", "FAILED"], ExecutionState.FAILED),
        ("TERMINAL_4", None, ["SUCCEEDED", "COMPLETED"], ExecutionState.SUCCEEDED),
        # Still "IN_PROGRESS" but with an end: over, and the outcome comes from the steps.
        ("IN_PROGRESS", "Running", ["SUCCEEDED", "CANCELED"], ExecutionState.CANCELED),
        # Nothing tells: failure, never a silent success.
        ("TERMINAL_5", "Ended", ["STEP_STATE_X"], ExecutionState.FAILED),
        (None, None, [], ExecutionState.FAILED),
    ],
)
def test_an_ended_instance_is_over(kind, display, steps, state, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        execution = parse_get(ended_instance(kind, display, steps))
    assert execution.state is state
    assert execution.is_terminal
    documented = kind in ("SUCCEEDED", "SUCCESS", "COMPLETED", "FAILED", "ERROR")
    # A state read from an undocumented answer is said so, in the task log and in the execution.
    assert (execution.state_note is None) is documented
    if not documented:
        assert any(execution.id in r.getMessage() and "endTimestamp" in r.getMessage() for r in caplog.records)
    if state is ExecutionState.FAILED and not documented:
        assert execution.state_note in execution.describe_failure() or execution.error_message


@pytest.mark.parametrize(
    ("kind", "display", "state"),
    [
        ("IN_PROGRESS", "Running", ExecutionState.RUNNING),
        (None, None, ExecutionState.RUNNING),
        ("NEW_RUNNING_KIND", "In progress", ExecutionState.RUNNING),
        ("NEW_KIND", "Something", ExecutionState.UNKNOWN),
        ("NEW_END_KIND", "Succeeded", ExecutionState.SUCCEEDED),
    ],
)
def test_an_instance_without_an_end(kind, display, state) -> None:
    from airflow_workflow_provider.hooks.datadog import judge_instance

    attributes = {
        "instanceStatus": {"detailsKind": kind, "displayName": display},
        "startTimestamp": "2024-07-24T18:39:58Z",
    }
    assert judge_instance(attributes)[0] is state
