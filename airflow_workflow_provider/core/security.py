"""What keeps credentials in and hostile answers out, written once for both HTTP stacks.

- :class:`Redactor` replaces every credential in a text, including the escaped and URL-encoded
  forms in which a vendor, a proxy or a library may echo it back.
- :class:`TransportPolicy` says how large an answer may be and which proxy a request takes;
  the sync (requests) and async (aiohttp) senders in ``core.http`` both obey it.
- :func:`require_credential` is how every credential is read from a connection.
- :func:`bound_output` keeps a vendor's execution output in a summary (XCom, trigger events) within a size.

Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from airflow_workflow_provider.core.errors import WorkflowInputError
from airflow_workflow_provider.core.validation import is_loopback_host, shown_url

REDACTED = "***"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require_credential(field: str, value: str | None, what: str) -> str:
    """A credential from a connection: surrounding whitespace dropped, control characters refused.

    A key pasted with a trailing newline is the common case: sent as is, the HTTP library
    refuses the header and prints its value, escaped, where Airflow's masker does not find it.
    The error names the field and never the value.
    """
    if not value or not value.strip():
        raise WorkflowInputError(field, f"is empty; set the {what} in the Airflow connection")
    value = value.strip()
    if _CONTROL.search(value):
        raise WorkflowInputError(
            field, f"the {what} contains a control character (a line break or tab inside it?); paste it again"
        )
    return value


class Redactor:
    """Replaces credentials, and the forms a vendor or proxy may echo them in, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.update(_echoed_forms(secret))
        # Longest first, so that a secret inside a longer one does not leave the rest showing.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def _echoed_forms(secret: str) -> set[str]:
    """The secret as sent, URL-encoded (both cases of hex), JSON-escaped and repr-escaped."""
    encoded = {quote(secret, safe=""), quote_plus(secret, safe="")}
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in encoded}
    return {secret, *encoded, json.dumps(secret)[1:-1], repr(secret)[1:-1]}


# -- what an execution summary (XCom) carries -------------------------------------------------------

# A vendor's error message is shown whole in the task log; in a summary it is cut to this many characters.
MAX_SUMMARY_TEXT = 4096


def json_size_exceeds(value: Any, limit: int) -> int | None:
    """The size of ``value`` as JSON if it is above ``limit`` bytes (else None), without building it whole."""
    size = 0
    for piece in json.JSONEncoder(ensure_ascii=False, default=str).iterencode(value):
        size += len(piece.encode())
        if size > limit:
            return size
    return None


def bound_output(summary: dict[str, Any], max_output_bytes: int | None) -> dict[str, Any]:
    """``summary`` with its ``output`` left out when larger than ``max_output_bytes`` (None: no limit).

    ``output_truncated`` says whether it was; the whole output stays readable with the hook's
    ``get_execution``.
    """
    output = summary.get("output")
    too_large = max_output_bytes is not None and output is not None and json_size_exceeds(output, max_output_bytes)
    if not too_large:
        return {**summary, "output_truncated": bool(summary.get("output_truncated", False))}
    return {
        **summary,
        "output": None,
        "output_truncated": True,
        "output_note": (
            f"the output is larger than max_output_bytes={max_output_bytes} and was left out of the summary; "
            "read it with the hook's get_execution"
        ),
    }


# -- transport policy: answer sizes and proxies --------------------------------------------------

DEFAULT_MAX_RESPONSE_MB = 32.0
MAX_RESPONSE_MB_LIMIT = 1024.0
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class TransportPolicy:
    """How large an answer may be and which proxy a request goes through, for both stacks.

    ``max_response_bytes`` bounds the body after decompression (and so before it, too): a
    small gzip body that inflates to gigabytes is cut at the limit instead of filling memory.

    Proxies: ``proxy_url`` when the connection sets one; otherwise the environment's
    ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` when ``environment_proxies`` is on (the default),
    but never for a loopback host (the emulator, a local proxy): its requests carry the real
    credentials and must not reach a proxy the environment happens to name. ``.netrc`` is
    never read.
    """

    max_response_bytes: int = int(DEFAULT_MAX_RESPONSE_MB * 1024 * 1024)
    proxy_url: str | None = None
    environment_proxies: bool = True

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> TransportPolicy:
        megabytes = _megabytes(extra.get("max_response_mb", DEFAULT_MAX_RESPONSE_MB))
        proxy = extra.get("proxy_url") or None
        return cls(
            max_response_bytes=int(megabytes * 1024 * 1024),
            proxy_url=require_proxy_url("extra.proxy_url", str(proxy)) if proxy else None,
            environment_proxies=_flag("extra.use_environment_proxy", extra.get("use_environment_proxy", True)),
        )

    def proxy_for(self, url: str) -> str | None:
        """The proxy ``url`` goes through, or None for a direct connection."""
        import urllib.request  # here, not at the top: operators import this module while DAG files are parsed

        if self.proxy_url:
            return self.proxy_url
        host = urlsplit(url).hostname
        if not self.environment_proxies or not host or is_loopback_host(host):
            return None
        if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]  # public, not in typeshed
            return None
        proxies = urllib.request.getproxies_environment()
        return proxies.get(urlsplit(url).scheme) or None

    @property
    def max_response_mb(self) -> float:
        return self.max_response_bytes / (1024 * 1024)


def _megabytes(value: Any) -> float:
    field = "extra.max_response_mb"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise WorkflowInputError(field, f"must be a number of megabytes, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_RESPONSE_MB_LIMIT:
        raise WorkflowInputError(
            field, f"must be a number of megabytes above 0 and at most {MAX_RESPONSE_MB_LIMIT:g}, got {value!r}"
        )
    return float(value)


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise WorkflowInputError(field, f"must be true or false, got {value!r}")


def require_proxy_url(field: str, value: str) -> str:
    """An explicit proxy: http(s)://host:port, without credentials (they would sit unmasked in the extras)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise WorkflowInputError(
            field, f"must be a URL such as http://proxy.example.com:3128, got {shown_url(value)!r}"
        ) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WorkflowInputError(
            field, f"must be an http(s) URL such as http://proxy.example.com:3128, got {shown_url(value)!r}"
        )
    if "@" in parts.netloc:
        raise WorkflowInputError(
            field, "must not carry credentials: Airflow would show them unmasked in the connection's extras"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise WorkflowInputError(field, "must be scheme://host:port only, without a path or query")
    return value.strip().rstrip("/")
