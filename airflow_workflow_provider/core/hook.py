"""The hook core: one Airflow hook class that drives any :class:`VendorApi`, sync or async."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_workflow_provider.connection_forms import ConnectionForm, plain_extra
from airflow_workflow_provider.core.api import AuthFlow, VendorApi
from airflow_workflow_provider.core.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    WorkflowApiError,
    WorkflowInputError,
    WorkflowTransportError,
)
from airflow_workflow_provider.core.http import ApiRequest, ApiResponse, AsyncSender, RetryPolicy, SyncSender
from airflow_workflow_provider.core.models import Page, WorkflowExecution
from airflow_workflow_provider.core.states import ExecutionState
from airflow_workflow_provider.core.validation import require_id, require_json_object

T = TypeVar("T")
Parser = Callable[[ApiRequest, ApiResponse], T]
#: The vendor's :class:`VendorApi` subclass, so that ``hook.api`` has the vendor's own calls for type checkers.
ApiT = TypeVar("ApiT", bound=VendorApi)


class BaseWorkflowsHook(BaseHook, Generic[ApiT]):
    """Start, follow, cancel and list executions of one vendor's workflows.

    Subclasses name their connection type and their :class:`VendorApi`, and build that API
    from an Airflow connection; everything that talks to the network lives here, once.
    """

    #: The vendor-named constructor argument holding the connection id (``datadog_conn_id`` ...), as
    #: Airflow's convention wants: a generic ``conn_id`` in ``default_args`` must not reach every vendor.
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    connection_form: ClassVar[ConnectionForm]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        form = cls.__dict__.get("connection_form")
        if form is None:
            return
        cls.conn_type = form.conn_type
        cls.hook_name = form.hook_name
        # Airflow 3.0/3.1 read the form only from methods defined on the hook class itself
        # (``"get_connection_form_widgets" in hook_class.__dict__``), so each vendor hook gets its own.
        cls.get_connection_form_widgets = classmethod(lambda c: form.widgets())  # type: ignore[method-assign,assignment]
        cls.get_ui_field_behaviour = classmethod(lambda c: form.behaviour())  # type: ignore[method-assign,assignment]

    def __init__(self, connection_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Stored under the vendor's name too, where Airflow (and users) look for it.
        setattr(self, self.conn_name_attr, connection_id or self.default_conn_name)
        self._async_api: ApiT | None = None

    @property
    def connection_id(self) -> str:
        """The Airflow connection id, whatever the vendor calls the argument."""
        return str(getattr(self, self.conn_name_attr))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.connection_id!r})"

    # -- building the API client from the connection -------------------------------------------

    @classmethod
    def build_api(cls, conn: Any, extra: Mapping[str, Any]) -> ApiT:
        """Turn a connection (host, login, password, extras) into the vendor client."""
        raise NotImplementedError

    @classmethod
    def _api_for(cls, conn: Any, extra: Mapping[str, Any]) -> ApiT:
        return cls.build_api(conn, plain_extra(extra, cls.conn_type))

    @cached_property
    def api(self) -> ApiT:
        conn = self.get_connection(self.connection_id)
        api = self._api_for(conn, conn.extra_dejson)
        _register_secrets(api.secrets_to_mask())
        return api

    async def get_async_api(self) -> ApiT:
        """The vendor client for async use; the connection is looked up without blocking the loop."""
        if self._async_api is None:
            from airflow.providers.common.compat.connection import get_async_connection

            from airflow_workflow_provider._compat import get_async_extra_dejson

            try:
                conn = await get_async_connection(self.connection_id, hook=self)
            except Exception as exc:
                conn = await _connection_for_inline_triggers(self, exc)
            extra = await get_async_extra_dejson(conn)
            self._async_api = self._api_for(conn, extra)
            await _aregister_secrets(self._async_api.secrets_to_mask())
        return self._async_api

    @cached_property
    def _sender(self) -> SyncSender:
        return SyncSender(self.api.vendor, self.api.settings.timeouts, self.api.settings.transport)

    def close(self) -> None:
        if "_sender" in self.__dict__:
            self._sender.close()

    # -- the send step, sync and async (the only two copies) -----------------------------------

    def _call(
        self, request: ApiRequest, parse: Parser[T], *, retry_policy: RetryPolicy | None = None, patient: bool = False
    ) -> T:
        """Send ``request`` (with its auth) and parse the answer, retrying by the policy.

        ``patient``: the call checks on an execution being waited for; throttling slows it down and
        never fails it (see :class:`RetryPolicy`).
        """
        api = self.api
        budget = api.rate_budget
        for attempt in (retry_policy or api.settings.retry_policy).retrying(request, api.vendor, patient=patient):
            with attempt:
                response = _drive_auth_flow(
                    api.auth_flow(request), lambda r: self._sender.send(api.base_url, r, budget)
                )
                _register_secrets(api.secrets_to_mask())
                return api.read_answer(request, response, parse)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _acall(self, request: ApiRequest, parse: Parser[T], api: ApiT, *, patient: bool = False) -> T:
        sender = AsyncSender(api.vendor, api.settings.timeouts, api.settings.transport)
        budget = api.rate_budget
        async for attempt in api.settings.retry_policy.async_retrying(request, api.vendor, patient=patient):
            with attempt:
                response = await _adrive_auth_flow(
                    api.auth_flow(request), lambda r: sender.send(api.base_url, r, budget)
                )
                await _aregister_secrets(api.secrets_to_mask())
                return api.read_answer(request, response, parse)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    # -- the operations ------------------------------------------------------------------------

    def start_execution(self, workflow: str, payload: Mapping[str, Any] | None = None, **vendor_options: Any) -> str:
        """Start one execution of ``workflow`` and return its id."""
        request = self.api.start_request(
            require_id("workflow", workflow), require_json_object("payload", payload), **vendor_options
        )
        execution_id = self._call(request, self.api.parse_start)
        self.log.info("%s started execution %s of workflow %s", self.api.vendor, execution_id, workflow)
        return execution_id

    def get_execution(self, workflow: str, execution_id: str, *, patient: bool = False) -> WorkflowExecution:
        """The execution as the vendor reports it now; ``patient`` while waiting for it (429s never fail it)."""
        request = self.api.get_request(require_id("workflow", workflow), self.api.check_execution_id(execution_id))
        return self._call(request, self.api.parse_execution, patient=patient)

    async def aget_execution(self, workflow: str, execution_id: str, *, patient: bool = False) -> WorkflowExecution:
        api = await self.get_async_api()
        request = api.get_request(require_id("workflow", workflow), api.check_execution_id(execution_id))
        return await self._acall(request, api.parse_execution, api, patient=patient)

    def cancel_execution(self, workflow: str, execution_id: str) -> None:
        """Cancel an execution; one that is already canceled counts as done.

        A cancel whose answer was lost is resent, and the vendor then refuses it as "already
        canceled": the goal is reached, so that is no error.
        """
        request = self.api.cancel_request(require_id("workflow", workflow), self.api.check_execution_id(execution_id))
        try:
            self._call(request, ignore_body)
        except BadRequestError:
            if self.get_execution(workflow, execution_id).state is not ExecutionState.CANCELED:
                raise
        self.log.info("%s canceled execution %s of workflow %s", self.api.vendor, execution_id, workflow)

    async def acancel_execution(self, workflow: str, execution_id: str) -> None:
        api = await self.get_async_api()
        request = api.cancel_request(require_id("workflow", workflow), api.check_execution_id(execution_id))
        try:
            await self._acall(request, ignore_body, api)
        except BadRequestError:
            if (await self.aget_execution(workflow, execution_id)).state is not ExecutionState.CANCELED:
                raise
        self.log.info("%s canceled execution %s of workflow %s", api.vendor, execution_id, workflow)

    def explain_failure(self, execution: WorkflowExecution) -> WorkflowExecution:
        """The execution with the vendor's failing step and error filled in, where a further call can tell.

        Best effort: the execution already failed, and not being able to say why must not hide that.
        """
        request = self.api.failure_detail_request(execution) if execution.state.is_failure else None
        if request is None:
            return execution
        try:
            return self._call(request, lambda req, resp: self.api.parse_failure_detail(req, resp, execution))
        except WorkflowApiError as exc:
            self.log.warning("could not read why execution %s failed: %s", execution.id, exc)
            return execution

    def list_executions(self, workflow: str, **filters: Any) -> Iterator[WorkflowExecution]:
        """Every execution of ``workflow`` matching the vendor's ``filters``, fetched page by page as consumed."""
        require_id("workflow", workflow)
        first = self.api.list_request(workflow, None, filters)  # validates the filters before any request
        return self._pages(workflow, first, filters)

    def _pages(self, workflow: str, request: ApiRequest, filters: Mapping[str, Any]) -> Iterator[WorkflowExecution]:
        while True:
            page = self._call(request, self.api.parse_list)
            yield from page.executions
            if page.next_page is None:
                return
            request = self.api.list_request(workflow, page.next_page, filters)

    async def alist_executions_page(
        self, workflow: str, filters: Mapping[str, Any], page: Any = None, *, patient: bool = False
    ) -> Page:
        """One page of ``list_executions``, for the coalesced poller (``page`` None for the first)."""
        api = await self.get_async_api()
        request = api.list_request(require_id("workflow", workflow), page, filters)
        return await self._acall(request, api.parse_list, api, patient=patient)

    def execution_url(self, workflow: str, execution_id: str) -> str:
        return self.api.execution_url(workflow, execution_id)

    # -- any other endpoint ----------------------------------------------------------------------

    def call_api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call any endpoint of the vendor's API with this connection: its auth, retries and secret masking.

        For what the hook has no method for, as ``HttpHook.run`` is for the dbt Cloud hook. The call
        goes through the same send step as every other method: authentication (SailPoint's token
        included), the retry policy of the connection, errors mapped to this provider's exception
        types with the vendor's reason, and credentials masked in logs and messages.

        :param method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
        :param path: the path on the API host, e.g. ``/api/v2/workflows/{id}`` (Datadog),
            ``/client/v4/accounts/{account_id}/workflows`` (Cloudflare), ``/v3/workflows`` (SailPoint).
        :param params: query parameters.
        :param json: the JSON body.
        :param idempotent: whether resending after a lost answer is harmless; by default true for
            every method but ``POST`` and ``PATCH``, which are resent only when they provably never
            reached the vendor.
        :return: the decoded JSON answer, or ``None`` for an empty one.
        """
        request = self.api.endpoint_request(method, path, params=params, json_body=json, idempotent=idempotent)
        return self._call(request, json_body)

    async def acall_api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """:meth:`call_api` for event loops (triggers, async tasks)."""
        api = await self.get_async_api()
        request = api.endpoint_request(method, path, params=params, json_body=json, idempotent=idempotent)
        return await self._acall(request, json_body, api)

    # -- Airflow's "Test" button ---------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        try:
            api = self.api
            # One attempt: the person pressing "Test" wants the verdict now, not after a backoff.
            self._call(api.check_request(), ignore_body, retry_policy=self._one_attempt())
        except WorkflowInputError as exc:
            return False, f"The connection is not usable: {exc}"
        except NotFoundError as exc:
            if self.api.check_target_may_be_missing:
                # The check asks for something that need not exist; a 404 still proves the credentials work.
                return True, f"Connected to {self.api.vendor}: credentials accepted."
            return False, f"{self.api.vendor} does not know the account or tenant in this connection: {exc}"
        except AuthenticationError as exc:
            return False, f"{self.api.vendor} refused the credentials (bad or expired key/secret): {exc}"
        except PermissionDeniedError as exc:
            return False, self.api.explain_forbidden(exc, self._key_accepted_after_forbidden())
        except WorkflowTransportError as exc:
            return False, f"{self.api.vendor} API host unreachable at {self.api.base_url}: {exc}"
        except WorkflowApiError as exc:
            return False, str(exc)
        return True, f"Connected to {self.api.vendor}: credentials accepted."

    def _one_attempt(self) -> RetryPolicy:
        return dataclasses.replace(self.api.settings.retry_policy, max_attempts=1)

    def _key_accepted_after_forbidden(self) -> bool | None:
        """Whether the vendor's key check passes, where a 403 may mean a bad key or a missing permission."""
        request = self.api.forbidden_check_request()
        if request is None:
            return None
        try:
            self._call(request, ignore_body, retry_policy=self._one_attempt())
        except (AuthenticationError, PermissionDeniedError):
            return False
        except WorkflowApiError:
            return None
        return True


def _drive_auth_flow(flow: AuthFlow, send: Callable[[ApiRequest], ApiResponse]) -> ApiResponse:
    outgoing = next(flow)
    while True:
        response = send(outgoing)
        try:
            outgoing = flow.send(response)
        except StopIteration as done:
            return done.value


async def _adrive_auth_flow(flow: AuthFlow, send: Callable[[ApiRequest], Awaitable[ApiResponse]]) -> ApiResponse:
    outgoing = next(flow)
    while True:
        response = await send(outgoing)
        try:
            outgoing = flow.send(response)
        except StopIteration as done:
            return done.value


async def _connection_for_inline_triggers(hook: BaseWorkflowsHook, lookup_error: Exception) -> Any:
    """Look the connection up in a worker thread where Airflow cannot do it asynchronously.

    ``dag.test()`` and ``airflow dags test`` run triggers in line with a supervisor channel that
    has no async send (Airflow 3.3.2): the async lookup then reports every metastore connection
    as missing. Only there do we fall back to the synchronous lookup, in a thread so that the
    event loop is not blocked; anywhere else the original error stands.
    """
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None or hasattr(comms, "asend"):
        raise lookup_error
    from asgiref.sync import sync_to_async

    return await sync_to_async(hook.get_connection)(hook.connection_id)


def ignore_body(request: ApiRequest, response: ApiResponse) -> None:
    """The parser for calls whose answer carries nothing we need (cancel, events)."""
    return None


def json_body(request: ApiRequest, response: ApiResponse) -> Any:
    """The parser for ``call_api``: the answer as decoded JSON, ``None`` when empty."""
    return response.json()


def _register_secrets(secrets: list[str]) -> None:
    """Tell Airflow's secrets masker about every credential, so no log line can show one."""
    from airflow_workflow_provider._compat import mask_secret

    for secret in secrets:
        mask_secret(secret)


async def _aregister_secrets(secrets: list[str]) -> None:
    """The same from an event loop, where a synchronous call to the supervisor could deadlock."""
    from airflow_workflow_provider._compat import amask_secret

    for secret in secrets:
        await amask_secret(secret)
