# Two entry points for a newcomer: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null)

.PHONY: venv test demo lint clean

$(BIN)/python:
	@if [ -z "$(UV)" ]; then $(PYTHON) -m pip install --quiet uv; fi
	$(PYTHON) -m uv venv --quiet --allow-existing --python $(PYTHON) $(VENV) 2>/dev/null || uv venv --quiet --allow-existing --python $(PYTHON) $(VENV)

venv: $(BIN)/python
	VIRTUAL_ENV=$(VENV) $(PYTHON) -m uv pip install --quiet -e ".[test]" 2>/dev/null || VIRTUAL_ENV=$(VENV) uv pip install --quiet -e ".[test]"

test: venv
	$(BIN)/ruff check airflow_workflow_provider tests example_dags
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/python -m airflow_workflow_provider.testing.demo

lint: venv
	$(BIN)/ruff check airflow_workflow_provider tests example_dags

clean:
	rm -rf $(VENV) airflow-home reports/*.tmp
