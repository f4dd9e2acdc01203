"""OpenLineage: with the provider installed, run operators report their execution; without it, nothing is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_workflow_provider.core.errors import WorkflowExecutionFailed
from airflow_workflow_provider.testing.emulator import WorkflowScript
from tests.conftest import Vendor
from tests.operators.support import context
from tests.operators.test_durable_and_cancel import make_operator


def _extractor(operator):
    """What Airflow's OpenLineage listener uses for operators that define ``get_openlineage_facets_*``."""
    extractors = pytest.importorskip("airflow.providers.openlineage.extractors.base")
    return extractors.DefaultExtractor(operator)


def test_a_finished_run_reports_its_execution_and_link(vendor: Vendor) -> None:
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.2))
    operator = make_operator(vendor)
    extractor = _extractor(operator)
    result = operator.execute(context())

    lineage = extractor.extract_on_complete(task_instance=None)

    facets = lineage.run_facets
    assert facets["externalQuery"].externalQueryId == result["id"]
    assert facets["externalQuery"].source == f"http://127.0.0.1:{vendor.emulator.port}"
    execution = facets["workflowExecution"]
    assert (execution.vendor, execution.workflow, execution.executionId) == (
        operator.hook.api.vendor,
        vendor.workflow,
        result["id"],
    )
    assert execution.url == vendor.hook().execution_url(vendor.workflow, result["id"])
    assert execution.state == "succeeded"
    assert "errorMessage" not in facets
    for secret in operator.hook.api.secrets:
        assert secret not in repr(lineage)


def test_a_failed_run_reports_the_vendors_reason(vendor: Vendor) -> None:
    vendor.emulator.script(
        vendor.name, vendor.workflow, WorkflowScript(duration=0.2, outcome="failure", error_message="quota exceeded")
    )
    operator = make_operator(vendor)
    extractor = _extractor(operator)
    with pytest.raises(WorkflowExecutionFailed):
        operator.execute(context())

    lineage = extractor.extract_on_failure(task_instance=None)

    facets = lineage.run_facets
    assert "quota exceeded" in facets["errorMessage"].message
    assert facets["errorMessage"].programmingLanguage == "python"
    [execution] = vendor.executions()
    assert facets["externalQuery"].externalQueryId == execution["id"]


def test_the_custom_facet_serializes_with_its_schema(vendor: Vendor) -> None:
    serde = pytest.importorskip("openlineage.client.serde")
    vendor.emulator.script(vendor.name, vendor.workflow, WorkflowScript(duration=0.1))
    operator = make_operator(vendor)
    operator.execute(context())

    as_dict = serde.Serde.to_dict(operator.get_openlineage_facets_on_complete(None).run_facets["workflowExecution"])

    assert as_dict["_schemaURL"].endswith("#/$defs/WorkflowExecutionRunFacet")
    assert as_dict["executionId"] and as_dict["url"].startswith("https://")


def test_nothing_of_openlineage_is_loaded_by_dags_using_the_provider() -> None:
    """Without the OpenLineage listener asking, parsing and building tasks imports nothing of OpenLineage."""
    script = (
        "import sys\n"
        "from airflow_workflow_provider.operators.datadog import DatadogRunWorkflowOperator\n"
        "from airflow_workflow_provider.operators.cloudflare import CloudflareRunWorkflowOperator\n"
        "from airflow_workflow_provider.operators.sailpoint import SailPointRunWorkflowOperator\n"
        "for cls in (DatadogRunWorkflowOperator, CloudflareRunWorkflowOperator, SailPointRunWorkflowOperator):\n"
        "    cls(task_id='t', workflow='w')\n"
        # Airflow itself reads every provider's get_provider_info; the client, the facets and our module stay out.
        "ours = ('openlineage', 'airflow_workflow_provider.openlineage')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(ours)\n"
        "    or (m.startswith('airflow.providers.openlineage.') and not m.endswith('.get_provider_info')))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
