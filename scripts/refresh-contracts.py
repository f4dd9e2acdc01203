#!/usr/bin/env python3
"""Refresh the vendor contract fragments under tests/contracts/ from the vendors' published OpenAPI documents.

Each fragment is a self-contained OpenAPI document holding only the operations this provider calls,
with every schema, parameter and response they reference, and an ``x-contract-source`` block naming
the repository, path and commit (or the registry package and version) it was cut from. Datadog's recorded
answers (its client's test cassettes) are converted beside them into tests/contracts/datadog/cassettes/.
``make test`` validates the hooks' requests and the emulator's answers against these files offline; this
script is the only part that needs the network.

    python scripts/refresh-contracts.py                 # every fragment, newest commit of each repository
    python scripts/refresh-contracts.py sailpoint       # one vendor
    python scripts/refresh-contracts.py --commit sailpoint-oss/api-specs=81ef79d0...   # a pinned commit
    python scripts/refresh-contracts.py --git-dir sailpoint-oss/api-specs=/path/to/clone  # no network
    python scripts/refresh-contracts.py --from-registries --if-missing   # what `make test` runs (CI too)

``--from-registries`` reads the same repository files from a pinned release on a package registry (sha256
checked), for the repositories that ship them in one: CI reaches the registries but not GitHub. A registry
that cannot be reached is a warning, not an error: the tests that need the missing files skip, naming them.

Review the diff before committing it: a change in a fragment is a change in a vendor's contract, and
the emulator or the hooks may have to follow it.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import posixpath
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONTRACTS = Path(__file__).resolve().parent.parent / "tests" / "contracts"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COMPONENT_KINDS = ("schemas", "responses", "parameters", "requestBodies", "headers", "examples", "securitySchemes")


@dataclass(frozen=True)
class Fragment:
    """Which operations of which published document make one fragment file."""

    vendor: str
    name: str
    repository: str
    branch: str
    path: str
    operations: tuple[tuple[str, str], ...]  # (path, method)
    # Where the document leaves its security schemes out (SailPoint's per-service documents), the
    # document of the same repository and commit whose schemes it relies on.
    security_schemes_from: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def output(self) -> Path:
        return CONTRACTS / self.vendor / f"{self.name}.yaml"


FRAGMENTS = (
    Fragment(
        vendor="datadog",
        name="workflow-automation-v2",
        repository="DataDog/datadog-api-client-python",
        branch="master",
        path=".generator/schemas/v2/openapi.yaml",
        operations=(
            ("/api/v2/workflows/{workflow_id}/instances", "post"),
            ("/api/v2/workflows/{workflow_id}/instances", "get"),
            ("/api/v2/workflows/{workflow_id}/instances/{instance_id}", "get"),
            ("/api/v2/workflows/{workflow_id}/instances/{instance_id}/cancel", "put"),
        ),
    ),
    Fragment(
        vendor="datadog",
        name="validate-v1",
        repository="DataDog/datadog-api-client-python",
        branch="master",
        path=".generator/schemas/v1/openapi.yaml",
        # The Test button's key-only check after a 403, which cannot tell a bad key from a missing permission.
        operations=(("/api/v1/validate", "get"),),
    ),
    Fragment(
        vendor="cloudflare",
        name="workflows",
        repository="cloudflare/api-schemas",
        branch="main",
        path="openapi.yaml",
        operations=(
            ("/accounts/{account_id}/workflows", "get"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances", "post"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances", "get"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances/batch", "post"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}", "get"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}/status", "patch"),
            ("/accounts/{account_id}/workflows/{workflow_name}/instances/{instance_id}/events/{event_type}", "post"),
        ),
    ),
    Fragment(
        vendor="sailpoint",
        name="workflows-v1",
        repository="sailpoint-oss/api-specs",
        branch="main",
        path="idn/apis/workflows/openapi.yaml",
        operations=(
            ("/workflows/v1", "get"),
            ("/workflows/v1/{id}/test", "post"),
            ("/workflows/v1/{id}/executions", "get"),
            ("/workflows/v1/execute/external/{id}", "post"),
            ("/workflow-executions/v1/{id}", "get"),
            ("/workflow-executions/v1/{id}/history", "get"),
            ("/workflow-executions/v1/{id}/history-v2", "get"),
            ("/workflow-executions/v1/{id}/cancel", "post"),
        ),
        security_schemes_from="idn/sailpoint-api.v3.yaml",
    ),
    Fragment(
        vendor="sailpoint",
        name="v3",
        repository="sailpoint-oss/api-specs",
        branch="main",
        path="idn/sailpoint-api.v3.yaml",
        operations=(
            ("/workflows", "get"),
            ("/workflows/{id}/test", "post"),
            ("/workflows/{id}/executions", "get"),
            ("/workflows/execute/external/{id}", "post"),
            ("/workflow-executions/{id}", "get"),
            ("/workflow-executions/{id}/history", "get"),
            ("/workflow-executions/{id}/cancel", "post"),
        ),
    ),
)


@dataclass(frozen=True)
class Cassette:
    """One of Datadog's recorded answers, converted from its client's VCR cassette to our JSON fixture."""

    name: str  # under tests/contracts/datadog/cassettes/
    path: str  # in the client's repository
    note: str | None = None

    @property
    def output(self) -> Path:
        return CONTRACTS / "datadog" / "cassettes" / self.name


CASSETTE_REPOSITORY = "DataDog/datadog-api-client-python"
_SCENARIOS = "tests/v2/cassettes/test_scenarios"
CASSETTES = (
    Cassette("get_instance_canceled.json", f"{_SCENARIOS}/test_get_a_workflow_instance_returns_ok_response.yaml"),
    Cassette("list_instances.json", f"{_SCENARIOS}/test_list_workflow_instances_returns_ok_response.yaml"),
    Cassette("execute_workflow.json", f"{_SCENARIOS}/test_execute_a_workflow_returns_created_response.yaml"),
    Cassette("cancel_instance.json", f"{_SCENARIOS}/test_cancel_a_workflow_instance_returns_ok_response.yaml"),
    Cassette(
        "cancel_instance_not_found.json",
        f"{_SCENARIOS}/test_cancel_a_workflow_instance_returns_not_found_response.yaml",
    ),
    Cassette(
        "get_instance_workflow_not_found.json",
        f"{_SCENARIOS}/test_get_a_workflow_instance_returns_not_found_response.yaml",
    ),
    Cassette(
        "malformed_workflow_id.json",
        f"{_SCENARIOS}/test_get_a_workflow_instance_returns_bad_request_response.yaml",
        note="the same answer is recorded for list, execute and cancel with workflow id 'malformed'",
    ),
    Cassette(
        "api_key_forbidden.json",
        "tests/v1/cassettes/test_scenarios/test_validate_api_key_returns_forbidden_response.yaml",
    ),
)


@dataclass(frozen=True)
class PyPISdist:
    """A release on PyPI whose source distribution carries a repository's files under one top folder."""

    package: str
    version: str
    sha256: str

    @property
    def label(self) -> str:
        return f"PyPI {self.package}=={self.version}"


# The repositories whose files also ship in a package on a registry, pinned. Raise a version only together with
# its sha256 (from `pip download`), and review the fragments' diff as for a new commit.
# Cloudflare's api-schemas and SailPoint's api-specs ship in none: their SDKs on PyPI (cloudflare, sailpoint) and
# npm (cloudflare, sailpoint-api-client) carry generated code without the document, and SailPoint's Go SDK,
# whose packages carry api/openapi.yaml, is served by the Go module proxy, which CI cannot reach.
REGISTRY_RELEASES = {
    "DataDog/datadog-api-client-python": PyPISdist(
        "datadog-api-client", "2.62.0", "fec6a649dac5dd7224f64662390005e6d6ce688029742278346f46190d0fc902"
    ),
}


# -- reading a repository at one commit ------------------------------------------------------------


class GitHubReader:
    """Files of a public repository at one commit, from raw.githubusercontent.com."""

    def __init__(self, repository: str, commit: str) -> None:
        self.repository, self.commit = repository, commit

    @classmethod
    def newest(cls, repository: str, branch: str) -> GitHubReader:
        url = f"https://api.github.com/repos/{repository}/commits/{urllib.parse.quote(branch)}"
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.github.sha"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return cls(repository, answer.read().decode().strip())

    @property
    def origin(self) -> dict[str, str]:
        return {"repository": self.repository, "commit": self.commit}

    def locate(self, path: str) -> str:
        return f"https://github.com/{self.repository}/blob/{self.commit}/{path}"

    def read(self, path: str) -> str:
        url = f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{urllib.parse.quote(path)}"
        with urllib.request.urlopen(url, timeout=300) as answer:
            return answer.read().decode()


class GitDirReader:
    """Files of a local clone (or bare mirror) at one commit."""

    def __init__(self, repository: str, git_dir: str, commit: str | None) -> None:
        self.repository, self.git_dir = repository, git_dir
        self.commit = commit or self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args], check=True, capture_output=True, text=True
        ).stdout

    @property
    def origin(self) -> dict[str, str]:
        return {"repository": self.repository, "commit": self.commit}

    def locate(self, path: str) -> str:
        return f"https://github.com/{self.repository}/blob/{self.commit}/{path}"

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")


class RegistryUnreachable(Exception):
    """The registry could not be asked (no network, an outage): the tests that need its files skip."""


class SdistReader:
    """Files of a repository as shipped in a pinned source distribution on PyPI, checked against its sha256."""

    def __init__(self, repository: str, release: PyPISdist, archive: Path) -> None:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != release.sha256:
            # Not a network problem: the registry served other bytes than the pinned release. Never use them.
            raise ValueError(f"{release.label}: {archive.name} has sha256 {digest}, pinned {release.sha256}")
        self.repository, self.release = repository, release
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            top = names[0].split("/", 1)[0]
            self._files = {
                name[len(top) + 1 :]: tar.extractfile(name).read().decode()  # type: ignore[union-attr]
                for name in names
                if name.endswith((".yaml", ".yml")) and tar.getmember(name).isfile()
            }

    @classmethod
    def download(cls, repository: str, release: PyPISdist) -> SdistReader:
        with tempfile.TemporaryDirectory(prefix="refresh-contracts-") as folder:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
            command += ["--no-deps", "--no-binary", ":all:", "--dest", folder, f"{release.package}=={release.version}"]
            try:
                subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                detail = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines() or ["no output"]
                raise RegistryUnreachable(f"{release.label} ({detail[-1]})") from exc
            archives = sorted(Path(folder).glob("*.tar.gz"))
            if not archives:
                raise RegistryUnreachable(f"{release.label}: pip download left no source distribution")
            return cls(repository, release, archives[0])

    @property
    def origin(self) -> dict[str, str]:
        return {
            "repository": self.repository,
            "registry": "PyPI",
            "package": self.release.package,
            "version": self.release.version,
            "sha256": self.release.sha256,
        }

    def locate(self, path: str) -> str:
        return f"{path} in the source distribution of {self.release.label} (sha256 {self.release.sha256})"

    def read(self, path: str) -> str:
        if path not in self._files:
            raise KeyError(f"{self.release.label}: its source distribution has no {path}")
        return self._files[path]


Reader = GitHubReader | GitDirReader | SdistReader


# -- cutting the fragment ----------------------------------------------------------------------------


class Bundler:
    """Copies the chosen operations and everything they reference into one document.

    References into other files (SailPoint splits its documents into one file per path and schema)
    become components of the fragment; references inside the document are kept as they are, with
    the components they name.
    """

    def __init__(self, reader: Reader, root_path: str) -> None:
        self.reader = reader
        self.root_path = root_path
        self._files: dict[str, Any] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self._external_names: dict[tuple[str, str], tuple[str, str]] = {}
        self._pending_internal: list[tuple[str, str]] = []

    def load(self, path: str) -> Any:
        if path not in self._files:
            self._files[path] = yaml.safe_load(self.reader.read(path))
        return self._files[path]

    @property
    def root(self) -> Any:
        return self.load(self.root_path)

    def operation(self, path: str, method: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The operation, and the path item's shared parameters, with references made local."""
        item = self.root["paths"][path]
        base = self.root_path
        if "$ref" in item:
            base = _join(self.root_path, item["$ref"])
            item = self.load(base)
        if method not in item:
            raise KeyError(f"{self.root_path}: no {method.upper()} {path}")
        shared = {"parameters": item["parameters"]} if "parameters" in item else {}
        return self.localize(item[method], base), self.localize(shared, base)

    def localize(self, node: Any, base: str, kind: str = "schemas") -> Any:
        if isinstance(node, list):
            return [self.localize(value, base, "parameters" if kind == "parameters" else kind) for value in node]
        if not isinstance(node, dict):
            return node
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                result[key] = self._reference(value, base, kind)
            elif key == "responses" and isinstance(value, dict):
                result[key] = {code: self.localize(answer, base, "responses") for code, answer in value.items()}
            elif key == "parameters" and isinstance(value, list):
                result[key] = [self.localize(parameter, base, "parameters") for parameter in value]
            elif key == "requestBody":
                result[key] = self.localize(value, base, "requestBodies")
            else:
                result[key] = self.localize(value, base, "schemas")
        return result

    def _reference(self, ref: str, base: str, kind: str) -> str:
        target, _, pointer = ref.partition("#")
        if not target:
            if base != self.root_path:
                raise ValueError(f"{base}: a local reference {ref} inside a referenced file is not supported")
            parts = pointer.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "components":
                self._want_internal(parts[1], parts[2])
            return ref
        path = _join(base, target)
        key = (path, pointer)
        if key not in self._external_names:
            folder = posixpath.basename(posixpath.dirname(path))
            kind = folder if folder in COMPONENT_KINDS else kind
            stem = posixpath.splitext(posixpath.basename(path))[0]
            name = stem + (pointer.replace("/", "_") if pointer else "")
            taken = self.components.setdefault(kind, {})
            unique, n = name, 2
            while unique in taken:
                unique, n = f"{name}_{n}", n + 1
            self._external_names[key] = (kind, unique)
            taken[unique] = {}  # reserve the name before recursing: schemas may refer to themselves
            value = _resolve_pointer(self.load(path), pointer)
            taken[unique] = self.localize(value, path, kind)
        kind, name = self._external_names[key]
        return f"#/components/{kind}/{name}"

    def _want_internal(self, kind: str, name: str) -> None:
        taken = self.components.setdefault(kind, {})
        if name in taken:
            return
        taken[name] = {}
        taken[name] = self.localize(self.root["components"][kind][name], self.root_path, kind)


def _join(base: str, relative: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), relative))


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in filter(None, pointer.split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def cut(fragment: Fragment, reader: Reader) -> dict[str, Any]:
    bundler = Bundler(reader, fragment.path)
    paths: dict[str, dict[str, Any]] = {}
    for path, method in fragment.operations:
        operation, shared = bundler.operation(path, method)
        paths.setdefault(path, {}).update(shared)
        paths[path][method] = operation
    root = bundler.root
    components = {kind: dict(sorted(entries.items())) for kind, entries in bundler.components.items() if entries}
    schemes_doc = bundler.load(fragment.security_schemes_from) if fragment.security_schemes_from else root
    schemes = (schemes_doc.get("components") or {}).get("securitySchemes")
    if schemes:
        components["securitySchemes"] = copy.deepcopy(schemes)
    source = {
        **reader.origin,
        "path": fragment.path,
        "operations": [f"{method.upper()} {path}" for path, method in fragment.operations],
        "refreshed": datetime.date.today().isoformat(),
        "by": "scripts/refresh-contracts.py",
    }
    if fragment.security_schemes_from:
        source["security-schemes-from"] = fragment.security_schemes_from
    document: dict[str, Any] = {
        "openapi": root["openapi"],
        "info": {"title": root["info"]["title"], "version": root["info"]["version"]},
        "x-contract-source": source,
        "servers": root.get("servers", []),
        "paths": paths,
        "components": components,
    }
    if "security" in root:
        document["security"] = root["security"]
    return document


def write(fragment: Fragment, document: dict[str, Any], reader: Reader) -> None:
    fragment.output.parent.mkdir(parents=True, exist_ok=True)
    source = document["x-contract-source"]
    header = (
        f"# Cut from {reader.locate(source['path'])}\n"
        "# by scripts/refresh-contracts.py: do not edit by hand, refresh instead.\n"
    )
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    fragment.output.write_text(header + text)


# -- Datadog's recorded answers ---------------------------------------------------------------------

# Where a recorded answer names the person who ran the workflow: (e-mail, name, uuid) keys of each object.
PERSON_KEYS = {"actingUser": ("userEmail", "userName", "userUuid"), "initiator": ("email", "name", "id")}
PLACEHOLDER_PERSON = ("someone@example.com", "Some One", "00000000-0000-0000-0000-0000000000aa")


def _anonymize(node: Any) -> bool:
    """The acting user's name, e-mail and uuid replaced by placeholders; whether there was one."""
    found = False
    if isinstance(node, list):
        for value in node:
            found = _anonymize(value) or found
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in PERSON_KEYS and isinstance(value, dict):
                value.update(zip(PERSON_KEYS[key], PLACEHOLDER_PERSON, strict=True))
                found = True
            else:
                found = _anonymize(value) or found
    return found


def convert(cassette: Cassette, reader: Reader) -> dict[str, Any]:
    """The cassette's one interaction as request (method, path, body) and response (status, body)."""
    recorded = yaml.safe_load(reader.read(cassette.path))
    (interaction,) = recorded["interactions"]
    sent, answered = interaction["request"], interaction["response"]
    request: dict[str, Any] = {"method": sent["method"], "path": urllib.parse.urlsplit(sent["uri"]).path}
    if sent.get("body"):
        request["body"] = json.loads(sent["body"])
    body = json.loads(answered["body"]["string"])
    changed = [cassette.note] if cassette.note else []
    if _anonymize(body):
        changed.append("the acting user's name, e-mail and uuid replaced by placeholders")
    source: dict[str, Any] = {**reader.origin, "path": cassette.path}
    if changed:
        source["changed"] = "; ".join(changed)
    return {"_source": source, "request": request, "response": {"status": answered["status"]["code"], "body": body}}


# -- choosing the sources ----------------------------------------------------------------------------


def _warn(message: str) -> None:
    # On stderr and on a line of its own, so that it stands out in a long CI log: those tests will only skip.
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendors", nargs="*", help="datadog, cloudflare, sailpoint (default: all)")
    parser.add_argument("--commit", action="append", default=[], metavar="OWNER/NAME=SHA")
    parser.add_argument("--git-dir", action="append", default=[], metavar="OWNER/NAME=PATH")
    parser.add_argument(
        "--from-registries",
        action="store_true",
        help="read the pinned registry release of each repository that ships its files in one (see REGISTRY_RELEASES)",
    )
    parser.add_argument("--if-missing", action="store_true", help="leave the files that are already there as they are")
    args = parser.parse_args(list(argv) if argv is not None else None)
    commits = dict(item.split("=", 1) for item in args.commit)
    git_dirs = dict(item.split("=", 1) for item in args.git_dir)
    readers: dict[str, Reader] = {}

    def reader_for(repository: str, branch: str) -> Reader:
        if repository not in readers:
            make: Callable[[], Reader]
            if repository in git_dirs:
                make = lambda: GitDirReader(repository, git_dirs[repository], commits.get(repository))  # noqa: E731
            elif args.from_registries:
                make = lambda: SdistReader.download(repository, REGISTRY_RELEASES[repository])  # noqa: E731
            elif repository in commits:
                make = lambda: GitHubReader(repository, commits[repository])  # noqa: E731
            else:
                make = lambda: GitHubReader.newest(repository, branch)  # noqa: E731
            readers[repository] = make()
        return readers[repository]

    chosen = [f for f in FRAGMENTS if not args.vendors or f.vendor in args.vendors]
    cassettes = [c for c in CASSETTES if not args.vendors or "datadog" in args.vendors]
    if args.if_missing:
        chosen = [f for f in chosen if not f.output.exists()]
        cassettes = [c for c in cassettes if not c.output.exists()]
    if args.from_registries:
        shipped = {*REGISTRY_RELEASES, *git_dirs}
        unshipped = sorted({f.vendor for f in chosen if f.repository not in shipped})
        for vendor in unshipped:
            print(
                f"{vendor}: its published document ships in no package on a registry reachable here; "
                f"its contract tests skip until `python scripts/refresh-contracts.py {vendor}` fetches it from GitHub"
            )
        chosen = [f for f in chosen if f.vendor not in unshipped]
    unreachable: set[str] = set()
    written = 0
    for fragment in chosen:
        try:
            reader = reader_for(fragment.repository, fragment.branch)
        except RegistryUnreachable as exc:
            unreachable.add(str(exc))
            continue
        document = cut(fragment, reader)
        write(fragment, document, reader)
        written += 1
        count = sum(len(item) for item in document["paths"].values())
        print(
            f"{fragment.output.relative_to(CONTRACTS.parent.parent)}: {count} entries from "
            f"{reader.locate(fragment.path)}"
        )
    for cassette in cassettes:
        try:
            reader = reader_for(CASSETTE_REPOSITORY, "master")
        except RegistryUnreachable as exc:
            unreachable.add(str(exc))
            continue
        cassette.output.parent.mkdir(parents=True, exist_ok=True)
        cassette.output.write_text(json.dumps(convert(cassette, reader), indent=2) + "\n")
        written += 1
        print(f"{cassette.output.relative_to(CONTRACTS.parent.parent)}: from {reader.locate(cassette.path)}")
    for problem in sorted(unreachable):
        _warn(f"could not fetch {problem}; the contract tests that need it skip")
    print(json.dumps({"written": written, "unreachable": sorted(unreachable)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
