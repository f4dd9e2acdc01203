"""The provider's exception tree.

::

    WorkflowProviderError
    ├── WorkflowInputError            bad input or connection settings, raised before any request
    └── WorkflowApiError              a vendor call failed; carries vendor, operation, status, code, tracking id
        ├── WorkflowTransportError    no usable answer: unreachable host, reset connection, timeout
        ├── InvalidResponseError      an answer that is not the JSON the vendor documents
        │   └── ResponseTooLargeError an answer beyond the connection's max_response_mb (never retried)
        ├── BadRequestError           400, 422
        │   └── ConflictError         409, or an action that does not fit the execution's state
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403 (Datadog answers it for a bad API key too)
        ├── NotFoundError             404 (also SailPoint executions archived after 90 days)
        ├── RateLimitedError          429, with the wait the vendor asked for
        └── ServerError               5xx

Messages never contain a credential: they are built from the vendor's error envelope, the
operation name and the HTTP status, and the hook passes them through its redactor.
"""

from __future__ import annotations

from dataclasses import dataclass


class WorkflowProviderError(Exception):
    """Base of every error this provider raises on purpose."""


class WorkflowInputError(WorkflowProviderError, ValueError):
    """A value given to the provider is not allowed; names the field and what is allowed."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class ErrorDetails:
    """What a vendor's error envelope says, whatever its shape."""

    message: str
    code: str | None = None
    tracking_id: str | None = None


class WorkflowApiError(WorkflowProviderError):
    """A call to a vendor API failed."""

    def __init__(
        self,
        *,
        vendor: str,
        operation: str,
        message: str,
        status_code: int | None = None,
        code: str | None = None,
        tracking_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.vendor = vendor
        self.operation = operation
        self.status_code = status_code
        self.code = code
        self.message = message
        self.tracking_id = tracking_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.vendor} {self.operation} failed:"]
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.code:
            parts.append(f"[{self.code}]")
        parts.append(self.message)
        if self.tracking_id:
            parts.append(f"(tracking id {self.tracking_id})")
        return " ".join(parts)


class WorkflowTransportError(WorkflowApiError):
    """No answer could be had: the host is unreachable, the connection reset, or it timed out.

    ``request_sent`` is False only when the request provably never reached the server
    (the connection could not even be opened); only then may an execution start be retried.
    """

    def __init__(self, *, request_sent: bool, **kwargs: object) -> None:
        self.request_sent = request_sent
        super().__init__(**kwargs)  # type: ignore[arg-type]


class InvalidResponseError(WorkflowApiError):
    """The vendor answered with something that is not the documented JSON."""


class ResponseTooLargeError(InvalidResponseError):
    """The answer was larger than the connection allows (``max_response_mb``); reading stopped at the limit."""


class BadRequestError(WorkflowApiError):
    """The vendor refused the request as invalid (400, 422)."""


class ConflictError(BadRequestError):
    """The request does not fit the current state (409), e.g. an id that already exists."""


class AuthenticationError(WorkflowApiError):
    """The credentials were refused (401)."""


class PermissionDeniedError(WorkflowApiError):
    """A 403: usually valid credentials that lack a permission; for Datadog also a wrong API key."""


class NotFoundError(WorkflowApiError):
    """The workflow or execution does not exist (404), or was archived."""


class RateLimitedError(WorkflowApiError):
    """The vendor's rate limit was hit (429); ``retry_after`` is the wait it asked for."""


class ServerError(WorkflowApiError):
    """The vendor failed (5xx)."""


_ERROR_BY_STATUS: dict[int, type[WorkflowApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitedError,
}


def error_class_for_status(status_code: int) -> type[WorkflowApiError]:
    if status_code in _ERROR_BY_STATUS:
        return _ERROR_BY_STATUS[status_code]
    if status_code >= 500:
        return ServerError
    if status_code >= 400:
        return BadRequestError
    return WorkflowApiError


class WorkflowExecutionFailed(WorkflowProviderError):
    """A workflow execution ended failed or canceled; the message carries the vendor's reason."""

    def __init__(self, message: str, execution: dict | None = None) -> None:
        self.execution = execution
        super().__init__(message)


class WorkflowWaitTimeout(WorkflowProviderError):
    """The wait for an execution ran out of time (the execution was canceled if so configured)."""
