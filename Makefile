# Two entry points for a newcomer: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv is installed with pip when missing; it is run as a module so that no PATH change is needed.
UV := $(PYTHON) -m uv

.PHONY: venv test demo lint docs clean test-matrix test-matrix-ui bench bench-smoke e2e e2e-celery system-deps live

$(BIN)/python:
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# The package (editable) and the tools of the `dev` dependency group (tests, lint, types, docs) from pyproject.toml.
venv: $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -e . --group dev

# The vendors' published documents that a package registry ships (CI reaches registries, not GitHub) are fetched
# once into tests/contracts/ (ignored by git) for the contract tests; without network those tests skip, with a warning.
test: venv
	$(BIN)/ruff check airflow_workflow_provider tests example_dags docs
	$(BIN)/mypy
	$(MAKE) --no-print-directory docs
	$(BIN)/python scripts/refresh-contracts.py --from-registries --if-missing
	$(BIN)/python -m pytest -q

# The documentation site in docs/_build/html; every Sphinx warning is an error. Offline: no intersphinx.
docs: venv
	$(BIN)/python -m sphinx -W --keep-going -q -b html -d docs/_build/doctrees docs docs/_build/html

demo: venv
	$(BIN)/python -m airflow_workflow_provider.testing.demo

# Against your own tenants (never in CI): AWP_LIVE_<VENDOR>_... variables, see docs/live-check.md.
live: venv
	$(BIN)/python -m airflow_workflow_provider.testing.live

# System packages the browser test and the production-shaped deployment need (Chromium, PostgreSQL, Redis).
system-deps:
	bash scripts/ci-system-deps.sh

# A real deployment (scheduler, triggerer, dag-processor, api-server on 127.0.0.1), the UI in Chromium, the wheel.
e2e: venv
	$(UV) pip install --quiet --python $(BIN)/python -e . --group dev --group e2e
	$(BIN)/python -m pytest -q -m "e2e or browser" tests/e2e

# The production shape: PostgreSQL, CeleryExecutor on Redis (two workers), two triggerers, on 127.0.0.1; every
# example DAG, triggerer failover (reports/deployment.md) and a killed Celery worker. Needs `make system-deps`.
# -s: the tests' few lines (boot time, takeover time, worker loss) belong in the CI log.
e2e-celery: venv
	$(UV) pip install --quiet --python $(BIN)/python -e . --group dev --group e2e
	$(BIN)/python -m pytest -q -s -m e2e_celery tests/e2e

# Every Airflow 3 minor (newest patch) on the oldest and newest Python it supports, one venv each under .matrix/,
# one at a time: reports/version-matrix.md. 5 to 15 minutes a cell (MATRIX_TESTS narrows the tests).
test-matrix:
	bash scripts/test-matrix.sh unit

# The connection forms and their Test button in Chromium on every Airflow 3 minor (a deployment each, about
# 4 minutes a minor; needs `make system-deps`): reports/version-matrix-ui.md.
test-matrix-ui:
	bash scripts/test-matrix.sh ui

# Installs what it needs itself (the `bench` group: the HttpSensor baseline's provider, psutil).
bench: venv
	$(UV) pip install --quiet --python $(BIN)/python -e . --group bench
	$(BIN)/python -m benchmarks.run

# A short run of every benchmark section (seconds, small numbers, no goals): keeps them from rotting; .ci/run runs it.
bench-smoke: venv
	$(UV) pip install --quiet --python $(BIN)/python -e . --group bench
	$(BIN)/python -m benchmarks.run --smoke --report reports/benchmarks-smoke.md

lint: venv
	$(BIN)/ruff check airflow_workflow_provider tests example_dags docs
	$(BIN)/mypy

clean:
	rm -rf $(VENV) airflow-home .matrix reports/ui docs/_build
