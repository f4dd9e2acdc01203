"""The hook escape hatch (``call_api`` / ``acall_api``): any endpoint with the connection's auth, retries, masking."""

from __future__ import annotations

import pytest

from airflow_workflow_provider.core.errors import NotFoundError, ServerError, WorkflowInputError, WorkflowTransportError
from airflow_workflow_provider.testing.aio import run_async
from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import Vendor


def execution_path(vendor: Vendor, execution_id: str) -> str:
    """The vendor's "get one execution" endpoint, as its API reference writes it."""
    if vendor.name == "datadog":
        return f"/api/v2/workflows/{vendor.workflow}/instances/{execution_id}"
    if vendor.name == "cloudflare":
        account = vendor.emulator.credentials.cloudflare_account_id
        return f"/client/v4/accounts/{account}/workflows/{vendor.workflow}/instances/{execution_id}"
    return f"/v3/workflow-executions/{execution_id}"


def is_that_execution(vendor: Vendor, body: dict, execution_id: str) -> bool:
    """Whether the vendor's own answer shape describes ``execution_id``."""
    if vendor.name == "datadog":
        return body["data"]["id"] == execution_id
    if vendor.name == "cloudflare":  # the instance answer does not repeat its id, it is in the path
        return body["success"] is True and body["result"]["status"] in ("queued", "running", "complete")
    return body["id"] == execution_id


def test_call_api_reads_an_endpoint_with_the_connection_auth(vendor: Vendor) -> None:
    hook = vendor.hook()
    execution_id = hook.start_execution(vendor.workflow)

    body = hook.call_api("GET", execution_path(vendor, execution_id))

    assert is_that_execution(vendor, body, execution_id)
    # The emulator refuses unauthenticated calls: the connection's credentials went along.
    [call] = [r for r in vendor.emulator.requests if r.operation == "get"]
    assert call.status == 200


def test_call_api_retries_like_every_other_call(vendor: Vendor) -> None:
    hook = vendor.hook()
    execution_id = hook.start_execution(vendor.workflow)
    vendor.emulator.inject_fault(vendor.name, "get", "503", times=2)

    body = hook.call_api("GET", execution_path(vendor, execution_id), params={"simple": True})

    assert is_that_execution(vendor, body, execution_id)
    assert len([r for r in vendor.emulator.requests if r.operation == "get"]) == 3


def test_call_api_errors_are_typed_and_carry_no_credential(vendor: Vendor) -> None:
    hook = vendor.hook()

    with pytest.raises(NotFoundError) as caught:
        hook.call_api("GET", execution_path(vendor, "no-such-execution"))

    assert caught.value.status_code == 404
    assert caught.value.operation.startswith("GET /")
    for secret in hook.api.secrets:
        assert secret not in str(caught.value)


def test_a_post_that_reached_the_vendor_is_not_resent(vendor: Vendor) -> None:
    """POST is not idempotent: like an execution start, it is resent only when it never left."""
    start = vendor.hook().api.start_request(vendor.workflow, {})
    vendor.emulator.inject_fault(vendor.name, "start", "503", times=3)

    with pytest.raises(ServerError):
        vendor.hook().call_api("POST", start.path, json=start.json_body)

    assert len([r for r in vendor.emulator.requests if r.operation == "start"]) == 1


def test_a_call_that_never_left_is_resent(vendor: Vendor) -> None:
    vendor.set_connection(vendor.name, conn_id="nowhere", base_url="http://127.0.0.1:9", max_attempts=2)

    with pytest.raises(WorkflowTransportError) as caught:
        vendor.hook("nowhere").call_api("POST", "/anything", json={})

    assert caught.value.request_sent is False


def test_acall_api_matches_call_api(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.1))
    hook = vendor.hook()
    execution_id = hook.start_execution(vendor.workflow)
    path = execution_path(vendor, execution_id)
    vendor.emulator.inject_fault(vendor.name, "get", "503", times=1)

    from_async = run_async(lambda: vendor.hook().acall_api("GET", path))

    assert is_that_execution(vendor, from_async, execution_id)

    async def missing() -> None:
        await vendor.hook().acall_api("GET", execution_path(vendor, "no-such-execution"))

    with pytest.raises(NotFoundError):
        run_async(missing)


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "api/v2/no-leading-slash", "path"),
        ("GET", "//evil.example.com/steal", "path"),
        ("GET", "/x@evil.example.com", "path"),
        ("GET", "/x?token=1", "path"),
        ("GET", "/a/../b", "path"),
        ("GET", "/line\nbreak", "path"),
        ("TRACE", "/api", "method"),
    ],
)
def test_bad_method_or_path_is_refused_before_any_request(vendor: Vendor, method: str, path: str, field: str) -> None:
    before = len(vendor.emulator.requests)

    with pytest.raises(WorkflowInputError) as caught:
        vendor.hook().call_api(method, path)

    assert caught.value.field == field
    assert len(vendor.emulator.requests) == before
