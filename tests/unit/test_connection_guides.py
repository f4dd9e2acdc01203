"""The ``AIRFLOW_CONN_*`` examples of the connection guides (docs/connections/) work as written.

Each example is read from the page itself, set in the environment and looked up the way a task
looks it up; it must come out with the page's connection type and the extras it spells, and the
hook must build its client from it (every value passes the checks made before any request).
On each page the first JSON example and the first URI example describe the same connection.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_workflow_provider.core.hook import BaseWorkflowsHook
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "connections"
HOOK_BY_GUIDE: dict[str, type[BaseWorkflowsHook[Any]]] = {
    "datadog.md": DatadogWorkflowsHook,
    "cloudflare.md": CloudflareWorkflowsHook,
    "sailpoint.md": SailPointWorkflowsHook,
}
# export AIRFLOW_CONN_<ID>='<value>' where the value may span lines (JSON) but holds no single quote.
EXPORT = re.compile(r"^export (AIRFLOW_CONN_[A-Z0-9_]+)='([^']*)'", re.MULTILINE)


def examples(guide: str) -> list[tuple[str, str]]:
    return EXPORT.findall((GUIDES / guide).read_text())


def uri_query(uri: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(uri).query))


CASES = [(guide, name, value) for guide in HOOK_BY_GUIDE for name, value in examples(guide)]


def test_every_guide_has_a_json_and_a_uri_example() -> None:
    for guide in HOOK_BY_GUIDE:
        values = [value for _, value in examples(guide)]
        assert any(v.lstrip().startswith("{") for v in values), f"{guide}: no JSON example"
        assert any(not v.lstrip().startswith("{") for v in values), f"{guide}: no URI example"


@pytest.mark.parametrize(("guide", "env_name", "value"), CASES, ids=[f"{g}:{n}" for g, n, _ in CASES])
def test_documented_example_parses_into_its_connection(
    guide: str, env_name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_class = HOOK_BY_GUIDE[guide]
    conn_id = env_name.removeprefix("AIRFLOW_CONN_").lower()
    monkeypatch.setenv(env_name, value)

    hook = hook_class(conn_id)
    conn = hook.get_connection(conn_id)

    assert conn.conn_type == hook_class.conn_type
    if value.lstrip().startswith("{"):
        documented = json.loads(value)
        assert conn.conn_type == documented["conn_type"]
        assert conn.extra_dejson == documented.get("extra", {})
    else:
        assert value.startswith(hook_class.conn_type.replace("_", "-") + "://")
        # Every query parameter became an extra of that name (as text, or decoded: Airflow's parsers differ).
        assert as_text(conn.extra_dejson) == uri_query(value)
        # The same URI given to `airflow connections add --conn-uri` (the metadata database's parser).
        from airflow.models.connection import Connection as StoredConnection

        stored = StoredConnection(conn_id=conn_id, uri=value)
        assert stored.conn_type == hook_class.conn_type
        assert (stored.host, stored.login, stored.password) == (conn.host, conn.login, conn.password)
        assert as_text(stored.extra_dejson) == uri_query(value)
    # The hook accepts every field and extra as documented (this checks, and sends nothing).
    api = hook.api
    assert api.base_url.startswith("https://")


def test_json_and_uri_examples_of_a_guide_describe_the_same_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    for guide, hook_class in HOOK_BY_GUIDE.items():
        values = [value for _, value in examples(guide)]
        first_json = next(v for v in values if v.lstrip().startswith("{"))
        first_uri = next(v for v in values if not v.lstrip().startswith("{"))
        seen = []
        for conn_id, value in (("from_json", first_json), ("from_uri", first_uri)):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
            conn = hook_class(conn_id).get_connection(conn_id)
            seen.append(
                (conn.conn_type, conn.host or None, conn.login or None, conn.password, as_text(conn.extra_dejson))
            )
        assert seen[0] == seen[1], guide


def as_text(extra: dict[str, Any]) -> dict[str, str]:
    """Extras as a URI spells them: the task SDK keeps a URI's values as text, the CLI decodes JSON in them."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in extra.items()}
