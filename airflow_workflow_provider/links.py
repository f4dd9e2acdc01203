"""Links from a task to its execution in the vendor's UI (the operator stores the URL in XCom)."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

EXECUTION_URL_KEY = "execution_url"


class WorkflowExecutionLink(BaseOperatorLink):
    name: ClassVar[str] = "Workflow execution"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(key=EXECUTION_URL_KEY, ti_key=ti_key) or ""


class DatadogWorkflowInstanceLink(WorkflowExecutionLink):
    name = "Datadog Workflow Instance"


class CloudflareWorkflowInstanceLink(WorkflowExecutionLink):
    name = "Cloudflare Workflow Instance"


class SailPointWorkflowExecutionLink(WorkflowExecutionLink):
    name = "SailPoint Workflow"
