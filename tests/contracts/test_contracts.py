"""Every request the hooks send and every answer the emulator gives, validated against the vendors' contracts.

The contracts are fragments of each vendor's published OpenAPI document (``tests/contracts/<vendor>/``,
cut by ``scripts/refresh-contracts.py``, each naming its repository, path and commit, or the registry
package and version that ships the same file; ``make test`` fetches the latter). Scenarios drive
the real hooks against the emulator; a recorder on the hook's HTTP session keeps each exchange as
sent and received, and openapi-core (a maintained OpenAPI 3.0/3.1 validator) checks the request
(path, query, headers, security, body) and the answer (status declared for the operation, body
schema) for every operation we use, successes and errors alike. So neither the hooks nor the
emulator can drift from a vendor's contract without a test failing.

Where a vendor's document contradicts what the vendor's own tools do, the contract is amended in
``DEVIATIONS`` below, each amendment with its evidence; nothing else is relaxed.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from airflow_workflow_provider.core.errors import WorkflowApiError
from airflow_workflow_provider.core.hook import BaseWorkflowsHook
from airflow_workflow_provider.hooks.cloudflare import CloudflareWorkflowsHook
from airflow_workflow_provider.hooks.datadog import DatadogWorkflowsHook
from airflow_workflow_provider.hooks.sailpoint import SailPointWorkflowsHook, forget_sailpoint_routes
from airflow_workflow_provider.testing import WorkflowEmulator, WorkflowScript

HERE = Path(__file__).resolve().parent
# Where each vendor's API really lives: the emulator's /<vendor> prefix stands for it.
VENDOR_HOSTS = {
    "datadog": "https://api.datadoghq.com",
    "cloudflare": "https://api.cloudflare.com",
    "sailpoint": "https://acme.api.identitynow.com",
}
# Calls no published document describes: SailPoint's token endpoint appears only as the tokenUrl of
# its OAuth2 security schemes.
UNDOCUMENTED_PATHS = {"sailpoint": (re.compile(r"^/oauth/token$"),)}


def _any_value(schema: dict[str, Any]) -> None:
    schema.clear()


def _cloudflare(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for operation in item.values():
            # The document lists api_email, api_key and api_token in ONE requirement (all three at once).
            # Its own top-level `security` lists them as alternatives ({api_email, api_key}, {api_token}), and
            # Cloudflare's SDKs and wrangler send either the token or email + key.
            operation["security"] = [{"api_token": []}, {"api_email": [], "api_key": []}]
    for path in (
        "/accounts/{account_id}/workflows/{workflow_name}/instances",
        "/accounts/{account_id}/workflows/{workflow_name}/instances/batch",
    ):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        params = (body.get("items") or body)["properties"]["params"]
        # Typed as a JSON-encoded string; wrangler sends the parsed JSON object, the Python SDK types it
        # as an object, and the instance receives it as its event payload either way.
        _any_value(params)
    get = spec["paths"]["/accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}"]["get"]
    result = get["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"]
    # `simple=true` "omits step details and returns only metadata with step_count", yet `steps` is required.
    result["required"] = [name for name in result["required"] if name != "steps"]
    # `output` is typed string | number and not nullable; an instance has no output until it ends, and what
    # its run() returned (any serializable value) is passed through as the answer carries it.
    _any_value(result["properties"]["output"])


def _sailpoint(spec: dict[str, Any]) -> None:
    for path in ("/workflow-executions/v1/{id}", "/workflow-executions/{id}"):
        if path in spec["paths"]:
            content = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
            # "Workflow execution." is declared as `items: <WorkflowExecution>` with no `type: array`, which
            # validates nothing at all; the answer is one execution (as SailPoint's SDKs read it).
            content["schema"] = content["schema"]["items"]
    history = spec["components"]["schemas"].get("workflowexecutionhistory")
    if history is not None:
        # history-v2 declares `history` as ONE event object; a history is a list of events. Both are read.
        properties = history["allOf"][0]["properties"]
        event = properties["history"]["$ref"]
        properties["history"] = {"oneOf": [{"type": "array", "items": {"$ref": event}}, {"$ref": event}]}


def _datadog(spec: dict[str, Any]) -> None:
    errors = spec["components"]["schemas"]["APIErrorResponse"]["properties"]["errors"]
    # APIErrorResponse lists errors as strings (and a bad API key is answered {"errors": ["Forbidden"]}),
    # but the recorded real answers of the workflow instance scenarios carry objects:
    # {"errors": [{"code": "INSTANCE_NOT_FOUND", "detail": "instance ... not found"}]}
    # (datadog-api-client-python tests/v2/cassettes/test_scenarios/
    #  test_cancel_a_workflow_instance_returns_not_found_response.yaml, ..._bad_request_response.yaml).
    errors["items"] = {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
                "required": ["code", "detail"],
            },
        ]
    }


DEVIATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "datadog": _datadog,
    "cloudflare": _cloudflare,
    "sailpoint": _sailpoint,
}
# A server failure may come from any gateway in front of the API, and no vendor declares every 5xx for
# every operation: such answers are checked only where the operation declares them.
UNDECLARED_SERVER_ERRORS = frozenset({500, 502, 503, 504})
# Faults injected in the scenarios: only statuses the vendor's document declares for the operations.
DOCUMENTED_FAULTS = {"datadog": ("403", "429"), "cloudflare": (), "sailpoint": ("401", "403", "429", "500")}


@dataclass(frozen=True)
class Contract:
    vendor: str
    file: Path
    spec: dict[str, Any]
    amended: dict[str, Any]  # the spec with the vendor's DEVIATIONS applied
    openapi: OpenAPI
    templates: tuple[tuple[re.Pattern[str], str], ...]

    def serves(self, path: str) -> bool:
        return any(pattern.fullmatch(path) for pattern, _ in self.templates)


def _templates(spec: dict[str, Any]) -> tuple[tuple[re.Pattern[str], str], ...]:
    prefixes = {
        urlsplit(server["url"].replace("{", "").replace("}", "")).path.rstrip("/") for server in spec["servers"]
    }
    return tuple(
        (re.compile(re.escape(prefix) + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))), template)
        for prefix in prefixes
        for template in spec["paths"]
    )


def load_contracts() -> dict[str, list[Contract]]:
    contracts: dict[str, list[Contract]] = {}
    for file in sorted(HERE.glob("*/*.yaml")):
        vendor = file.parent.name
        spec = yaml.safe_load(file.read_text())
        amended = copy.deepcopy(spec)
        DEVIATIONS.get(vendor, lambda s: None)(amended)
        contracts.setdefault(vendor, []).append(
            Contract(vendor, file, spec, amended, OpenAPI.from_dict(amended), _templates(spec))
        )
    return contracts


CONTRACTS = load_contracts()
# The vendors' documents are not committed: they are fetched into tests/contracts/<vendor>/ (ignored by git) by
# scripts/refresh-contracts.py, from GitHub, or from a package registry where the vendor ships them in a package
# (`make test` does that; CI reaches registries only). What each vendor's tests need when its files are absent:
FETCH = {
    "datadog": "`python scripts/refresh-contracts.py --from-registries datadog` (PyPI datadog-api-client)",
    "cloudflare": "`python scripts/refresh-contracts.py cloudflare` with GitHub access (no registry package ships it)",
    "sailpoint": "`python scripts/refresh-contracts.py sailpoint` with GitHub access (no registry package ships it)",
}
if not CONTRACTS:
    pytest.skip(
        "no vendor contract under tests/contracts/<vendor>/: fetch them with " + "; ".join(FETCH.values()),
        allow_module_level=True,
    )


def needs(vendor: str) -> list[Contract]:
    """The vendor's contracts, or a skip naming what is missing and how to fetch it."""
    if vendor not in CONTRACTS:
        pytest.skip(f"no {vendor} contract under tests/contracts/{vendor}/: fetch it with {FETCH[vendor]}")
    return CONTRACTS[vendor]


def test_every_fragment_names_its_source() -> None:
    """Each fragment says where it was cut: a repository's commit, or a pinned release on a package registry."""
    for contracts in CONTRACTS.values():
        for contract in contracts:
            source = contract.spec["x-contract-source"]
            assert source["repository"] and source["path"], contract.file
            header = contract.file.read_text().splitlines()[0]
            if "commit" in source:
                assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), contract.file
                assert header.startswith("# Cut from https://github.com/"), contract.file
            else:
                assert source["package"] and source["version"] and source["registry"], contract.file
                assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"]), contract.file
                assert header.startswith(f"# Cut from {source['path']} in the source distribution"), contract.file


# -- recording what goes over the wire -------------------------------------------------------------


@dataclass
class Exchange:
    vendor: str
    request: requests.PreparedRequest
    response: requests.Response
    absent: bool = False

    @property
    def label(self) -> str:
        return f"{self.request.method} {urlsplit(self.request.url or '').path} -> {self.response.status_code}"


class Recorder:
    def __init__(self, emulator: WorkflowEmulator) -> None:
        self.emulator = emulator
        self.exchanges: list[Exchange] = []
        # Paths the emulated tenant does not serve: their 404 is a gateway's answer, in no contract.
        self.absent: tuple[str, ...] = ()

    def watch(self, hook: BaseWorkflowsHook, vendor: str) -> BaseWorkflowsHook:
        def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            response.content  # noqa: B018 - read the body now, while the connection is still ours
            path = urlsplit(response.request.url or "").path
            absent = response.status_code == 404 and any(path.startswith(prefix) for prefix in self.absent)
            self.exchanges.append(Exchange(vendor, response.request, response, absent))

        hook._sender.session.hooks["response"].append(record)
        return hook


def vendor_request(exchange: Exchange) -> requests.PreparedRequest:
    """The request as it would go to the vendor: the emulator's /<vendor> prefix becomes the vendor's host."""
    parts = urlsplit(exchange.request.url or "")
    prefix = f"/{exchange.vendor}"
    assert parts.path.startswith(prefix), parts.path
    host = urlsplit(VENDOR_HOSTS[exchange.vendor])
    moved = exchange.request.copy()
    moved.url = urlunsplit((host.scheme, host.netloc, parts.path[len(prefix) :], parts.query, ""))
    return moved


def contract_for(exchange: Exchange, request: requests.PreparedRequest) -> Contract | None:
    path = urlsplit(request.url or "").path
    if any(pattern.fullmatch(path) for pattern in UNDOCUMENTED_PATHS.get(exchange.vendor, ())):
        return None
    matching = [c for c in CONTRACTS[exchange.vendor] if c.serves(path)]
    assert matching, f"{exchange.vendor}: {exchange.label} is in no contract under tests/contracts/{exchange.vendor}/"
    return matching[0]


def check(exchanges: list[Exchange]) -> list[str]:
    """Every exchange validated; the problems found, one line each."""
    problems = []
    for exchange in exchanges:
        request = vendor_request(exchange)
        contract = contract_for(exchange, request)
        if contract is None:
            continue
        openapi_request = RequestsOpenAPIRequest(request)
        answer = RequestsOpenAPIResponse(exchange.response)
        try:
            with warnings.catch_warnings():
                # openapi-core takes an OAuth2 scheme as met by any request: _security_problem checks those.
                warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
                contract.openapi.validate_request(openapi_request)
        except Exception as exc:  # openapi-core raises one exception class per kind of mismatch
            problems.append(f"{exchange.label}: request breaks {contract.file.name}: {_explain(exc)}")
        security = _security_problem(contract, request)
        if security:
            problems.append(f"{exchange.label}: request breaks {contract.file.name}: {security}")
        if exchange.absent:
            continue
        if exchange.response.status_code in UNDECLARED_SERVER_ERRORS and not _declares(
            contract, request, exchange.response.status_code
        ):
            continue
        try:
            contract.openapi.validate_response(openapi_request, answer)
        except Exception as exc:
            problems.append(f"{exchange.label}: answer breaks {contract.file.name}: {_explain(exc)}")
    return problems


def _operation(contract: Contract, request: requests.PreparedRequest) -> dict[str, Any]:
    path = urlsplit(request.url or "").path
    for pattern, template in contract.templates:
        if pattern.fullmatch(path):
            return contract.amended["paths"][template].get((request.method or "").lower()) or {}
    return {}


def _security_problem(contract: Contract, request: requests.PreparedRequest) -> str | None:
    """Whether no alternative of the operation's security is met, OAuth2 ones included.

    openapi-core skips OAuth2 schemes, so an operation that offers OAuth2 as one alternative (Datadog's
    AuthZ beside its API and application keys) would pass any request, even one carrying no credential.
    """
    schemes = contract.amended.get("components", {}).get("securitySchemes", {})
    operation = _operation(contract, request)
    requirements = operation.get("security", contract.amended.get("security", []))
    if not requirements or any(not requirement for requirement in requirements):  # {} means "none needed"
        return None
    if any(all(_meets(schemes.get(name, {}), request) for name in requirement) for requirement in requirements):
        return None
    names = sorted({name for requirement in requirements for name in requirement})
    if all(schemes.get(name, {}).get("type") == "oauth2" for name in names):
        return f"no OAuth2 Bearer token for {names}"
    return "meets none of its security requirements: " + " or ".join(" + ".join(r) for r in requirements)


def _meets(scheme: dict[str, Any], request: requests.PreparedRequest) -> bool:
    kind = scheme.get("type")
    if kind == "apiKey":
        name = scheme.get("name", "")
        if scheme.get("in") == "query":
            return name in parse_qs(urlsplit(request.url or "").query)
        if scheme.get("in") == "cookie":
            return f"{name}=" in (request.headers.get("Cookie") or "")
        return bool(request.headers.get(name))
    auth_scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if kind == "http":
        return auth_scheme.lower() == str(scheme.get("scheme", "")).lower() and bool(token)
    if kind in ("oauth2", "openIdConnect"):
        return auth_scheme == "Bearer" and bool(token)
    return False


def _declares(contract: Contract, request: requests.PreparedRequest, status: int) -> bool:
    return str(status) in _operation(contract, request).get("responses", {})


def _explain(exc: BaseException) -> str:
    details = [str(exc)]
    for nested in getattr(exc, "schema_errors", None) or getattr(exc, "errors", None) or ():
        details.append(f"{getattr(nested, 'message', nested)}")
    cause = exc.__cause__
    if cause is not None:
        details.append(_explain(cause))
    return " / ".join(details)[:600]


# -- scenarios: every operation we use, successes and errors ---------------------------------------


@pytest.fixture
def recorder(emulator: WorkflowEmulator) -> Iterator[Recorder]:
    yield Recorder(emulator)


def _hook(recorder: Recorder, set_connection: Any, vendor: str, hook_class: type[BaseWorkflowsHook]) -> Any:
    needs(vendor)
    return recorder.watch(hook_class(set_connection(vendor)), vendor)


def _expect_error(call: Callable[[], Any]) -> None:
    with pytest.raises(WorkflowApiError):
        call()


# Each vendor's name for "one item per page", so that listing pages at least twice.
SMALL_PAGE = {"datadog": {"page_size": 1}, "cloudflare": {"per_page": 1}, "sailpoint": {"limit": 1}}


def _common_scenario(recorder: Recorder, hook: Any, vendor: str, workflow: str) -> None:
    """What every vendor is asked: test, start, get, list, cancel, and their errors."""
    emulator = recorder.emulator
    assert hook.test_connection()[0]
    emulator.script(vendor, workflow, WorkflowScript(duration=0.0, output={"rows": 3}))
    done = hook.start_execution(workflow, {"n": 1})
    _wait(hook, workflow, done)
    emulator.script(vendor, workflow, WorkflowScript(duration=0.0, outcome="failure"))
    failed = hook.start_execution(workflow, {"n": 2})
    hook.explain_failure(_wait(hook, workflow, failed))
    emulator.script(vendor, workflow, WorkflowScript(duration=60.0))
    running = hook.start_execution(workflow)
    hook.get_execution(workflow, running)
    list(hook.list_executions(workflow))
    list(hook.list_executions(workflow, **SMALL_PAGE[vendor]))
    hook.cancel_execution(workflow, running)
    hook.get_execution(workflow, running)
    _expect_error(lambda: hook.get_execution(workflow, "no-such-execution"))
    for fault in DOCUMENTED_FAULTS[vendor]:
        emulator.inject_fault(vendor, "get", fault, times=2 if fault == "401" else 1)
        with contextlib.suppress(WorkflowApiError):
            hook.get_execution(workflow, done)


def _wait(hook: Any, workflow: str, execution_id: str) -> Any:
    import time

    deadline = time.monotonic() + 10
    while True:
        execution = hook.get_execution(workflow, execution_id)
        if execution.state.is_terminal or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def _assert_valid(recorder: Recorder, operations: set[str] | None = None) -> None:
    assert recorder.exchanges, "the scenario sent nothing: the test proves nothing"
    problems = check(recorder.exchanges)
    assert not problems, "\n".join(problems)


def test_datadog_requests_and_answers_match_the_contract(recorder: Recorder, set_connection: Any) -> None:
    from tests.conftest import WORKFLOW_IDS

    hook = _hook(recorder, set_connection, "datadog", DatadogWorkflowsHook)
    _common_scenario(recorder, hook, "datadog", WORKFLOW_IDS["datadog"])
    _assert_valid(recorder)


def test_cloudflare_requests_and_answers_match_the_contract(recorder: Recorder, set_connection: Any) -> None:
    from tests.conftest import WORKFLOW_IDS

    workflow = WORKFLOW_IDS["cloudflare"]
    hook = _hook(recorder, set_connection, "cloudflare", CloudflareWorkflowsHook)
    _common_scenario(recorder, hook, "cloudflare", workflow)
    emulator = recorder.emulator
    emulator.script("cloudflare", workflow, WorkflowScript(duration=60.0, wait_for_event="approval"))
    ids = hook.start_executions_batch(workflow, [{"params": {"k": 1}}, {"instance_id": "chosen-id", "params": {}}])
    for action in ("pause", "resume"):
        hook.change_instance_status(workflow, ids[0], action)
    hook.send_event(workflow, ids[1], "approval", {"ok": True})
    hook.change_instance_status(workflow, ids[0], "terminate")
    _expect_error(lambda: hook.change_instance_status(workflow, "no-such-instance", "pause"))
    _assert_valid(recorder)


def test_sailpoint_requests_and_answers_match_the_contract(recorder: Recorder, set_connection: Any) -> None:
    from tests.conftest import WORKFLOW_IDS

    workflow = WORKFLOW_IDS["sailpoint"]
    hook = _hook(recorder, set_connection, "sailpoint", SailPointWorkflowsHook)
    _common_scenario(recorder, hook, "sailpoint", workflow)
    emulator = recorder.emulator
    hook.get_execution_history(hook.start_execution(workflow, mode="test"))
    emulator.script("sailpoint", "enabled-wf", WorkflowScript(enabled=True))
    _expect_error(lambda: hook.start_execution("enabled-wf", mode="test"))
    emulator.script("sailpoint", "disabled-wf", WorkflowScript(enabled=False))
    _expect_error(lambda: hook.start_execution("disabled-wf", mode="external"))
    _expect_error(lambda: hook.cancel_execution(workflow, hook.start_execution(workflow) and "no-such-execution"))
    # A tenant without the per-service paths: the same operations on the versioned (v3) paths.
    emulator.sailpoint_per_service(False)
    recorder.absent = ("/sailpoint/workflows/v1", "/sailpoint/workflow-executions/v1")
    forget_sailpoint_routes()
    versioned = recorder.watch(SailPointWorkflowsHook(set_connection("sailpoint")), "sailpoint")
    _common_scenario(recorder, versioned, "sailpoint", workflow)
    versioned.get_execution_history(versioned.start_execution(workflow))
    _assert_valid(recorder)
    used = {urlsplit(e.request.url or "").path.split("/")[2] for e in recorder.exchanges}
    assert {"workflows", "workflow-executions", "v3"} <= used, used


def test_a_drifted_answer_is_caught(recorder: Recorder, set_connection: Any) -> None:
    """The validation is not vacuous: an answer that breaks the contract is reported."""
    from tests.conftest import WORKFLOW_IDS

    hook = _hook(recorder, set_connection, "sailpoint", SailPointWorkflowsHook)
    execution_id = hook.start_execution(WORKFLOW_IDS["sailpoint"])
    hook.get_execution(WORKFLOW_IDS["sailpoint"], execution_id)
    get = next(e for e in recorder.exchanges if "/workflow-executions/" in (e.request.url or ""))
    body = json.loads(get.response.content)
    body["status"] = "Exploded"  # not in the documented enum
    get.response._content = json.dumps(body).encode()
    problems = check([get])
    assert problems and "Exploded" in problems[0]

    unsigned = get.request.copy()
    del unsigned.headers["Authorization"]
    get.request, get.response._content = unsigned, json.dumps({**body, "status": "Running"}).encode()
    problems = check([get])
    assert len(problems) == 1 and "no OAuth2 Bearer token" in problems[0]


# -- Datadog's recorded real answers against Datadog's own document --------------------------------

CASSETTES = sorted((HERE / "datadog" / "cassettes").glob("*.json"))


@pytest.mark.parametrize("cassette", CASSETTES, ids=[path.stem for path in CASSETTES])
def test_datadog_recorded_answers_match_the_contract(cassette: Path) -> None:
    """What Datadog really answered (its client's cassettes) fits its document, as amended in DEVIATIONS.

    The same amendments that let the emulator pass must let the real answers pass: otherwise an
    amendment would be covering for the emulator rather than for the document.
    """
    needs("datadog")
    recorded = json.loads(cassette.read_text())
    request = requests.Request(
        recorded["request"]["method"],
        "https://api.datadoghq.com" + recorded["request"]["path"],
        headers={"DD-API-KEY": "recorded", "DD-APPLICATION-KEY": "recorded"},
        json=recorded["request"].get("body"),
    ).prepare()
    response = requests.Response()
    response.status_code = recorded["response"]["status"]
    response._content = json.dumps(recorded["response"]["body"]).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = request
    problems = check([Exchange("datadog", _as_emulated(request), response)])
    assert not problems, "\n".join(problems)


def _as_emulated(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The recorded request as if sent to the emulator, so that ``check`` maps it back to the vendor's host."""
    parts = urlsplit(request.url or "")
    moved = request.copy()
    moved.url = urlunsplit(("http", "127.0.0.1", "/datadog" + parts.path, parts.query, ""))
    return moved


def test_a_drifted_datadog_answer_is_caught(recorder: Recorder, set_connection: Any) -> None:
    """The same proof on Datadog's document, the one CI can fetch (from PyPI) when GitHub is out of reach."""
    from tests.conftest import WORKFLOW_IDS

    hook = _hook(recorder, set_connection, "datadog", DatadogWorkflowsHook)
    hook.get_execution(WORKFLOW_IDS["datadog"], hook.start_execution(WORKFLOW_IDS["datadog"]))
    get = next(e for e in recorder.exchanges if e.request.method == "GET")
    assert not check([get])
    get.response._content = json.dumps({"data": ["Exploded"]}).encode()  # the document's data is an object
    problems = check([get])
    assert len(problems) == 1 and "answer breaks workflow-automation-v2.yaml" in problems[0], problems

    unsigned = get.request.copy()
    del unsigned.headers["DD-API-KEY"]
    get.request = unsigned
    problems = check([get])
    assert any("request breaks" in problem for problem in problems), problems
