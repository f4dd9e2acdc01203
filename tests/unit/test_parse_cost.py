"""What a DAG file loads from us: only what declaring its tasks needs.

The dag-processor parses every DAG file again and again, in a fresh process each time, and does not
pre-import our package (it pre-imports only ``airflow.*`` modules). So importing the operator and
sensor modules, and building tasks from them, must not load the hooks, the HTTP stack (requests,
urllib3, aiohttp, tenacity), the pydantic response models, redaction, the triggers or OpenLineage:
those load when a task runs. Checked on ``sys.modules`` in a fresh interpreter, not on timings.
"""

from __future__ import annotations

import json
import subprocess
import sys

# What the DAG files import (the figure of ``benchmarks/parse_cost.py``).
DAG_MODULES = tuple(
    f"airflow_workflow_provider.{kind}.{vendor}"
    for kind in ("operators", "sensors")
    for vendor in ("datadog", "cloudflare", "sailpoint")
)
# Of our own modules, only these may load with them: the base classes, the links, the error tree, the
# states and the argument checks.
DECLARATION_MODULES = {
    "airflow_workflow_provider",
    "airflow_workflow_provider._compat",
    "airflow_workflow_provider.links",
    "airflow_workflow_provider.core",
    "airflow_workflow_provider.core.errors",
    "airflow_workflow_provider.core.states",
    "airflow_workflow_provider.core.validation",
    "airflow_workflow_provider.operators",
    "airflow_workflow_provider.operators.base",
    "airflow_workflow_provider.sensors",
    "airflow_workflow_provider.sensors.base",
    *DAG_MODULES,
}
# Third-party packages only a running task needs. Airflow 3.3 itself loads tenacity and pydantic with
# airflow.sdk; the check is on what our imports add, so it holds on every Airflow release.
RUNTIME_PACKAGES = (
    "requests",
    "urllib3",
    "aiohttp",
    "yarl",
    "multidict",
    "tenacity",
    "pydantic",
    "pydantic_core",
    "openlineage",
    "asgiref",
)

PARSE_A_DAG = f"""
import json, sys
import airflow.sdk
before = set(sys.modules)
from airflow_workflow_provider.operators.cloudflare import (
    CloudflareInstanceStatusOperator, CloudflareListWorkflowExecutionsOperator, CloudflareRunWorkflowBatchOperator,
    CloudflareRunWorkflowOperator, CloudflareSendEventOperator,
)
from airflow_workflow_provider.operators.datadog import (
    DatadogListWorkflowExecutionsOperator, DatadogRunWorkflowOperator,
)
from airflow_workflow_provider.operators.sailpoint import (
    SailPointListWorkflowExecutionsOperator, SailPointRunWorkflowOperator,
)
from airflow_workflow_provider.sensors.cloudflare import CloudflareWorkflowInstanceSensor
from airflow_workflow_provider.sensors.datadog import DatadogWorkflowInstanceSensor
from airflow_workflow_provider.sensors.sailpoint import SailPointWorkflowExecutionSensor
for module in {DAG_MODULES!r}:
    __import__(module)
imported = set(sys.modules) - before

# Building tasks, as a DAG file does; argument checks run here, before any request.
tasks = [
    DatadogRunWorkflowOperator(task_id="dd", workflow="w", stop_states=["waiting"], poll_interval=5, timeout=60),
    CloudflareRunWorkflowOperator(task_id="cf", workflow="w", instance_id="i", max_output_bytes=1000),
    SailPointRunWorkflowOperator(task_id="sp", workflow="w", mode="test", deferrable=True),
    DatadogListWorkflowExecutionsOperator(task_id="ddl", workflow="w", max_results=10),
    CloudflareListWorkflowExecutionsOperator(task_id="cfl", workflow="w"),
    SailPointListWorkflowExecutionsOperator(task_id="spl", workflow="w"),
    CloudflareInstanceStatusOperator(task_id="cfs", workflow="w", instance_id="i", action="pause"),
    CloudflareSendEventOperator(task_id="cfe", workflow="w", instance_id="i", event_type="go"),
    CloudflareRunWorkflowBatchOperator(task_id="cfb", workflow="w", payloads=[{{}}]),
    DatadogWorkflowInstanceSensor(task_id="dds", workflow="w", execution_id="e"),
    CloudflareWorkflowInstanceSensor(task_id="cfw", workflow="w", execution_id="e", stop_states=["waiting"]),
    SailPointWorkflowExecutionSensor(task_id="sps", workflow="w", execution_id="e", deferrable=True),
]
errors = []
for bad in (dict(poll_interval=0), dict(stop_states=["succeeded"]), dict(max_output_bytes=-1)):
    try:
        DatadogRunWorkflowOperator(task_id="bad", workflow="w", **bad)
    except ValueError as exc:
        errors.append(str(exc))
built = set(sys.modules) - before
print(json.dumps({{
    "imported": sorted(imported),
    "built": sorted(built),
    "errors": errors,
    "links": {{type(t).__name__: [link.name for link in t.operator_extra_links] for t in tasks}},
}}))
"""


def _parse_a_dag() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PARSE_A_DAG], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _runtime_only(modules: object) -> list[str]:
    assert isinstance(modules, list)
    ours = [m for m in modules if m.startswith("airflow_workflow_provider") and m not in DECLARATION_MODULES]
    theirs = [m for m in modules if m.split(".")[0] in RUNTIME_PACKAGES]
    return ours + theirs


def test_a_dag_file_loads_only_what_declaring_its_tasks_needs() -> None:
    result = _parse_a_dag()

    assert "airflow_workflow_provider.operators.base" in result["imported"]  # the check sees our imports
    assert _runtime_only(result["imported"]) == [], "imported by the operator and sensor modules"
    assert _runtime_only(result["built"]) == [], "imported by building tasks"
    # Bad arguments are still refused when the DAG is parsed, naming the field.
    assert [e.split(":")[0] for e in result["errors"]] == ["poll_interval", "stop_states", "max_output_bytes"]  # type: ignore[union-attr]
    # The UI links are declared with the classes, as Airflow reads them from the serialized DAG.
    links = result["links"]
    assert isinstance(links, dict)
    assert links["DatadogRunWorkflowOperator"] == ["Datadog Workflow Instance"]
    assert links["CloudflareWorkflowInstanceSensor"] == ["Cloudflare Workflow Instance"]
    assert links["SailPointWorkflowExecutionSensor"] == ["SailPoint Workflow"]
