"""Cloudflare instance ids and listing, checked against what Cloudflare's own code says.

Sources (see /work/research/datadog-cloudflare.md in the team notes, and docs/):
- cloudflare/workers-sdk packages/workflows-shared/src/lib/validators.ts and tests/validators.test.ts
  @ f8308360283f97d33e188aee2e19c1ef9c09524a: the id patterns and the cron-made ids below;
- cloudflare/cloudflare-typescript src/resources/workflows/instances/instances.ts, src/core/pagination.ts
  @ faaaf89ed8064a9fb54de538ec3e89487f1302b0: list statuses, cursor/direction/page, reserved ids, path encoding;
- cloudflare/workers-sdk packages/wrangler/src/cfetch/index.ts (fetchCursorPage): paging by result_info.cursor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_workflow_provider.core.api import ClientSettings
from airflow_workflow_provider.core.errors import WorkflowInputError
from airflow_workflow_provider.core.http import ApiResponse
from airflow_workflow_provider.hooks.cloudflare import CloudflareApi, require_instance_id

# validators.test.ts, "Addressable Workflow instance ID validation": accepted and refused values.
CRON_IDS = [
    "*/30 * * * *-1786001400000",
    "0 0 * * MON#2-1786001400000",
    "0 0 1,15 * *-1786001400000",
    "NAME_123-/cron",
    "w" * 271,
]
NOT_ADDRESSABLE = ["", "invalid!", "0 0 * * MON?2-1786001400000", "w" * 272]


def api() -> CloudflareApi:
    return CloudflareApi(account_id="acc", api_token="cf-token-123456", settings=ClientSettings())


def page_answer(items: list[dict[str, Any]], result_info: dict[str, Any] | None) -> ApiResponse:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": items}
    if result_info is not None:
        body["result_info"] = result_info
    return ApiResponse(
        vendor="Cloudflare", operation="list_executions", status=200, headers={}, body=json.dumps(body).encode()
    )


def items(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "status": "complete", "created_on": "2026-11-30T00:00:00Z"} for i in ids]


@pytest.mark.parametrize("instance_id", CRON_IDS)
def test_cron_made_ids_address_existing_instances(instance_id: str) -> None:
    client = api()
    encoded = client.get_request("etl", instance_id).path.rsplit("/instances/", 1)[1]
    # As the official SDK's encodeURIPath: "/", " " and "#" are escaped, "*" and "," are not.
    assert "/" not in encoded and " " not in encoded and "#" not in encoded
    assert encoded.replace("%2F", "/").replace("%20", " ").replace("%23", "#") == instance_id
    for request in (
        client.cancel_request("etl", instance_id),
        client.change_status_request("etl", instance_id, "pause"),
        client.send_event_request("etl", instance_id, "approval", {"ok": True}),
    ):
        assert f"/instances/{encoded}/" in request.path
    assert client.check_execution_id(instance_id) == instance_id


def test_cron_id_path_encoding_matches_the_sdk() -> None:
    path = api().get_request("etl", "*/30 * * * *-1786001400000").path
    assert path.endswith("/instances/*%2F30%20*%20*%20*%20*-1786001400000")


@pytest.mark.parametrize("bad", NOT_ADDRESSABLE)
def test_ids_no_instance_can_have_are_refused(bad: str) -> None:
    with pytest.raises(WorkflowInputError, match="execution_id"):
        api().check_execution_id(bad)
    with pytest.raises(WorkflowInputError, match="instance_id"):
        api().get_request("etl", bad)


@pytest.mark.parametrize("instance_id", CRON_IDS[:4])
def test_ids_we_create_keep_the_strict_pattern(instance_id: str) -> None:
    with pytest.raises(WorkflowInputError, match="instance_id"):
        api().start_request("etl", {}, instance_id=instance_id)


def test_only_lower_case_cf_hex_is_reserved() -> None:
    with pytest.raises(WorkflowInputError, match="reserved"):
        require_instance_id("cf_" + "ab" * 32)
    assert require_instance_id("cf_" + "AB" * 32) == "cf_" + "AB" * 32
    assert require_instance_id("cf_" + "ab" * 31) == "cf_" + "ab" * 31


@pytest.mark.parametrize("name", ["-etl", "etl.v2", "has space", "w" * 65])
def test_workflow_names_follow_cloudflare_pattern(name: str) -> None:
    with pytest.raises(WorkflowInputError, match="workflow"):
        api().get_request(name, "abc")


def test_rolling_back_is_a_list_filter() -> None:
    request = api().list_request("etl", None, {"status": "rollingBack"})
    assert ("status", "rollingBack") in request.params


def test_direction_is_kept_on_every_page_and_the_cursor_followed() -> None:
    client = api()
    filters = {"direction": "asc", "status": "complete", "per_page": 2}
    first = client.list_request("etl", None, filters)
    assert ("direction", "asc") in first.params
    page = client.parse_list(first, page_answer(items("a", "b"), {"cursor": "c1", "per_page": 2}))
    assert page.next_page == ("cursor", "c1")

    second = client.list_request("etl", page.next_page, filters)
    assert dict(second.params) == {"per_page": "2", "status": "complete", "direction": "asc", "cursor": "c1"}
    last = client.parse_list(second, page_answer(items("c"), {"per_page": 2}))
    assert [e.id for e in last.executions] == ["c"]
    assert last.next_page is None  # a cursor walk ends at the answer without a cursor


def test_listing_falls_back_to_page_numbers_without_a_cursor() -> None:
    client = api()
    filters = {"per_page": 2, "direction": "desc"}
    first = client.list_request("etl", None, filters)
    page = client.parse_list(first, page_answer(items("a", "b"), {"page": 1, "per_page": 2, "total_count": 5}))
    assert page.next_page == ("page", 2)
    second = client.list_request("etl", page.next_page, filters)
    assert ("page", "2") in second.params and ("direction", "desc") in second.params
    assert all(name != "cursor" for name, _ in second.params)
    page = client.parse_list(second, page_answer(items("c", "d"), {"page": 2, "per_page": 2, "total_count": 5}))
    assert page.next_page == ("page", 3)
    third = client.list_request("etl", page.next_page, filters)
    assert (
        client.parse_list(third, page_answer(items("e"), {"page": 3, "per_page": 2, "total_count": 5})).next_page
        is None
    )


def test_page_fallback_without_totals_stops_at_a_short_or_empty_page() -> None:
    client = api()
    first = client.list_request("etl", None, {"per_page": 2})
    assert client.parse_list(first, page_answer(items("a", "b"), None)).next_page == ("page", 2)
    assert client.parse_list(first, page_answer(items("a"), None)).next_page is None
    assert client.parse_list(first, page_answer([], {"cursor": "c9"})).next_page is None
