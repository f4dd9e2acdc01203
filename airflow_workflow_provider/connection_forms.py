"""The connection forms of the three connection types, as data.

Airflow 3.2+ reads them declaratively from ``get_provider_info()`` (``conn-fields`` and
``ui-field-behaviour``) without importing the hooks; Airflow 3.0 and 3.1 ask the hooks'
``get_connection_form_widgets``/``get_ui_field_behaviour``, which build the same form from
this data. Secrets are always password fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BASE_URL_PLACEHOLDER = "optional: https://proxy.example.com (http only for 127.0.0.1, e.g. the emulator)"


@dataclass(frozen=True)
class ExtraField:
    label: str
    description: str = ""
    secret: bool = False
    placeholder: str = ""
    default: str | None = None


@dataclass(frozen=True)
class ConnectionForm:
    conn_type: str
    hook_class_name: str
    hook_name: str
    hidden: tuple[str, ...]
    relabeling: Mapping[str, str]
    placeholders: Mapping[str, str]
    extra_fields: Mapping[str, ExtraField] = field(default_factory=dict)

    def _all_extra_fields(self) -> dict[str, ExtraField]:
        return {
            **self.extra_fields,
            "base_url": ExtraField(
                "API base URL override",
                "Leave empty to use the vendor's public API. For a proxy, or the offline emulator.",
                placeholder=BASE_URL_PLACEHOLDER,
            ),
            # The transport policy (core/security.py), the same for every vendor and both HTTP stacks.
            "proxy_url": ExtraField(
                "HTTP proxy",
                "Send every request through this proxy (http(s)://host:port, no credentials). Empty: the "
                "environment's HTTPS_PROXY/NO_PROXY for vendor hosts, never for 127.0.0.1.",
                placeholder="optional: http://proxy.example.com:3128",
            ),
            "use_environment_proxy": ExtraField(
                "Use the environment's proxy",
                "true (default) or false: whether HTTPS_PROXY/HTTP_PROXY apply when no proxy is set here.",
                placeholder="true",
            ),
            "max_response_mb": ExtraField(
                "Largest answer (MB)",
                "An answer larger than this, once decompressed, is refused unread (default 32, at most 1024).",
                placeholder="32",
            ),
        }

    def behaviour(self) -> dict[str, Any]:
        placeholders = dict(self.placeholders)
        placeholders.update({k: f.placeholder for k, f in self._all_extra_fields().items() if f.placeholder})
        return {"hidden_fields": list(self.hidden), "relabeling": dict(self.relabeling), "placeholders": placeholders}

    def provider_info(self, *, declarative: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook-class-name": self.hook_class_name,
            "hook-name": self.hook_name,
            "connection-type": self.conn_type,
        }
        if declarative:
            behaviour = self.behaviour()
            entry["ui-field-behaviour"] = {
                "hidden-fields": behaviour["hidden_fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            }
            entry["conn-fields"] = {
                name: {
                    "label": f.label,
                    "description": f.description,
                    "schema": {
                        "type": ["string", "null"],
                        **({"format": "password"} if f.secret else {}),
                        **({"default": f.default} if f.default is not None else {}),
                        # Airflow 3.2+'s form shows schema examples as the field's placeholder.
                        **({"examples": [f.placeholder]} if f.placeholder else {}),
                    },
                }
                for name, f in self._all_extra_fields().items()
            }
        return entry

    def widgets(self) -> dict[str, Any]:
        """wtforms fields for Airflow 3.0/3.1, which build the form from the hook.

        Only wtforms is required: Airflow 3.0/3.1 read a hook's form (its extra fields and its
        relabelled, hidden and hinted standard fields alike) only when wtforms imports, and swap
        wtforms' fields for their own stand-ins while they read it. Flask-AppBuilder's widgets and
        flask-babel's translations are used where installed (the FAB provider brings them), but a
        missing one must not lose the whole form.
        """
        from wtforms import PasswordField, StringField

        try:
            from flask_babel import lazy_gettext as label_of
        except ImportError:

            def label_of(text: str) -> str:
                return text

        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        except ImportError:
            text_widget: dict[str, Any] = {}
            password_widget: dict[str, Any] = {}
        else:
            text_widget = {"widget": BS3TextFieldWidget()}
            password_widget = {"widget": BS3PasswordFieldWidget()}

        widgets: dict[str, Any] = {}
        for name, spec in self._all_extra_fields().items():
            if spec.secret:
                widgets[name] = PasswordField(label_of(spec.label), description=spec.description, **password_widget)
            else:
                widgets[name] = StringField(
                    label_of(spec.label), description=spec.description, default=spec.default, **text_widget
                )
        return widgets


def plain_extra(extra: Mapping[str, Any], conn_type: str) -> dict[str, Any]:
    """The extras with empty values dropped and the older ``extra__<type>__`` prefix removed."""
    prefix = f"extra__{conn_type}__"
    plain: dict[str, Any] = {}
    for key, value in extra.items():
        if value in (None, ""):
            continue
        plain.setdefault(key.removeprefix(prefix), value)
    return plain


DATADOG = ConnectionForm(
    conn_type="datadog_workflows",
    hook_class_name="airflow_workflow_provider.hooks.datadog.DatadogWorkflowsHook",
    hook_name="Datadog Workflow Automation",
    hidden=("schema", "port", "login"),
    relabeling={"host": "Datadog site", "password": "API key"},
    placeholders={
        "host": "datadoghq.com (or us3/us5/ap1/ap2/uk1.datadoghq.com, datadoghq.eu)",
        "password": "Datadog API key",
        "extra": '{"connect_timeout": 10, "read_timeout": 30, "max_attempts": 5}',
    },
    extra_fields={
        # The name contains "secret" so that Airflow masks it in the UI, the REST API and the CLI
        # (it masks extras by name only; "application_key" matches none of its sensitive words).
        "application_key_secret": ExtraField(
            "Application key",
            "Application key with the workflows_read and workflows_run permissions, registered for "
            "Actions API access (Organization Settings > Application Keys, or the Register App Key API); "
            "Datadog answers 403 to every workflow call otherwise.",
            secret=True,
            placeholder="Datadog application key",
        ),
    },
)

CLOUDFLARE = ConnectionForm(
    conn_type="cloudflare_workflows",
    hook_class_name="airflow_workflow_provider.hooks.cloudflare.CloudflareWorkflowsHook",
    hook_name="Cloudflare Workflows",
    hidden=("host", "schema", "port"),
    relabeling={"login": "Email (only with a Global API Key)", "password": "API token or Global API Key"},
    placeholders={
        "login": "leave empty for an API token (recommended)",
        "password": "API token with Workers Scripts Read/Write",
        "extra": '{"connect_timeout": 10, "read_timeout": 30, "max_attempts": 5}',
    },
    extra_fields={
        "account_id": ExtraField(
            "Account ID",
            "The Cloudflare account that owns the workflows (32 hex characters).",
            placeholder="023e105f4ecef8ad9ca31a8372d0c353",
        ),
    },
)

SAILPOINT = ConnectionForm(
    conn_type="sailpoint_workflows",
    hook_class_name="airflow_workflow_provider.hooks.sailpoint.SailPointWorkflowsHook",
    hook_name="SailPoint Identity Security Cloud Workflows",
    hidden=("schema", "port"),
    relabeling={"host": "Tenant", "login": "Client ID", "password": "Client secret"},
    placeholders={
        "host": "acme (for acme.api.identitynow.com)",
        "login": "external trigger's OAuth client id, or a personal access token id",
        "password": "its secret",
        "extra": '{"api_version": "v3", "connect_timeout": 10, "read_timeout": 30}',
    },
    extra_fields={
        # The external trigger's own client may only start its workflow (sp:workflow-execute:external);
        # reading, listing and cancelling executions need a user-level token (api-specs security sections).
        "user_client_id": ExtraField(
            "Personal access token: client ID",
            "A user-level credential (personal access token with sp:workflow-execution:read and sp:workflow:read, "
            "or sp:workflow:manage) for reading, listing and cancelling executions and test runs. Needed when "
            "Client ID/secret above are an external trigger's own client; leave empty when they are already a "
            "personal access token.",
            placeholder="personal access token client id",
        ),
        # "secret" in the name: Airflow masks extras by name.
        "user_client_secret": ExtraField(
            "Personal access token: secret",
            "The secret of that personal access token.",
            secret=True,
            placeholder="personal access token secret",
        ),
        "api_version": ExtraField(
            "Versioned API to fall back to",
            "Where a tenant lacks the per-service paths (/workflows/v1...): v3 (default), beta, or a dated "
            "version such as v2025.",
            placeholder="v3",
            default="v3",
        ),
    },
)

FORMS = (DATADOG, CLOUDFLARE, SAILPOINT)
