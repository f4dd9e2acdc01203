"""The three connection forms in the real Airflow UI, driven in headless Chromium with Playwright.

One browser session (module fixture) logs in, opens Admin > Connections > Add Connection, picks each of
the provider's connection types, records what the form shows (labels, placeholders, input types, hidden
fields, extra fields with their descriptions and defaults), fills it in pointing at the emulator, saves it,
and presses the list's Test button. The tests then check those observations against the design in
``airflow_workflow_provider/connection_forms.py``. Screenshots go to ``reports/ui/``.

Chromium comes from the system (``/usr/bin/chromium``, Debian's package); Playwright never downloads one.
Without it the tests skip, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_workflow_provider.connection_forms import FORMS, ConnectionForm
from tests.e2e.support import REPO, Deployment, connection_definitions

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

CHROMIUM = Path(os.environ.get("AWP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "reports" / "ui"
STANDARD_FIELDS = ("host", "login", "password", "port", "schema")
FORMS_BY_TYPE = {form.conn_type: form for form in FORMS}
# Values the test types into each form: the connections of the deployment, under new ids.
UI_CONN_ID = "ui_{conn_type}"

# Script run in the page: every input of the dialog with what a user sees of it.
_READ_FIELDS = """() => Array.from(document.querySelectorAll('[role=dialog] input, [role=dialog] textarea'))
  .filter(e => e.name)
  .map(e => {
    const root = e.closest('[data-scope=field][data-part=root]');
    const label = root && root.querySelector('[data-part=label]');
    const helper = root && root.querySelector('[data-part=helper-text]');
    return {
      name: e.name, id: e.id, tag: e.tagName.toLowerCase(), type: e.type, value: e.value,
      placeholder: e.placeholder || '', label: label ? label.innerText.replace(/\\s*\\*\\s*$/, '').trim() : '',
      description: helper ? helper.innerText.trim() : '', visible: !!(e.offsetWidth || e.offsetHeight),
    };
  })"""


@dataclass
class FormSeen:
    """What the UI showed and did for one connection type."""

    conn_type: str
    option: str = ""
    standard: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_json: str = ""
    saved: dict[str, Any] = field(default_factory=dict)
    test_request: dict[str, Any] = field(default_factory=dict)
    test_status: int = 0
    test_answer: str = ""
    toast: str = ""
    screenshots: list[Path] = field(default_factory=list)


def _require_browser() -> Any:
    """The Playwright module, or skip (fail under CI) when Chromium or Playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium; see scripts/ci-system-deps.sh)"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            problem = "Playwright for Python is not installed (pip install playwright; no browser download needed)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    return sync_api


@pytest.fixture(scope="module")
def browser_page(airflow_deployment: Deployment) -> Iterator[Any]:
    sync_api = _require_browser()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="awp-chromium-") as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            _log_in(page, airflow_deployment)
            yield page
        finally:
            context.close()


def _log_in(page: Any, deployment: Deployment) -> None:
    page.goto(f"{deployment.api_url}/")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.get_by_label("Username").fill(deployment.username)
    page.get_by_label("Password").fill(deployment.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Admin").wait_for()


def _shot(page: Any, seen: FormSeen, name: str) -> None:
    path = SCREENSHOTS / f"{seen.conn_type}-{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    seen.screenshots.append(path)


def _dismiss_toasts(page: Any) -> None:
    """Close the notifications of earlier steps, so that each screenshot shows only its own."""
    toasts = page.locator("[data-scope=toast][data-part=root]")
    for close in page.locator("[data-scope=toast][data-part=close-trigger]").all():
        with contextlib.suppress(Exception):  # a toast may vanish on its own meanwhile
            close.click(timeout=2_000)
    deadline = time.monotonic() + 10
    while toasts.count() and time.monotonic() < deadline:
        page.wait_for_timeout(200)


def _fields(page: Any) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in page.evaluate(_READ_FIELDS)}


def _drive_form(page: Any, deployment: Deployment, form: ConnectionForm) -> FormSeen:
    seen = FormSeen(form.conn_type)
    conn_id = UI_CONN_ID.format(conn_type=form.conn_type)
    values = connection_definitions(deployment.emulator_url)[f"{form.conn_type}_default"]

    # Admin > Connections > Add Connection, the way a user gets there.
    _dismiss_toasts(page)
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.wait_for_url(re.compile(r".*/connections$"))
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").click()
    page.keyboard.type(form.conn_type)
    option = page.get_by_role("option", name=form.hook_name, exact=True)
    seen.option = option.inner_text()
    option.click()
    dialog.get_by_role("button", name="Standard Fields").wait_for()

    # Standard fields (open by default): record, fill, screenshot.
    seen.standard = {name: item for name, item in _fields(page).items() if not name.startswith("element_")}
    dialog.locator("input[name=connection_id]").fill(conn_id)
    for name in ("host", "login", "password"):
        if values.get(name) and name in seen.standard:
            dialog.locator(f"input[name={name}]").fill(values[name])
    _shot(page, seen, "1-standard-fields")

    # Extra fields: record (with defaults), fill, screenshot.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.locator("#element_base_url").wait_for(state="visible")
    seen.extra = {
        name.removeprefix("element_"): item for name, item in _fields(page).items() if name.startswith("element_")
    }
    for name, value in values["extra"].items():
        dialog.locator(f"#element_{name}").fill(str(value))
    _shot(page, seen, "2-extra-fields")

    dialog.get_by_role("button", name="Extra Fields JSON").click()
    editor = dialog.locator(".monaco-editor .view-lines")
    editor.wait_for(state="visible")
    deadline = time.monotonic() + 10  # the editor renders its lines a moment after it shows
    while True:
        seen.extra_json = editor.inner_text().replace("\xa0", " ")
        if '"base_url"' in seen.extra_json and seen.extra_json.rstrip().endswith("}"):
            break
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)

    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.wait_for()
    seen.saved = deployment.api("GET", f"/connections/{conn_id}")
    _dismiss_toasts(page)

    # The list's Test button; the answer of the API call it makes, and the toast it shows.
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer_info:
        row.get_by_role("button", name="Test Connection").click()
    answer = answer_info.value
    seen.test_request = json.loads(answer.request.post_data or "{}")
    seen.test_status = answer.status
    seen.test_answer = answer.text()
    toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text="Test Connection").last
    toast.wait_for()
    seen.toast = toast.inner_text()
    _shot(page, seen, "3-test-result")
    page.keyboard.press("Escape")
    return seen


@pytest.fixture(scope="module")
def forms_seen(browser_page: Any, airflow_deployment: Deployment) -> dict[str, FormSeen]:
    return {form.conn_type: _drive_form(browser_page, airflow_deployment, form) for form in FORMS}


CONN_TYPES = [form.conn_type for form in FORMS]


@pytest.mark.parametrize("conn_type", CONN_TYPES)
def test_standard_fields_are_relabeled_hidden_and_hinted_as_designed(
    forms_seen: dict[str, FormSeen], conn_type: str
) -> None:
    form, seen = FORMS_BY_TYPE[conn_type], forms_seen[conn_type]
    assert seen.option == form.hook_name
    for name in STANDARD_FIELDS:
        if name in form.hidden:
            assert name not in seen.standard, f"{name} should be hidden: {seen.standard.get(name)}"
        else:
            assert name in seen.standard, f"{name} missing from the form: {sorted(seen.standard)}"
    for name, label in form.relabeling.items():
        assert seen.standard[name]["label"] == label, seen.standard[name]
    for name, placeholder in form.placeholders.items():
        if name in STANDARD_FIELDS:
            assert seen.standard[name]["placeholder"] == placeholder, seen.standard[name]
    # Every secret is a password input.
    assert seen.standard["password"]["type"] == "password", seen.standard["password"]
    assert seen.standard["password"]["visible"]


@pytest.mark.parametrize("conn_type", CONN_TYPES)
def test_extra_fields_as_designed(forms_seen: dict[str, FormSeen], conn_type: str) -> None:
    form, seen = FORMS_BY_TYPE[conn_type], forms_seen[conn_type]
    # What Airflow 3.2+ builds the extra fields from: the provider info's conn-fields.
    designed = form.provider_info(declarative=True)["conn-fields"]
    assert set(seen.extra) == set(designed), (sorted(seen.extra), sorted(designed))
    for name, spec in designed.items():
        shown = seen.extra[name]
        assert shown["label"] == spec["label"], shown
        assert shown["description"] == spec["description"], shown
        assert shown["type"] == ("password" if spec["schema"].get("format") == "password" else "text"), shown
        assert shown["value"] == spec["schema"].get("default", ""), shown
    # The extras the UI will save, as JSON, carry what was typed into the fields.
    for name in designed:
        assert f'"{name}"' in seen.extra_json, seen.extra_json


def test_secret_extra_is_a_password_input_and_defaults_are_filled_in(forms_seen: dict[str, FormSeen]) -> None:
    assert forms_seen["datadog_workflows"].extra["application_key_secret"]["type"] == "password"
    assert forms_seen["cloudflare_workflows"].extra["account_id"]["type"] == "text"
    assert forms_seen["sailpoint_workflows"].extra["api_version"]["value"] == "v3"
    assert forms_seen["sailpoint_workflows"].extra["user_client_secret"]["type"] == "password"


@pytest.mark.parametrize("conn_type", CONN_TYPES)
def test_extra_field_placeholders_are_shown(forms_seen: dict[str, FormSeen], conn_type: str) -> None:
    form, seen = FORMS_BY_TYPE[conn_type], forms_seen[conn_type]
    placeholders = form.behaviour()["placeholders"]
    designed = {name: text for name, text in placeholders.items() if name in seen.extra}
    assert designed, f"no placeholder designed for the extra fields of {conn_type}"
    missing = {name: text for name, text in designed.items() if seen.extra[name]["placeholder"] != text}
    if missing:
        pytest.xfail(
            f"placeholders of extra fields are not shown: {missing}. Airflow 3.2+ builds extra fields from "
            "conn-fields, whose schema has no placeholder, and applies ui-field-behaviour placeholders to the "
            "standard fields only (the React form shows a placeholder for a text extra only with schema.examples)"
        )


@pytest.mark.parametrize("conn_type", CONN_TYPES)
def test_form_saves_the_connection(
    forms_seen: dict[str, FormSeen], airflow_deployment: Deployment, conn_type: str
) -> None:
    seen = forms_seen[conn_type]
    expected = connection_definitions(airflow_deployment.emulator_url)[f"{conn_type}_default"]
    saved = seen.saved
    assert saved["connection_id"] == UI_CONN_ID.format(conn_type=conn_type)
    assert saved["conn_type"] == conn_type
    for name in ("host", "login"):
        assert (saved[name] or None) == expected.get(name), (name, saved[name])
    assert saved["password"] == "***", "the API must not return the password"
    extra = json.loads(saved["extra"])
    assert extra["base_url"] == expected["extra"]["base_url"]
    for name, value in expected["extra"].items():
        if name == "application_key_secret":
            assert extra[name] == "***", "Airflow must mask the application key like the password"
        else:
            assert extra[name] == value, (name, extra)
    for path in seen.screenshots[:2]:
        assert path.stat().st_size > 10_000, f"empty screenshot {path}"


@pytest.mark.parametrize("conn_type", CONN_TYPES)
def test_test_button_reports_the_hook_result(
    forms_seen: dict[str, FormSeen], browser_page: Any, airflow_deployment: Deployment, conn_type: str
) -> None:
    seen = forms_seen[conn_type]
    assert seen.screenshots[-1].exists()
    if seen.test_status == 200:
        answer = json.loads(seen.test_answer)
        assert answer["status"] is True, answer
        assert "Connected to" in answer["message"] and "Connected to" in seen.toast, (answer, seen.toast)
        return
    known_ui_bug = (
        seen.test_status == 400
        and "differs from the stored connection" in seen.test_answer
        and seen.test_request.get("port") == 0
    )
    assert known_ui_bug, f"Test failed: {seen.test_status} {seen.test_answer}; toast: {seen.toast!r}"
    # The hook's own test_connection still has to answer: the same request, with the empty port sent as null,
    # through the logged-in browser (the UI's cookie), as a fixed UI would send it.
    replay = browser_page.request.post(
        f"{airflow_deployment.api_url}/api/v2/connections/test",
        data={**seen.test_request, "port": None},
        headers={"Authorization": f"Bearer {airflow_deployment.token()}"},
    )
    assert replay.status == 200, replay.text()
    answer = replay.json()
    assert answer["status"] is True and answer["message"].startswith("Connected to"), answer
    pytest.xfail(
        f"the Test button shows {seen.toast!r}: Airflow {_airflow_version()}'s UI posts port=0 for an empty port "
        "(these forms hide it), and the API refuses to reuse stored credentials for a port that 'differs' from "
        f"NULL; the same request with port=null answers {answer['message']!r}"
    )


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")
