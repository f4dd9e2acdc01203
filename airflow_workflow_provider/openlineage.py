"""OpenLineage facets of a workflow execution, for the run operators.

Imported only when Airflow's OpenLineage listener asks an operator for its facets, which happens
only where ``apache-airflow-providers-openlineage`` is installed (the ``openlineage`` extra):
without it, nothing here is ever imported and a task pays nothing.

What a lineage consumer learns about a task that ran a workflow: the vendor's execution id in the
standard ``externalQuery`` facet (the way the BigQuery and Databricks operators report their job
and query ids), the execution itself with its UI link in ``workflowExecution``, and on failure the
vendor's reason in the standard ``errorMessage`` facet.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import ErrorMessageRunFacet, ExternalQueryRunFacet, RunFacet
from airflow.providers.openlineage.extractors import OperatorLineage

SCHEMA_URL = (
    "https://airflow-workflow-provider.readthedocs.io/en/latest/guides/operators.html#openlineage"
    "#/$defs/WorkflowExecutionRunFacet"
)


@attr.define
class WorkflowExecutionRunFacet(RunFacet):
    """The workflow execution a task started or followed, and where a person can see it."""

    vendor: str
    workflow: str
    executionId: str  # camelCase, as OpenLineage names facet fields
    url: str | None = attr.field(default=None)
    state: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL


def execution_lineage(
    *,
    vendor: str,
    api_base_url: str,
    workflow: str,
    execution_id: str | None,
    url: str | None,
    state: str | None,
    error: str | None = None,
) -> OperatorLineage:
    """The run facets of one task: its execution (when one started) and, on failure, why it failed."""
    run_facets: dict[str, RunFacet] = {}
    if execution_id:
        parts = urlsplit(api_base_url)
        run_facets["externalQuery"] = ExternalQueryRunFacet(
            externalQueryId=execution_id, source=f"{parts.scheme}://{parts.netloc}"
        )
        run_facets["workflowExecution"] = WorkflowExecutionRunFacet(
            vendor=vendor, workflow=workflow, executionId=execution_id, url=url, state=state
        )
    if error:
        run_facets["errorMessage"] = ErrorMessageRunFacet(message=error, programmingLanguage="python")
    return OperatorLineage(run_facets=run_facets)
