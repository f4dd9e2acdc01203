"""The package as users get it: sdist and wheel from ``python -m build``, the wheel installed into a fresh venv.

The fresh venv is made with uv and pinned to the versions of the development venv (a constraints file from
``uv pip freeze``), so it installs Airflow and our dependencies from uv's cache and only what the wheel asks
for: no test extras.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.support import REPO, clean_environment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NAME = "airflow-workflow-provider"
# The one source of the version (pyproject.toml reads it too).
VERSION = re.search(r'__version__ = "([^"]+)"', (REPO / "airflow_workflow_provider/__init__.py").read_text())[1]
DIST_INFO = f"airflow_workflow_provider-{VERSION}.dist-info"
# The emulator's default fake credentials (testing/emulator/state.py, EmulatorCredentials).
EMULATOR_CREDENTIALS = (
    "dd-api-key-emulator",
    "dd-app-key-emulator",
    "cf-token-emulator",
    "cf-global-key-emulator",
    "sp-secret-emulator",
)
# The one module allowed to carry them: the emulator that accepts them, and only on loopback.
EMULATOR_MODULE = "airflow_workflow_provider/testing/emulator/state.py"
# Shapes of real credentials: Datadog API (32 hex) / application (40 hex) keys, Cloudflare API tokens (40
# url-safe characters), assigned to a key, token, secret or password name.
SECRET_ASSIGNMENT = re.compile(
    r"""(?i)(api_?key|app(lication)?_?key|token|secret|password)\w*["']?\s*[:=]\s*["']"""
    r"""(?!023e105f4ecef8ad9ca31a8372d0c353)([0-9a-f]{32}|[0-9a-f]{40}|[A-Za-z0-9_\-]{40})["']"""
)
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 600


def _missing(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"packaging tests cannot run in CI: {problem}")
    pytest.skip(problem)


def _uv() -> list[str]:
    """How to run uv here: the executable, or the module of the interpreter that made the venv (as make does)."""
    if found := shutil.which("uv"):
        return [found]
    for python in (sys.executable, shutil.which("python3")):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    _missing("uv is not installed (python3 -m pip install uv)")
    raise AssertionError("unreachable")


def _run(command: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@dataclass
class Dist:
    wheel: Path
    sdist: Path
    wheel_files: dict[str, bytes]
    sdist_files: dict[str, bytes]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    try:
        import build  # noqa: F401
    except ImportError:
        _missing("`build` is not installed in the venv (it belongs in the test extras)")
    out = tmp_path_factory.mktemp("dist")
    env = {**clean_environment(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # No --sdist/--wheel: build makes the sdist, then the wheel from the sdist, so the sdist must be complete.
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], BUILD_TIMEOUT, env=env)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    with tarfile.open(sdist) as archive:
        sdist_files = {
            member.name.split("/", 1)[1]: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
    return Dist(wheel, sdist, wheel_files, sdist_files)


def test_build_makes_an_sdist_and_a_wheel(dist: Dist) -> None:
    assert dist.wheel.name == f"airflow_workflow_provider-{VERSION}-py3-none-any.whl"
    assert dist.sdist.name == f"airflow_workflow_provider-{VERSION}.tar.gz"
    assert "airflow_workflow_provider/__init__.py" in dist.wheel_files
    assert "airflow_workflow_provider/py.typed" in dist.wheel_files
    assert {"README.md", "pyproject.toml", "airflow_workflow_provider/__init__.py"} <= set(dist.sdist_files)


def test_sdist_carries_tests_examples_and_docs(dist: Dist) -> None:
    """Enough to build, test and document the release from the sdist alone, as distribution packagers do."""
    names = set(dist.sdist_files)
    for required in ("CHANGELOG.md", "LICENSE", "Makefile", "docs/conf.py", "docs/index.md", "tests/conftest.py"):
        assert required in names, required
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "tests", "example_dags", "docs"], capture_output=True, text=True
    ).stdout.split()
    missing = [name for name in tracked if name not in names and (REPO / name).exists()]
    assert not missing, missing
    assert not [n for n in names if n.startswith("docs/_build/")]


def test_wheel_holds_only_the_package(dist: Dist) -> None:
    outside = [n for n in dist.wheel_files if not n.startswith(("airflow_workflow_provider/", f"{DIST_INFO}/"))]
    assert not outside, outside
    assert not [n for n in dist.wheel_files if n.startswith(("tests/", "example_dags/")) or "/tests/" in n]
    # The example DAGs ship inside the package, for the demo of an installed wheel.
    examples = sorted(p.name for p in (REPO / "example_dags").glob("example_*.py"))
    shipped = sorted(
        n.rsplit("/", 1)[1] for n in dist.wheel_files if n.startswith("airflow_workflow_provider/testing/example_dags/")
    )
    assert shipped == examples
    for files in (dist.wheel_files, dist.sdist_files):
        assert not [n for n in files if n.endswith((".pyc", ".db", ".cfg")) or "__pycache__" in n]


def test_no_example_secrets_outside_the_emulator(dist: Dist) -> None:
    for label, files in (("wheel", dist.wheel_files), ("sdist", dist.sdist_files)):
        holders = {
            name for name, data in files.items() for credential in EMULATOR_CREDENTIALS if credential.encode() in data
        }
        # The emulator ships in the package on purpose (README: "Testing your own DAGs offline"), with fake
        # credentials it accepts on loopback only; no other file may carry them (docs, metadata, hooks), but
        # the sdist's tests, which check that they never leak.
        others = {name for name in holders if not (label == "sdist" and name.startswith("tests/"))}
        assert others <= {EMULATOR_MODULE}, (label, sorted(others))
        found = [
            f"{name}: {match.group(0)}"
            for name, data in files.items()
            for match in SECRET_ASSIGNMENT.finditer(data.decode("utf-8", errors="replace"))
        ]
        assert not found, (label, found)


def test_metadata_long_description_is_the_readme(dist: Dist) -> None:
    metadata = email.message_from_bytes(dist.wheel_files[f"{DIST_INFO}/METADATA"], policy=email.policy.compat32)
    assert metadata["Name"] == NAME
    assert metadata["Version"] == VERSION
    assert metadata["Description-Content-Type"] == "text/markdown"
    readme = (REPO / "README.md").read_text()
    assert metadata.get_payload().strip() == readme.strip()
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.replace(" ", "").startswith("apache-airflow>=3.0.0") for r in requires), requires
    # Test and dev tools are dependency groups of the source tree, never requirements of the package.
    assert not [r for r in requires if r.startswith(("pytest", "ruff", "mypy", "sphinx"))], requires
    openlineage = [r for r in requires if r.startswith("apache-airflow-providers-openlineage")]
    assert openlineage and all("openlineage" in r.split("extra ==")[1] for r in openlineage), requires
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}, urls
    classifiers = metadata.get_all("Classifier") or []
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)} <= set(classifiers)
    assert "airflow-provider" in (metadata["Keywords"] or "").split(",")
    assert metadata["Maintainer"] or metadata["Maintainer-email"]
    pkg_info = email.message_from_bytes(dist.sdist_files["PKG-INFO"], policy=email.policy.compat32)
    assert pkg_info["Name"] == NAME and pkg_info.get_payload().strip() == readme.strip()


def test_wheel_registers_the_provider_entry_point(dist: Dist) -> None:
    entry_points = dist.wheel_files[f"{DIST_INFO}/entry_points.txt"].decode()
    expected = r"(?m)^\[apache_airflow_provider\]\s*\nprovider_info = airflow_workflow_provider:get_provider_info$"
    assert re.search(expected, entry_points), entry_points


@pytest.fixture(scope="module")
def fresh_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only the wheel (and what it requires) installed, pinned to the dev venv's versions."""
    uv = _uv()
    work = tmp_path_factory.mktemp("fresh-venv")
    venv = work / "venv"
    env = clean_environment()
    frozen = _run([*uv, "pip", "freeze", "--python", sys.executable], 120, env=env).stdout
    # Pins for everything but ourselves (installed editable in the dev venv).
    pins = [line for line in frozen.splitlines() if line and not line.startswith(("-e ", NAME, "airflow_workflow"))]
    constraints = work / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    _run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], 120, env=env)
    python = venv / "bin" / "python"
    _run(
        [*uv, "pip", "install", "--quiet", "--python", str(python), "--constraint", str(constraints), str(dist.wheel)],
        INSTALL_TIMEOUT,
        env=env,
    )
    return venv


def test_wheel_installs_and_imports_in_a_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    python = fresh_venv / "bin" / "python"
    probe = """
import importlib.metadata as md, importlib.util, json
import airflow_workflow_provider
eps = [ep for ep in md.entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_workflow")]
info = eps[0].load()()
print(json.dumps({
    "file": airflow_workflow_provider.__file__,
    "entry_points": [ep.value for ep in eps],
    "package": info["package-name"],
    "conn_types": [c["connection-type"] for c in info["connection-types"]],
    "pytest": importlib.util.find_spec("pytest") is not None,
    "airflow": md.version("apache-airflow"),
}))
"""
    # Run outside the repository, so that the import cannot come from the work tree.
    result = _run([str(python), "-c", probe], 120, cwd=tmp_path, env=clean_environment())
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["file"].startswith(str(fresh_venv)), seen
    assert seen["entry_points"] == ["airflow_workflow_provider:get_provider_info"], seen
    assert seen["package"] == NAME
    assert seen["conn_types"] == ["datadog_workflows", "cloudflare_workflows", "sailpoint_workflows"]
    assert seen["pytest"] is False, "the test extras must not be installed with the wheel"


def test_airflow_in_the_fresh_venv_discovers_the_provider(fresh_venv: Path, tmp_path: Path) -> None:
    env = {**clean_environment(), "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = _run([str(fresh_venv / "bin" / "airflow"), "providers", "hooks", "-o", "json"], 180, cwd=tmp_path, env=env)
    hooks = {hook["connection_type"]: hook for hook in json.loads(result.stdout)}
    for conn_type in ("datadog_workflows", "cloudflare_workflows", "sailpoint_workflows"):
        assert hooks[conn_type]["package_name"] == NAME, hooks.get(conn_type)


def test_airflow_shows_the_documentation_link(fresh_venv: Path, tmp_path: Path) -> None:
    env = {**clean_environment(), "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    command = [str(fresh_venv / "bin" / "airflow"), "providers", "get", NAME, "--full", "-o", "json"]
    shown = json.loads(_run(command, 180, cwd=tmp_path, env=env).stdout)
    [provider] = shown if isinstance(shown, list) else [shown]
    assert provider["documentation-url"] == "https://airflow-workflow-provider.readthedocs.io/", provider
    assert VERSION in provider["versions"], provider


def test_demo_runs_honestly_from_the_installed_wheel(fresh_venv: Path, tmp_path: Path) -> None:
    """The wheel's demo finds the example DAGs it ships, works in its own home and writes nothing into the venv."""
    python = fresh_venv / "bin" / "python"
    command = [
        str(python),
        "-m",
        "airflow_workflow_provider.testing.demo",
        "--dag-id",
        "example_cloudflare_run_workflow",
    ]
    result = _run(command, 900, cwd=tmp_path, env=clean_environment())

    assert "every outcome as expected (the hooks and 1 example DAG(s))" in result.stdout, result.stdout[-3000:]
    [source] = [line for line in result.stdout.splitlines() if line.startswith("example DAGs from ")]
    assert source.endswith("airflow_workflow_provider/testing/example_dags") and str(fresh_venv) in source
    assert not list(fresh_venv.rglob("airflow-home")), "the demo must not write into site-packages"
    assert not list(tmp_path.iterdir()), "nor into the directory it was started from"
