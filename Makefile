# Two entry points: `make run` (set up + the main job on demo data) and `make test`.
# Only Python 3.11 and pip are assumed; everything else is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test setup system-deps lint benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || ($(PYTHON) -m pip install --user virtualenv && $(PYTHON) -m virtualenv $(VENV))

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/churn demo

# system packages the tests drive for real: headless Chromium for the report, a PostgreSQL
# server for the database tests (one after the other: both take apt's lock)
system-deps:
	bash .ci/install-system-deps
	bash .ci/install-postgres

test: setup system-deps
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check features models pipelines tests notebooks
	$(BIN)/ruff format --check features models pipelines tests notebooks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .prefect data/raw/demo data/outputs/demo data/mlflow
