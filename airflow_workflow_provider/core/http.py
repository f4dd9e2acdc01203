"""Requests, responses, the retry policy, and the two send steps (requests for sync, aiohttp for async).

This is the only module that does network I/O. Everything a vendor needs to say about a call
(path, query, body, how to read the answer) is an :class:`ApiRequest` built without I/O; the
sync and async senders below turn it into bytes on the wire and back into an :class:`ApiResponse`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pendulum
import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_workflow_provider.core.errors import (
    InvalidResponseError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    WorkflowInputError,
    WorkflowTransportError,
)
from airflow_workflow_provider.core.ratelimit import RateBudget, RateLimit
from airflow_workflow_provider.core.security import READ_CHUNK, REDACTED, TransportPolicy
from airflow_workflow_provider.core.validation import shown_url

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

USER_AGENT = "airflow-workflow-provider"
RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class ApiRequest:
    """One vendor call, described without doing it.

    ``idempotent`` says whether sending it twice is harmless. A call that starts an execution
    is not: it is resent only when it provably never reached the server.
    ``context`` carries what the response parser needs to know about the request (page number...).
    """

    operation: str
    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    json_body: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True
    context: Mapping[str, Any] = field(default_factory=dict)

    def with_headers(self, headers: Mapping[str, str]) -> ApiRequest:
        return replace(self, headers={**self.headers, **headers})

    def __repr__(self) -> str:
        # Error trackers (Sentry) print stack-frame variables with repr(): header and form values
        # are credentials (API keys, a Bearer token, an OAuth client secret), the body is the payload.
        return (
            f"ApiRequest(operation={self.operation!r}, method={self.method!r}, path={self.path!r}, "
            f"params={list(self.params)!r}, headers={dict.fromkeys(self.headers, REDACTED)!r}, "
            f"form={dict.fromkeys(self.form, REDACTED) if self.form is not None else None!r}, "
            f"json_body={'<' + type(self.json_body).__name__ + '>' if self.json_body is not None else None}, "
            f"idempotent={self.idempotent!r})"
        )


@dataclass(frozen=True)
class ApiResponse:
    """A vendor's answer: status, headers (lower-cased names) and body."""

    vendor: str
    operation: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        # The body may hold an OAuth token (SailPoint's token answer): only its size is shown.
        return (
            f"ApiResponse(vendor={self.vendor!r}, operation={self.operation!r}, status={self.status!r}, "
            f"body=<{len(self.body)} bytes>)"
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at position {exc.pos}"
        except UnicodeDecodeError:  # bytes that are not text
            problem = "not UTF-8 text"
        except ValueError:  # e.g. a number with more digits than Python converts
            problem = "a value Python cannot read, such as a number with thousands of digits"
        except RecursionError:
            problem = "nested too deeply"
        raise InvalidResponseError(
            vendor=self.vendor,
            operation=self.operation,
            status_code=self.status,
            message=f"the answer is not valid JSON ({problem})",
        )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (pendulum.instance(when) - pendulum.now("UTC")).total_seconds())


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry, for both the sync and the async stack.

    Retries 429 (waiting what the vendor asked for), 500/502/503/504, connection failures and
    timeouts, and unreadable answers, with exponential backoff and jitter, bounded in attempts
    and in total time. A request that is not idempotent (starting an execution) is retried only
    when it provably did not reach the server: the connection could not be opened, or the
    vendor's rate limiter turned it away with 429.

    A *patient* call (checking on an execution while waiting for it) is never failed by
    throttling: its 429s are waited out and counted neither as attempts nor as elapsed time, so
    only errors that retrying cannot fix (or the wait's own timeout) end a wait.
    """

    max_attempts: int = 5
    max_elapsed: float = 300.0
    initial_backoff: float = 1.0
    max_backoff: float = 60.0

    def is_retryable(self, exc: BaseException, request: ApiRequest) -> bool:
        if isinstance(exc, ResponseTooLargeError):
            return False  # the same answer would be read again, up to the limit, for nothing
        if isinstance(exc, RateLimitedError):
            return True
        if isinstance(exc, WorkflowTransportError):
            return request.idempotent or not exc.request_sent
        if isinstance(exc, ServerError):
            return request.idempotent and exc.status_code in RETRYABLE_SERVER_STATUSES
        if isinstance(exc, InvalidResponseError):
            return request.idempotent
        return False

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            # At least what the vendor asked, plus a little jitter: clients throttled together must not
            # all come back in the same instant and be throttled together again.
            return min(float(asked) + random.uniform(0, min(1.0, 0.1 + float(asked) / 10)), self.max_elapsed)
        backoff = tenacity.wait_exponential_jitter(initial=self.initial_backoff, max=self.max_backoff)
        return backoff(retry_state)

    def _stop(self, patient: bool) -> Any:
        bounded = tenacity.stop_after_attempt(self.max_attempts) | tenacity.stop_before_delay(self.max_elapsed)
        if not patient:
            return bounded
        failures = 0
        since: float | None = None  # start of the stretch since the last 429 (None: the call's start)

        def stop(retry_state: tenacity.RetryCallState) -> bool:
            nonlocal failures, since
            outcome = retry_state.outcome
            if outcome is not None and isinstance(outcome.exception(), RateLimitedError):
                since = time.monotonic()  # throttling is waited out: neither an attempt nor elapsed time
                return False
            failures += 1
            elapsed = time.monotonic() - (retry_state.start_time if since is None else since)
            return failures >= self.max_attempts or elapsed >= self.max_elapsed

        return stop

    def _arguments(self, request: ApiRequest, vendor: str, patient: bool = False) -> dict[str, Any]:
        def log_retry(retry_state: tenacity.RetryCallState) -> None:
            outcome = retry_state.outcome
            if patient and outcome is not None and isinstance(outcome.exception(), RateLimitedError):
                # The rate budget told the log once; a wait slowed by throttling is not news each time.
                log.debug("%s; waiting %.1f s", outcome.exception(), retry_state.upcoming_sleep)
                return
            log.warning(
                "%s; retrying in %.1f s (attempt %d of %d)",
                outcome.exception() if outcome is not None else f"{vendor} {request.operation} failed",
                retry_state.upcoming_sleep,
                retry_state.attempt_number + 1,
                self.max_attempts,
            )

        return {
            "retry": tenacity.retry_if_exception(lambda exc: self.is_retryable(exc, request)),
            "stop": self._stop(patient),
            "wait": self._wait,
            "before_sleep": log_retry,
            "reraise": True,
        }

    def retrying(self, request: ApiRequest, vendor: str, *, patient: bool = False) -> tenacity.Retrying:
        return tenacity.Retrying(**self._arguments(request, vendor, patient))

    def async_retrying(self, request: ApiRequest, vendor: str, *, patient: bool = False) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self._arguments(request, vendor, patient))


def _header_number(response: ApiResponse, name: str) -> float | None:
    value = response.header(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def report_to_budget(budget: RateBudget | None, response: ApiResponse) -> None:
    """Tell the credential's rate budget what this answer says about the vendor's limit.

    ``Retry-After`` on a 429, else ``X-RateLimit-Reset`` (Datadog's clients wait that); on other
    answers ``X-RateLimit-Remaining`` / ``-Reset`` / ``-Limit`` / ``-Period`` where the vendor sends them.
    """
    if budget is None:
        return
    if response.status == 429:
        retry_after = parse_retry_after(response.header("Retry-After"))
        if retry_after is None:
            retry_after = _header_number(response, "X-RateLimit-Reset")
        budget.throttled_answer(retry_after)
        return
    remaining = _header_number(response, "X-RateLimit-Remaining")
    reset = _header_number(response, "X-RateLimit-Reset")
    limit, period = _header_number(response, "X-RateLimit-Limit"), _header_number(response, "X-RateLimit-Period")
    budget.answered(
        None if remaining is None else int(remaining),
        reset,
        RateLimit(int(limit), period) if limit and period else None,
    )


class SingleFlight:
    """Callers of one process asking the same thing at once share one request and its answer.

    Keyed by ``ApiRequest.context["single_flight"]`` (SailPoint's token request: a triggerer starting
    hundreds of triggers at once must not fetch hundreds of tokens). Works across threads (sync
    stack) and coroutines (async stack), as each caller waits on one ``concurrent.futures.Future``.
    A successful answer is also handed to callers arriving with the same key after it landed (the
    key says what they had seen, e.g. the token cache's generation); it is forgotten ``keep_for``
    seconds later.
    """

    def __init__(self, keep_for: float = 60.0) -> None:
        self.keep_for = keep_for
        self._lock = threading.Lock()
        # key -> (the call, when it succeeded or None while in flight)
        self._calls: dict[Any, tuple[concurrent.futures.Future[ApiResponse], float | None]] = {}

    def _join(self, key: Any) -> tuple[concurrent.futures.Future[ApiResponse], bool]:
        """The call to wait for, and whether this caller must make it."""
        now = time.monotonic()
        with self._lock:
            for old in [
                k for k, (_, ended) in self._calls.items() if ended is not None and now - ended > self.keep_for
            ]:
                del self._calls[old]
            if key in self._calls:
                return self._calls[key][0], False
            future: concurrent.futures.Future[ApiResponse] = concurrent.futures.Future()
            self._calls[key] = (future, None)
            return future, True

    def _settle(self, key: Any, future: concurrent.futures.Future[ApiResponse], outcome: Any) -> None:
        with self._lock:
            if isinstance(outcome, BaseException):
                del self._calls[key]  # a failure is not handed to later callers: they try afresh
            else:
                self._calls[key] = (future, time.monotonic())
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def call(self, key: Any, send: Callable[[], ApiResponse]) -> ApiResponse:
        future, leader = self._join(key)
        if not leader:
            return future.result()
        try:
            response = send()
        except BaseException as exc:
            self._settle(key, future, exc)
            raise
        self._settle(key, future, response)
        return response

    async def acall(self, key: Any, send: Callable[[], Awaitable[ApiResponse]]) -> ApiResponse:
        future, leader = self._join(key)
        if not leader:
            return await asyncio.wrap_future(future)
        try:
            response = await send()
        except BaseException as exc:
            self._settle(key, future, exc)
            raise
        self._settle(key, future, response)
        return response


SINGLE_FLIGHT = SingleFlight()


def _request_url(base_url: str, request: ApiRequest) -> str:
    url = base_url + request.path
    _require_same_host(base_url, url)
    return url


def _request_arguments(base_url: str, request: ApiRequest) -> dict[str, Any]:
    """What both HTTP stacks take alike, so the sync and async sends cannot drift apart.

    Passed straight into the call, never kept in a variable: error trackers record the local
    variables of every frame, and this dict holds the credentials in clear.
    """
    return {
        "method": request.method,
        "url": _request_url(base_url, request),
        "params": list(request.params) or None,
        "json": request.json_body,
        "data": request.form,
        "headers": dict(request.headers),
        "allow_redirects": False,
    }


def _require_same_host(base_url: str, url: str) -> None:
    """The request goes to the host the connection names, and carries no ``user@`` part.

    Credentials are attached for that host alone: a URL whose final host differs (a crafted tenant
    or path) or that carries userinfo (which makes HTTP libraries send Basic auth instead) is refused.
    """
    base, final = urlsplit(base_url), urlsplit(url)
    if "@" in final.netloc or final.hostname != base.hostname or final.port != base.port or not final.hostname:
        raise WorkflowInputError(
            "base_url", f"the request URL must stay on the API host, got {shown_url(url)!r} for {shown_url(base_url)!r}"
        )


class _CappedBody:
    """An answer's body, collected chunk by chunk (decompressed) by either stack, refused past the policy's limit.

    A declared ``Content-Length`` beyond the limit is refused before any byte is read.
    """

    def __init__(
        self, vendor: str, request: ApiRequest, status: int, headers: Mapping[str, str], policy: TransportPolicy
    ) -> None:
        self.error = ResponseTooLargeError(
            vendor=vendor,
            operation=request.operation,
            status_code=status,
            message=(
                f"the answer is larger than {policy.max_response_mb:g} MB and was not read further "
                "(raise the connection extra max_response_mb if the vendor really sends that much)"
            ),
        )
        self.limit = policy.max_response_bytes
        self.data = bytearray()
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise self.error

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            raise self.error


def _refused_before_sending(request: ApiRequest) -> WorkflowInputError:
    """An HTTP library refused to build the request (a header or URL it cannot send).

    Its own message would quote the offending value, which may be a credential: not repeated here.
    """
    return WorkflowInputError(
        f"{request.operation} request",
        "the HTTP library refused a header or the URL as invalid (check the connection's host and credentials "
        "for spaces, line breaks or other characters that do not belong there)",
    )


def _raise_unchained(error: Exception) -> NoReturn:
    """Raise ``error`` with no cause or context: library exceptions and their frames hold the request's headers."""
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    raise error


def _transport_error(
    vendor: str, request: ApiRequest, exc: BaseException, *, never_sent: bool, timed_out: bool, read_timeout: float
) -> WorkflowTransportError:
    if never_sent:
        cause = "could not connect to the API host (unreachable, refused or timed out)"
    elif timed_out:
        cause = f"no answer within the read timeout of {read_timeout:g} s"
    else:
        cause = f"the connection failed before an answer arrived ({type(exc).__name__})"
    return WorkflowTransportError(
        vendor=vendor, operation=request.operation, message=cause, request_sent=not never_sent
    )


class SyncSender:
    """Sends requests over one pooled :class:`requests.Session`."""

    def __init__(self, vendor: str, timeouts: Timeouts, policy: TransportPolicy | None = None) -> None:
        self.vendor = vendor
        self.timeouts = timeouts
        self.policy = policy or TransportPolicy()
        self.session = requests.Session()
        # No .netrc, no environment proxies behind our back: the TransportPolicy decides proxies for
        # both stacks alike, and a .netrc entry must never replace the credentials we send.
        self.session.trust_env = False
        # Retries belong to the RetryPolicy, which knows which calls may be resent; urllib3 must not resend.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    def send(self, base_url: str, request: ApiRequest, budget: RateBudget | None = None) -> ApiResponse:
        key = request.context.get("single_flight")
        if key is not None:
            return SINGLE_FLIGHT.call(key, lambda: self._budgeted_send(base_url, request, budget))
        return self._budgeted_send(base_url, request, budget)

    def _budgeted_send(self, base_url: str, request: ApiRequest, budget: RateBudget | None) -> ApiResponse:
        if budget is not None:
            budget.wait_turn()
        response = self._send(base_url, request)
        report_to_budget(budget, response)
        return response

    def _send(self, base_url: str, request: ApiRequest) -> ApiResponse:
        proxy = self.policy.proxy_for(_request_url(base_url, request))
        error: Exception
        try:
            with self.session.request(
                **_request_arguments(base_url, request),
                timeout=(self.timeouts.connect, self.timeouts.read),
                stream=True,
                proxies={"http": proxy, "https": proxy} if proxy else {},
                verify=_ca_bundle(),
            ) as answer:
                headers = {k.lower(): v for k, v in answer.headers.items()}
                return ApiResponse(
                    vendor=self.vendor,
                    operation=request.operation,
                    status=answer.status_code,
                    headers=headers,
                    body=self._read(request, answer, headers),
                )
        except requests.exceptions.ContentDecodingError:
            error = InvalidResponseError(
                vendor=self.vendor,
                operation=request.operation,
                message="the answer's compressed body could not be decompressed",
            )
        except requests.RequestException as exc:
            error = _refused_before_sending(request) if _refused_request(exc) else self._transport_error(request, exc)
        except ValueError:
            # http.client refuses a header value holding a line break with a ValueError that quotes it.
            error = _refused_before_sending(request)
        _raise_unchained(error)

    def _read(self, request: ApiRequest, answer: requests.Response, headers: Mapping[str, str]) -> bytes:
        """The body, decompressed, stopping as soon as it exceeds the policy's limit."""
        body = _CappedBody(self.vendor, request, answer.status_code, headers, self.policy)
        for chunk in answer.iter_content(READ_CHUNK):
            body.add(chunk)
        return bytes(body.data)

    def _transport_error(self, request: ApiRequest, exc: requests.RequestException) -> WorkflowTransportError:
        never_sent = isinstance(exc, requests.ConnectTimeout) or _is_connect_failure(exc)
        return _transport_error(
            self.vendor,
            request,
            exc,
            never_sent=never_sent,
            timed_out=isinstance(exc, requests.Timeout),
            read_timeout=self.timeouts.read,
        )


def _refused_request(exc: BaseException) -> bool:
    """Whether requests refused to build the request (not a network failure)."""
    return isinstance(
        exc, (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)
    )


def _ca_bundle() -> str | bool:
    """requests' own CA bundle variables, still honoured although the session no longer trusts the environment."""
    import os

    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def _is_connect_failure(exc: BaseException) -> bool:
    """Whether urllib3 failed while opening the connection, i.e. before any byte was sent."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectTimeoutError, NameResolutionError)):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return False


# One aiohttp session per event loop: triggers running in one triggerer share its connection
# pool instead of opening a session (and TCP connections) per poll. Triggers hold a lease while
# they run; the last one out closes the session, so a loop that ends leaves nothing open.
@dataclass
class _LoopSession:
    session: aiohttp.ClientSession
    leases: int = 0


_ASYNC_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = weakref.WeakKeyDictionary()
CONNECTIONS_PER_HOST = 20


def _loop_session() -> _LoopSession:
    import aiohttp

    loop = asyncio.get_running_loop()
    entry = _ASYNC_SESSIONS.get(loop)
    if entry is None or entry.session.closed:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=CONNECTIONS_PER_HOST)
        # trust_env stays off: no .netrc and no environment proxies; the TransportPolicy passes the proxy.
        session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}, trust_env=False)
        entry = _LoopSession(session)
        _ASYNC_SESSIONS[loop] = entry
    return entry


def shared_async_session() -> aiohttp.ClientSession:
    return _loop_session().session


@contextlib.asynccontextmanager
async def async_session_lease() -> AsyncIterator[None]:
    """Keep this loop's shared session open while the block runs; close it when the last lease ends."""
    entry = _loop_session()
    entry.leases += 1
    try:
        yield
    finally:
        entry.leases -= 1
        if entry.leases == 0:
            await close_shared_async_session()


async def close_shared_async_session() -> None:
    """Close this event loop's shared session (tests and short-lived loops call this at the end)."""
    entry = _ASYNC_SESSIONS.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry.session.close()


class AsyncSender:
    """The async twin of :class:`SyncSender`, on the event loop's shared aiohttp session."""

    def __init__(self, vendor: str, timeouts: Timeouts, policy: TransportPolicy | None = None) -> None:
        self.vendor = vendor
        self.timeouts = timeouts
        self.policy = policy or TransportPolicy()

    async def send(self, base_url: str, request: ApiRequest, budget: RateBudget | None = None) -> ApiResponse:
        key = request.context.get("single_flight")
        if key is not None:
            return await SINGLE_FLIGHT.acall(key, lambda: self._budgeted_send(base_url, request, budget))
        return await self._budgeted_send(base_url, request, budget)

    async def _budgeted_send(self, base_url: str, request: ApiRequest, budget: RateBudget | None) -> ApiResponse:
        if budget is not None:
            await budget.await_turn()
        response = await self._send(base_url, request)
        report_to_budget(budget, response)
        return response

    async def _send(self, base_url: str, request: ApiRequest) -> ApiResponse:
        import aiohttp

        proxy = self.policy.proxy_for(_request_url(base_url, request))
        timeout = aiohttp.ClientTimeout(sock_connect=self.timeouts.connect, sock_read=self.timeouts.read)
        session = shared_async_session()
        error: Exception
        try:
            async with session.request(**_request_arguments(base_url, request), timeout=timeout, proxy=proxy) as answer:
                headers = {k.lower(): v for k, v in answer.headers.items()}
                return ApiResponse(
                    vendor=self.vendor,
                    operation=request.operation,
                    status=answer.status,
                    headers=headers,
                    body=await self._read(request, answer, headers),
                )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = self._transport_error(request, exc)
        except ValueError:
            # aiohttp refuses a header holding a line break with a bare ValueError that quotes it.
            error = _refused_before_sending(request)
        _raise_unchained(error)

    async def _read(self, request: ApiRequest, answer: aiohttp.ClientResponse, headers: Mapping[str, str]) -> bytes:
        body = _CappedBody(self.vendor, request, answer.status, headers, self.policy)
        async for chunk in answer.content.iter_chunked(READ_CHUNK):
            body.add(chunk)
        return bytes(body.data)

    def _transport_error(self, request: ApiRequest, exc: BaseException) -> WorkflowTransportError:
        import aiohttp

        return _transport_error(
            self.vendor,
            request,
            exc,
            never_sent=isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)),
            timed_out=isinstance(exc, asyncio.TimeoutError),
            read_timeout=self.timeouts.read,
        )
