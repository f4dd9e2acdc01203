"""The three vendor APIs spoken by hand, for the baselines: the http provider's HttpSensor and a trigger that
opens an aiohttp session per poll. Paths, auth headers and terminal statuses as the emulator (and the vendors)
have them; nothing here uses the provider's code.
"""

from __future__ import annotations

from typing import Any

from airflow_workflow_provider.testing.emulator import EmulatorCredentials

CREDS = EmulatorCredentials()
TERMINAL = {
    "datadog": {"SUCCEEDED", "FAILED", "CANCELED"},
    "cloudflare": {"complete", "errored", "terminated"},
    "sailpoint": {"Completed", "Failed", "Canceled"},
}
SUCCEEDED = {"datadog": "SUCCEEDED", "cloudflare": "complete", "sailpoint": "Completed"}


def start_path(vendor: str, workflow: str) -> str:
    if vendor == "datadog":
        return f"/datadog/api/v2/workflows/{workflow}/instances"
    if vendor == "cloudflare":
        return f"/cloudflare/client/v4/accounts/{CREDS.cloudflare_account_id}/workflows/{workflow}/instances"
    return f"/sailpoint/v3/workflows/{workflow}/test"


def start_body(vendor: str) -> dict[str, Any]:
    return {"datadog": {"meta": {"payload": {}}}, "cloudflare": {"params": {}}, "sailpoint": {"input": {}}}[vendor]


def started_id(vendor: str, body: Any) -> str:
    if vendor == "datadog":
        return str(body["data"]["id"])
    if vendor == "cloudflare":
        return str(body["result"]["id"])
    return str(body["workflowExecutionId"])


def get_path(vendor: str, workflow: str, execution_id: str) -> str:
    if vendor == "datadog":
        return f"/datadog/api/v2/workflows/{workflow}/instances/{execution_id}"
    if vendor == "cloudflare":
        return f"{start_path(vendor, workflow)}/{execution_id}"
    return f"/sailpoint/v3/workflow-executions/{execution_id}"


def get_params(vendor: str) -> dict[str, str]:
    """Cloudflare's cheap poll leaves the steps out, as the provider's hook does."""
    return {"simple": "true"} if vendor == "cloudflare" else {}


TOKEN_PATH = "/sailpoint/oauth/token"
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": CREDS.sailpoint_client_id,
    "client_secret": CREDS.sailpoint_client_secret,
}


def headers(vendor: str, token: str | None = None) -> dict[str, str]:
    """Auth headers; SailPoint's is the bearer token fetched from ``TOKEN_PATH`` beforehand."""
    if vendor == "datadog":
        return {"DD-API-KEY": CREDS.datadog_api_key, "DD-APPLICATION-KEY": CREDS.datadog_application_key}
    if vendor == "cloudflare":
        return {"Authorization": f"Bearer {CREDS.cloudflare_api_token}"}
    return {"Authorization": f"Bearer {token}"}


def status(vendor: str, body: Any) -> str:
    if vendor == "datadog":
        return str(body["data"]["attributes"]["instanceStatus"]["detailsKind"])
    if vendor == "cloudflare":
        return str(body["result"]["status"])
    return str(body["status"])
