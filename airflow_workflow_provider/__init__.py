"""Apache Airflow provider for Datadog Workflow Automation, Cloudflare Workflows and SailPoint ISC Workflows.

Importing this package is cheap on purpose: Airflow calls ``get_provider_info()`` in every
component, and DAG files import the operators on every parse.
"""

from __future__ import annotations

from typing import Any

# The one source of the version: pyproject.toml reads it from here (hatch), and so do the docs.
__version__ = "0.1.0"

PACKAGE_NAME = "airflow-workflow-provider"
DOCUMENTATION_URL = "https://airflow-workflow-provider.readthedocs.io/"


def _airflow_reads_declarative_forms() -> bool:
    """Airflow 3.2 and newer read connection forms from provider info rather than from the hooks."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("apache-airflow-core").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (3, 2)


# (integration name, documentation, module name under hooks/ operators/ sensors/ triggers/)
INTEGRATIONS = (
    ("Datadog Workflow Automation", "https://docs.datadoghq.com/actions/workflows/", "datadog"),
    ("Cloudflare Workflows", "https://developers.cloudflare.com/workflows/", "cloudflare"),
    (
        "SailPoint Identity Security Cloud Workflows",
        "https://developer.sailpoint.com/docs/extensibility/workflows/",
        "sailpoint",
    ),
)


def _modules(kind: str) -> list[dict[str, Any]]:
    return [
        {"integration-name": name, "python-modules": [f"airflow_workflow_provider.{kind}.{module}"]}
        for name, _, module in INTEGRATIONS
    ]


def get_provider_info() -> dict[str, Any]:
    from airflow_workflow_provider.connection_forms import FORMS

    declarative = _airflow_reads_declarative_forms()
    return {
        "package-name": PACKAGE_NAME,
        "name": "Workflow Automation (Datadog, Cloudflare, SailPoint)",
        "description": "Start and follow Datadog Workflow Automation, Cloudflare Workflows and "
        "SailPoint Identity Security Cloud workflow executions from Airflow.",
        "versions": [__version__],
        # Airflow 3.3+ reads it from the package metadata (Project-URL: Documentation); older ones from here.
        "documentation-url": DOCUMENTATION_URL,
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["service"]} for name, url, _ in INTEGRATIONS
        ],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "extra-links": [
            "airflow_workflow_provider.links.DatadogWorkflowInstanceLink",
            "airflow_workflow_provider.links.CloudflareWorkflowInstanceLink",
            "airflow_workflow_provider.links.SailPointWorkflowExecutionLink",
        ],
        "connection-types": [form.provider_info(declarative=declarative) for form in FORMS],
    }
