# Quickstart: `make demo` (a local registry, no server) and `make test` (the whole suite).
# Both need only python3 and pip: they build .venv and install into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_URI := sqlite:///.demo/mlflow.db

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime plus a local sqlite registry: what the demo needs, and no mlflow server.
$(VENV)/.local: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local]'
	touch $@

# Everything the tests need, including the real mlflow server they start.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.local

demo: $(VENV)/.local
	rm -rf .demo && mkdir .demo
	$(BIN)/python tests/seed.py demo $(DEMO_URI)
	$(BIN)/stagectl validate
	$(BIN)/stagectl plan --tracking-uri $(DEMO_URI)
	$(BIN)/stagectl apply --tracking-uri $(DEMO_URI)
	$(BIN)/stagectl plan --tracking-uri $(DEMO_URI) --detailed-exitcode

lint: $(VENV)/.dev
	$(BIN)/ruff check controller tests
	$(BIN)/mypy

# CI runs the long concurrency and fault loops in full.
PYTEST_ARGS ?= $(if $(CI),--slow,)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
