# Quickstart: `make demo` (a local registry, no server) and `make test` (the whole suite).
# Both need only python3 and pip: they build .venv and install into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_URI := sqlite:///.demo/mlflow.db

.PHONY: demo test test-servers lint bench packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime plus a local sqlite registry: what the demo needs, and no mlflow server.
$(VENV)/.local: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e '.[local]'
	touch $@

# Everything the tests need, including the real mlflow server they start.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat -e '.[dev]'
	touch $@ $(VENV)/.local

demo: $(VENV)/.local
	rm -rf .demo && mkdir .demo
	$(BIN)/python tests/seed.py demo $(DEMO_URI)
	$(BIN)/stagectl validate
	$(BIN)/stagectl plan --tracking-uri $(DEMO_URI)
	$(BIN)/stagectl apply --tracking-uri $(DEMO_URI)
	$(BIN)/stagectl plan --tracking-uri $(DEMO_URI) --detailed-exitcode

# The end-to-end tests and the benchmark also run mlflow on PostgreSQL, the lease tests skew clocks with
# libfaketime, and the propose workflow's script uses jq (as GitHub's runners have it): Debian's packages,
# when missing.
packages:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; } \
		&& ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || { \
		echo "Installing Debian's postgresql, faketime and jq packages"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql faketime jq >/dev/null; }

lint: $(VENV)/.dev
	$(BIN)/ruff check controller tests bench
	$(BIN)/mypy

# CI runs the long concurrency and fault loops in full.
PYTEST_ARGS ?= $(if $(CI),--slow,)

# The slowest tests are listed at the end: the suite's time is a budget CI keeps.
test: lint packages
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# The older MLflow servers the --slow tests run against, built once into ~/.cache/stagectl-test-servers
# (the tests build them on first use too; this only does it ahead).
test-servers: $(VENV)/.dev
	$(BIN)/python -c "from tests.servers import OLD_SERVERS, server_venv; [print(server_venv(v)) for v in OLD_SERVERS]"

# Switch each safety mechanism off in a copy of the sources and check that its tests fail (add ARGS=--e2e).
mutations: $(VENV)/.dev packages
	$(BIN)/python -m tests.mutations $(ARGS)

# stagectl against what users would write instead, on real servers (sqlite and PostgreSQL): bench/results.json
# (ARGS=--only apply runs only the promotion waves, keeping the other cases' last results).
bench: $(VENV)/.dev packages
	$(BIN)/python -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
