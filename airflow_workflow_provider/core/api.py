"""What every vendor module provides: request builders and response parsers, without I/O.

A vendor module subclasses :class:`VendorApi` and reads like the vendor's API reference: one
builder per endpoint, one parser per answer shape, the vendor's status map and error envelope.
The hook core (``core.hook``) sends the requests, sync or async, and feeds the answers back.
"""

from __future__ import annotations

import contextlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import pydantic

from airflow_workflow_provider.core.errors import (
    ErrorDetails,
    InvalidResponseError,
    WorkflowApiError,
    WorkflowProviderError,
    error_class_for_status,
)
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, RetryPolicy, Timeouts, parse_retry_after
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.ratelimit import RateBudget, RateLimit, budget_for, rate_limit_from_extra
from airflow_workflow_provider.core.security import REDACTED, Redactor, TransportPolicy, require_credential
from airflow_workflow_provider.core.states import ExecutionState, StatusMap
from airflow_workflow_provider.core.validation import (
    require_api_path,
    require_base_url,
    require_id,
    require_int_in_range,
    require_json_serializable,
    require_method,
    require_positive_number,
)

log = logging.getLogger(__name__)

# An auth flow yields the requests to send and receives each answer; it returns the answer to
# the caller's request. Static-header vendors yield once; SailPoint fetches and refreshes a token.
AuthFlow = Generator[ApiRequest, ApiResponse, ApiResponse]
# Whatever follows "Bearer " is a credential, known to us or not (a token echoed by a proxy).
BEARER_VALUE = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*")
T = TypeVar("T")
# What a parser meets in an answer of the wrong shape: a status that is an object (unhashable), a
# list where a time belongs (pydantic), epoch 1e300 (overflow), a missing key, deep nesting.
MALFORMED_ANSWER_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    pydantic.ValidationError,
)


@dataclass(frozen=True)
class ClientSettings:
    """Connection extras every vendor understands."""

    base_url: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: The connection extra's ``rate_limit_requests`` / ``rate_limit_period`` (e.g. a quota the vendor
    #: raised for this credential), as given; either may be missing.
    rate_limit: Mapping[str, Any] = field(default_factory=dict)
    transport: TransportPolicy = field(default_factory=TransportPolicy)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> ClientSettings:
        base_url = extra.get("base_url") or None
        defaults_t, defaults_r = Timeouts(), RetryPolicy()
        timeouts = Timeouts(
            connect=_number(extra, "connect_timeout", defaults_t.connect),
            read=_number(extra, "read_timeout", defaults_t.read),
        )
        retry_policy = RetryPolicy(
            max_attempts=_attempts(extra.get("max_attempts", defaults_r.max_attempts)),
            max_elapsed=_number(extra, "max_retry_seconds", defaults_r.max_elapsed),
            initial_backoff=_number(extra, "retry_initial_backoff", defaults_r.initial_backoff),
            max_backoff=_number(extra, "retry_max_backoff", defaults_r.max_backoff),
        )
        rate_limit = {k: extra[k] for k in ("rate_limit_requests", "rate_limit_period") if k in extra}
        rate_limit_from_extra(rate_limit, RateLimit(1, 1.0))  # refuses a bad value now, before any request
        return cls(
            base_url=require_base_url("extra.base_url", str(base_url)) if base_url else None,
            timeouts=timeouts,
            retry_policy=retry_policy,
            rate_limit=rate_limit,
            transport=TransportPolicy.from_extra(extra),
        )


def _number(extra: Mapping[str, Any], key: str, default: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    result = require_positive_number(f"extra.{key}", value)
    assert result is not None
    return result


def _attempts(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return require_int_in_range("extra.max_attempts", value, 1, 20)


class VendorApi(ABC):
    """One vendor's API, as pure functions of requests and answers."""

    vendor: ClassVar[str]
    status_map: ClassVar[StatusMap]
    #: What the vendor documents for one credential; the rate budget starts there.
    documented_limit: ClassVar[RateLimit]

    def __init__(self, *, base_url: str, settings: ClientSettings, secrets: Iterable[str]) -> None:
        self.base_url = base_url
        self.settings = settings
        self._secrets = tuple(s for s in secrets if s)
        self._masked: set[str] = set()
        self._redactor: tuple[tuple[str, ...], Redactor] = ((), Redactor())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- credentials ---------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential this client holds, for the secrets masker and the redactor."""
        return self._secrets

    @property
    def rate_budget(self) -> RateBudget:
        """The rate budget of this credential at this API, shared by every hook and trigger of the process."""
        limit = rate_limit_from_extra(self.settings.rate_limit, self.documented_limit)
        return budget_for(self.vendor, self.base_url, self._secrets, limit)

    def secrets_to_mask(self) -> list[str]:
        """The connection's credentials not yet handed to Airflow's secrets masker.

        Only what the connection holds, which lives as long as the process: short-lived tokens
        (SailPoint's) stay with :meth:`redact`, or the masker would grow with every token lifetime.
        """
        fresh = [secret for secret in self._secrets if secret not in self._masked]
        self._masked.update(fresh)
        return fresh

    def redact(self, text: str) -> str:
        """``text`` with every credential, and its URL-encoded and escaped forms, replaced by ``***``.

        Whatever follows "Bearer " goes too, known to us or not (a token echoed by a proxy).
        """
        secrets = self.secrets
        if self._redactor[0] != secrets:  # a SailPoint token was fetched since
            self._redactor = (secrets, Redactor(secrets))
        return BEARER_VALUE.sub(rf"\1{REDACTED}", self._redactor[1](text))

    def auth_headers(self) -> dict[str, str]:
        return {}

    def auth_flow(self, request: ApiRequest) -> AuthFlow:
        response = yield request.with_headers(self.auth_headers())
        return response

    # -- the calls every vendor offers -------------------------------------------------------------

    @abstractmethod
    def start_request(self, workflow: str, payload: Mapping[str, Any] | None, **options: Any) -> ApiRequest: ...

    @abstractmethod
    def parse_start(self, request: ApiRequest, response: ApiResponse) -> str: ...

    @abstractmethod
    def get_request(self, workflow: str, execution_id: str) -> ApiRequest: ...

    @abstractmethod
    def parse_execution(self, request: ApiRequest, response: ApiResponse) -> WorkflowExecution: ...

    @abstractmethod
    def cancel_request(self, workflow: str, execution_id: str) -> ApiRequest: ...

    @abstractmethod
    def list_request(self, workflow: str, page: Any, filters: Mapping[str, Any]) -> ApiRequest:
        """The request for one page; ``page`` is None for the first, else what ``parse_list`` returned."""

    @abstractmethod
    def parse_list(self, request: ApiRequest, response: ApiResponse) -> Page: ...

    @abstractmethod
    def check_request(self) -> ApiRequest:
        """The cheapest authenticated call, for ``test_connection``."""

    @abstractmethod
    def execution_url(self, workflow: str, execution_id: str) -> str:
        """Where a person sees the execution in the vendor's UI."""

    #: Whether a list item says all a GET would (output, error): then the poller needs no GET for an
    #: execution a list showed ended.
    list_items_are_complete: ClassVar[bool] = False

    def status_listing(self, vendor_status: str | None) -> dict[str, Any] | None:
        """List filters that find executions in ``vendor_status`` (None: just started), for the coalesced poller.

        The poller learns many statuses per request this way. Executions whose status is unknown are
        the newest, found at the top of an unfiltered list (every vendor lists newest first). None:
        the list cannot tell (the poller then asks each execution's GET).
        """
        return None

    def failure_detail_request(self, execution: WorkflowExecution) -> ApiRequest | None:
        """A further call that tells why ``execution`` failed, for vendors whose status alone does not."""
        return None

    def parse_failure_detail(
        self, request: ApiRequest, response: ApiResponse, execution: WorkflowExecution
    ) -> WorkflowExecution:
        return execution

    # Whether a 404 from ``check_request`` still proves the credentials (the check names a made-up id).
    check_target_may_be_missing: ClassVar[bool] = False

    def forbidden_check_request(self) -> ApiRequest | None:
        """After a 403 from ``check_request``: a call that tells a rejected key from a missing permission.

        None where the vendor's 403 already means "authenticated, but not allowed".
        """
        return None

    def explain_forbidden(self, error: WorkflowApiError, key_accepted: bool | None) -> str:
        """The Test button's verdict on a 403; ``key_accepted`` is what ``forbidden_check_request`` found."""
        return f"{self.vendor} accepted the request but a permission is missing: {error}"

    def check_execution_id(self, value: Any) -> str:
        """An id that addresses an existing execution, checked before it goes into a URL path."""
        return require_id("execution_id", value)

    # -- errors ------------------------------------------------------------------------------------

    @abstractmethod
    def error_details(self, response: ApiResponse) -> ErrorDetails:
        """Read the vendor's error envelope."""

    def is_error(self, request: ApiRequest, response: ApiResponse) -> bool:
        return not response.ok

    def retry_after(self, response: ApiResponse) -> float | None:
        return parse_retry_after(response.header("Retry-After"))

    def error_for(self, request: ApiRequest, response: ApiResponse) -> WorkflowApiError:
        try:
            details = self.error_details(response)
        except WorkflowApiError:
            details = ErrorDetails(message="the error answer is not valid JSON")
        exc_class = error_class_for_status(response.status)
        return exc_class(
            vendor=self.vendor,
            operation=request.operation,
            status_code=response.status,
            # A vendor, or a proxy in between, may echo a credential in any field of its error.
            code=self._redact_optional(details.code),
            message=self.redact(details.message or "no reason given"),
            tracking_id=self._redact_optional(details.tracking_id),
            retry_after=self.retry_after(response) if response.status == 429 else None,
        )

    def _redact_optional(self, value: Any) -> str | None:
        return None if value is None else self.redact(str(value))

    def raise_for_error(self, request: ApiRequest, response: ApiResponse) -> None:
        if self.is_error(request, response):
            raise self.error_for(request, response)

    def read_answer(
        self, request: ApiRequest, response: ApiResponse, parse: Callable[[ApiRequest, ApiResponse], T]
    ) -> T:
        """Judge the answer (error or not) and parse it; an answer of the wrong shape is an ``InvalidResponseError``.

        Whatever a hostile or broken answer makes a parser trip on (see ``MALFORMED_ANSWER_ERRORS``)
        ends as our own error type, so that callers that catch ours (triggers) never crash.
        """
        try:
            self.raise_for_error(request, response)
            return parse(request, response)
        except WorkflowProviderError:
            raise
        except MALFORMED_ANSWER_ERRORS as exc:
            error = InvalidResponseError(
                vendor=self.vendor,
                operation=request.operation,
                status_code=response.status,
                message=f"the answer does not have the documented shape ({type(exc).__name__})",
            )
        raise error

    # -- helpers for vendor modules --------------------------------------------------------------

    def request(self, operation: str, method: str, path: str, **kwargs: Any) -> ApiRequest:
        return ApiRequest(operation=operation, method=method, path=path, **kwargs)

    def endpoint_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> ApiRequest:
        """A call to any endpoint of the vendor's API that has no method of its own (``call_api``).

        ``path`` is relative to the API host (the connection's base URL). Whether a failed call may be
        resent follows the HTTP method unless ``idempotent`` says otherwise: ``POST`` and ``PATCH`` are
        resent only when they provably never reached the vendor, as an execution start is.
        """
        verb = require_method("method", method)
        checked_path = require_api_path("path", path)
        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        query = [(str(key), _query_value(value)) for key, value in pairs]
        if json_body is not None:
            require_json_serializable("json", json_body)
        return self.request(
            f"{verb} {checked_path}",
            verb,
            checked_path,
            params=query,
            json_body=json_body,
            idempotent=verb not in ("POST", "PATCH") if idempotent is None else idempotent,
        )

    def execution(self, **fields: Any) -> WorkflowExecution:
        """Build a :class:`WorkflowExecution`, mapping ``vendor_status`` through the status map."""
        vendor_status = fields.get("vendor_status")
        fields.setdefault("state", self.status_map.normalize(vendor_status))
        fields.setdefault("url", self.execution_url(fields["workflow"], fields["id"]))
        if fields["state"] is ExecutionState.UNKNOWN and fields.get("ended_at"):
            # An end time says the execution is over, whatever the unreadable status says: waiting for a
            # status this provider may never learn would be endless. Failure is the safe reading.
            note = (
                f"{self.vendor} reported an end time but the status {vendor_status!r}, which this provider "
                f"cannot read as success or failure; treated as failed"
            )
            log.warning("execution %s: %s", fields["id"], note)
            fields.update(state=ExecutionState.FAILED, state_note=note)
        return WorkflowExecution(vendor=self.vendor, **fields)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def object_at(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The JSON object a vendor put under ``key``, or an empty one when it sent none (or something else)."""
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


def require_secret(field: str, value: str | None, what: str) -> str:
    """A credential from the connection, stripped of surrounding whitespace (see ``require_credential``)."""
    return require_credential(field, value, what)


def require_mapping(response: ApiResponse, body: Any, what: str) -> dict[str, Any]:
    """A JSON object where the vendor documents one, else a typed error rather than a KeyError later."""
    if not isinstance(body, dict):
        raise InvalidResponseError(
            vendor=response.vendor,
            operation=response.operation,
            status_code=response.status,
            message=f"expected {what} as a JSON object, got {type(body).__name__}",
        )
    return body
