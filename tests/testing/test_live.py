"""``make live`` (airflow_workflow_provider.testing.live): skips cleanly without variables, and runs every
step against the emulator when its variables point there (the base URL override), as they would at a tenant."""

from __future__ import annotations

import pytest

from airflow_workflow_provider.testing import live
from airflow_workflow_provider.testing.emulator import WorkflowEmulator, WorkflowScript
from tests.conftest import WORKFLOW_IDS


def test_without_variables_every_vendor_is_skipped(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in [n for n in __import__("os").environ if n.startswith(live.PREFIX)]:
        monkeypatch.delenv(name)

    assert live.main([]) == 0

    out = capsys.readouterr().out
    for vendor in live.VENDORS.values():
        assert f"== {vendor.label}: SKIPPED (set {vendor.variable('WORKFLOW')}" in out
        for suffix in vendor.required:
            assert vendor.variable(suffix) in out
    assert "nothing was checked" in out


def test_a_vendor_with_only_some_variables_names_the_missing_ones() -> None:
    said: list[str] = []
    results = live.run(["cloudflare"], {"AWP_LIVE_CLOUDFLARE_WORKFLOW": "etl"}, said.append)
    assert results == {"cloudflare": "skipped"}
    assert "AWP_LIVE_CLOUDFLARE_ACCOUNT_ID, AWP_LIVE_CLOUDFLARE_API_TOKEN" in said[0]


def test_an_unknown_vendor_is_refused(capsys) -> None:
    assert live.main(["datadgo"]) == 2
    assert "datadgo" in capsys.readouterr().err


def emulator_variables(emulator: WorkflowEmulator) -> dict[str, str]:
    creds = emulator.credentials
    return {
        "AWP_LIVE_POLL": "0.05",
        "AWP_LIVE_TIMEOUT": "30",
        "AWP_LIVE_DATADOG_WORKFLOW": WORKFLOW_IDS["datadog"],
        "AWP_LIVE_DATADOG_API_KEY": creds.datadog_api_key,
        "AWP_LIVE_DATADOG_APP_KEY": creds.datadog_application_key,
        "AWP_LIVE_DATADOG_BASE_URL": emulator.base_url("datadog"),
        "AWP_LIVE_CLOUDFLARE_WORKFLOW": WORKFLOW_IDS["cloudflare"],
        "AWP_LIVE_CLOUDFLARE_ACCOUNT_ID": creds.cloudflare_account_id,
        "AWP_LIVE_CLOUDFLARE_API_TOKEN": creds.cloudflare_api_token,
        "AWP_LIVE_CLOUDFLARE_BASE_URL": emulator.base_url("cloudflare"),
        "AWP_LIVE_CLOUDFLARE_PAYLOAD": '{"order_date": "2026-11-30"}',
        "AWP_LIVE_SAILPOINT_WORKFLOW": WORKFLOW_IDS["sailpoint"],
        "AWP_LIVE_SAILPOINT_TENANT": "acme",
        "AWP_LIVE_SAILPOINT_CLIENT_ID": creds.sailpoint_client_id,
        "AWP_LIVE_SAILPOINT_CLIENT_SECRET": creds.sailpoint_client_secret,
        "AWP_LIVE_SAILPOINT_BASE_URL": emulator.base_url("sailpoint"),
        "AWP_LIVE_SAILPOINT_EXTRA": '{"read_timeout": 10}',
    }


def test_every_step_against_the_emulator(emulator: WorkflowEmulator) -> None:
    for vendor, workflow in WORKFLOW_IDS.items():
        emulator.script(vendor, workflow, WorkflowScript(duration=0.4, output={"rows": 3}))
    env = emulator_variables(emulator)
    said: list[str] = []

    results = live.run(list(live.VENDORS), env, said.append)

    out = "\n".join(said)
    assert results == {"datadog": "passed", "cloudflare": "passed", "sailpoint": "passed"}, out
    for step in ("1. Test button", "2. start an execution", "3. wait for it", "4. list", "5. start a second"):
        assert out.count(step) == 3
    assert out.count("-> succeeded") == 3
    assert "-> after the cancel: canceled" in out
    assert "HTTP 200" in out and '"instanceStatus"' in out  # the vendors' answers are shown
    for vendor in ("datadog", "cloudflare", "sailpoint"):
        assert len([e for e in emulator.executions(vendor, WORKFLOW_IDS[vendor])]) == 2
    # No credential is ever printed, not even the SailPoint token the emulator hands out.
    secrets = [v for k, v in env.items() if k.endswith(("_KEY", "_TOKEN", "_SECRET"))]
    assert all(secret not in out for secret in secrets)
    assert '"access_token":"***"' in out


def test_a_failing_step_is_reported_and_the_others_go_on(emulator: WorkflowEmulator) -> None:
    env = emulator_variables(emulator)
    env["AWP_LIVE_DATADOG_APP_KEY"] = "not-the-key"
    emulator.script("cloudflare", WORKFLOW_IDS["cloudflare"], WorkflowScript(duration=0.2))
    env = {k: v for k, v in env.items() if not k.startswith("AWP_LIVE_SAILPOINT")}
    said: list[str] = []

    results = live.run(list(live.VENDORS), env, said.append)

    assert results["datadog"].startswith("failed: the connection test failed")
    assert results["cloudflare"] == "passed" and results["sailpoint"] == "skipped"
    assert "not-the-key" not in "\n".join(said)
