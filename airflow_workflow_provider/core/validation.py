"""Checks on everything a user hands the provider, run before any request is sent."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_workflow_provider.core.errors import WorkflowInputError

MAX_ID_LENGTH = 256
# What an execution summary (XCom, trigger events) carries of a vendor's ``output`` at most, as JSON.
# A larger output is left out and the summary says so; the run operators' ``max_output_bytes`` changes it.
# Here rather than in core.security, which applies it, so that declaring an operator (a DAG parse) does
# not load the redaction and transport code.
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def require_id(field: str, value: Any, *, max_length: int = MAX_ID_LENGTH) -> str:
    """A workflow or execution id that is safe to put in a URL path."""
    if not isinstance(value, str):
        raise WorkflowInputError(field, f"must be a string, got {type(value).__name__}")
    if value == "":
        raise WorkflowInputError(field, "must not be empty")
    if len(value) > max_length:
        raise WorkflowInputError(field, f"must be at most {max_length} characters, got {len(value)}")
    if _CONTROL_OR_SPACE.search(value):
        raise WorkflowInputError(field, "must not contain whitespace or control characters")
    if "/" in value or "\\" in value:
        raise WorkflowInputError(field, "must not contain '/' or '\\'")
    if value in {".", ".."} or ".." in value:
        raise WorkflowInputError(field, "must not contain '..'")
    return value


def path_segment(value: str, *, safe: str = "") -> str:
    """Escape an already validated id for use as one URL path segment (``safe``: characters left as they are)."""
    return quote(value, safe=safe)


def require_json_object(field: str, value: Any) -> dict[str, Any]:
    """A payload the vendor will receive as a JSON object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorkflowInputError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    require_json_serializable(field, value)
    return value


def require_json_serializable(field: str, value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WorkflowInputError(field, f"must be JSON-serializable ({exc})") from None
    except RecursionError:
        raise WorkflowInputError(field, "must be JSON-serializable (nested too deeply)") from None
    return value


def require_positive_number(field: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkflowInputError(field, f"must be a positive number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise WorkflowInputError(field, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def require_int_in_range(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WorkflowInputError(field, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def require_choice(field: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise WorkflowInputError(field, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def shown_url(value: Any, *, limit: int = 120) -> str:
    """A URL as an error may show it: anything before an ``@`` (credentials), the query and fragment left out.

    Works on text that is not a valid URL too: that is when it gets shown, in an error.
    """
    text = str(value).strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    if "@" in rest:  # the last one: a password may hold '@', '/', '?' or '#'
        rest = "***@" + rest.rsplit("@", 1)[1]
    cut = re.split(r"[?#]", rest, maxsplit=1)
    shown = (f"{scheme}://" if separator else "") + cut[0] + ("?…" if len(cut) > 1 else "")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def require_base_url(field: str, value: str) -> str:
    """An API base URL override: https, or plain http only to this machine (the emulator, a local proxy)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise WorkflowInputError(field, f"is not a URL that can be read, got {shown_url(value)!r}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WorkflowInputError(
            field, f"must be an absolute http(s) URL such as https://proxy.example.com, got {shown_url(value)!r}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise WorkflowInputError(
            field, "must use https; plain http is allowed only for a loopback host (127.0.0.1, ::1, localhost)"
        )
    if parts.query or parts.fragment:
        raise WorkflowInputError(field, "must not carry a query string or fragment")
    if "@" in parts.netloc:
        raise WorkflowInputError(field, "must not carry credentials; put them in the connection's secret fields")
    return value.strip().rstrip("/")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f?#\\@]")


def require_method(field: str, value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in HTTP_METHODS:
        raise WorkflowInputError(field, f"must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
    return value.upper()


def require_api_path(field: str, value: Any) -> str:
    """A path on the vendor's API host: it can name another endpoint, never another host.

    Appended to the connection's base URL, so it must start with ``/``; ``@`` (which would turn the
    host into credentials), ``\\``, ``?`` and ``#`` are refused (query parameters go in ``params``).
    """
    if not isinstance(value, str):
        raise WorkflowInputError(field, f"must be a string, got {type(value).__name__}")
    if not value.startswith("/") or value.startswith("//"):
        raise WorkflowInputError(field, f"must be a path starting with a single '/', e.g. '/api/v2/...', got {value!r}")
    if _PATH_FORBIDDEN.search(value):
        raise WorkflowInputError(
            field,
            "must not contain whitespace, control characters, '@', '\\', '?' or '#' (query parameters go in params)",
        )
    if any(segment in {".", ".."} for segment in value.split("/")):
        raise WorkflowInputError(field, "must not contain '.' or '..' segments")
    return value
