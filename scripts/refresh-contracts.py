#!/usr/bin/env python3
"""Refresh the vendor contract fragments under tests/contracts/ from the vendors' published OpenAPI documents.

Each fragment is a self-contained OpenAPI document holding only the operations this provider calls,
with every schema, parameter and response they reference, and an ``x-contract-source`` block naming
the repository, path and commit it was cut from. ``make test`` validates the hooks' requests and the
emulator's answers against these fragments offline; this script is the only part that needs the
network, and it is never run in CI.

    python scripts/refresh-contracts.py                 # every fragment, newest commit of each repository
    python scripts/refresh-contracts.py sailpoint       # one vendor
    python scripts/refresh-contracts.py --commit sailpoint-oss/api-specs=81ef79d0...   # a pinned commit
    python scripts/refresh-contracts.py --git-dir sailpoint-oss/api-specs=/path/to/clone  # no network

Review the diff before committing it: a change in a fragment is a change in a vendor's contract, and
the emulator or the hooks may have to follow it.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import posixpath
import subprocess
import sys
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

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")


Reader = GitHubReader | GitDirReader


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
        "repository": fragment.repository,
        "path": fragment.path,
        "commit": reader.commit,
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


def write(fragment: Fragment, document: dict[str, Any]) -> None:
    fragment.output.parent.mkdir(parents=True, exist_ok=True)
    source = document["x-contract-source"]
    header = (
        f"# Cut from https://github.com/{source['repository']}/blob/{source['commit']}/{source['path']}\n"
        "# by scripts/refresh-contracts.py: do not edit by hand, refresh instead.\n"
    )
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    fragment.output.write_text(header + text)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendors", nargs="*", help="datadog, cloudflare, sailpoint (default: all)")
    parser.add_argument("--commit", action="append", default=[], metavar="OWNER/NAME=SHA")
    parser.add_argument("--git-dir", action="append", default=[], metavar="OWNER/NAME=PATH")
    args = parser.parse_args(list(argv) if argv is not None else None)
    commits = dict(item.split("=", 1) for item in args.commit)
    git_dirs = dict(item.split("=", 1) for item in args.git_dir)
    readers: dict[str, Reader] = {}

    def reader_for(fragment: Fragment) -> Reader:
        repository = fragment.repository
        if repository not in readers:
            make: Callable[[], Reader]
            if repository in git_dirs:
                make = lambda: GitDirReader(repository, git_dirs[repository], commits.get(repository))  # noqa: E731
            elif repository in commits:
                make = lambda: GitHubReader(repository, commits[repository])  # noqa: E731
            else:
                make = lambda: GitHubReader.newest(repository, fragment.branch)  # noqa: E731
            readers[repository] = make()
        return readers[repository]

    chosen = [f for f in FRAGMENTS if not args.vendors or f.vendor in args.vendors]
    for fragment in chosen:
        reader = reader_for(fragment)
        document = cut(fragment, reader)
        write(fragment, document)
        count = sum(len(item) for item in document["paths"].values())
        print(
            f"{fragment.output.relative_to(CONTRACTS.parent.parent)}: {count} entries from "
            f"{fragment.repository}@{reader.commit[:12]}:{fragment.path}"
        )
    print(json.dumps({"fragments": len(chosen)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
