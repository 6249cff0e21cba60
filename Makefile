# ecocase: a newcomer needs two commands.
#
#   make run     build the runtime env from requirements/main.lock (when needed) and serve the API
#                on the embedded default: SQLite in ./var, no other service
#   make test    build the dev env from requirements/dev.lock (when needed), then ruff check,
#                ruff format --check, mypy (strict, configured in pyproject.toml) and pytest
#
# Bootstrap: uv $(UV_VERSION) is taken from PATH when that exact version is there, otherwise it is
# installed with pip into .venv-tools. The project env is .venv; it is re-synced only when its lock
# or pyproject.toml changed (stamp files inside .venv). Needs python3 = Python 3.11 and make.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin
STAMP_MAIN := $(VENV)/.synced-main
STAMP_DEV := $(VENV)/.synced-dev
LOCK_FLAGS := --no-emit-index-url --no-header --python-version 3.11

PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=

# uv never fetches an interpreter of its own (the env is built on the machine's python3), and it
# trusts the system's certificate store, as pip does here.
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1

# uv: the pinned version from PATH if present, else the one in .venv-tools (built on demand).
UV_ON_PATH_VERSION := $(shell uv --version 2>/dev/null | cut -d' ' -f2)
ifeq ($(UV_ON_PATH_VERSION),$(UV_VERSION))
UV := uv
UV_DEP :=
else
UV := $(TOOLS)/bin/uv
UV_DEP := $(TOOLS)/.uv-$(UV_VERSION)
endif

# A .venv whose interpreter is gone or is not 3.11 is rebuilt.
VENV_OK := $(shell $(BIN)/python -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null)
ifneq ($(VENV_OK),True)
$(VENV)/pyvenv.cfg: FORCE
endif

.PHONY: help run test bench lock clean env dev-env FORCE
FORCE:

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: $(STAMP_MAIN) ## serve the API on SQLite in ./var (RUN_ARGS="--host 0.0.0.0 --port 8000")
	ECOCASE_STORE=sqlite ECOCASE_DATA_DIR=var ECOCASE_REDIS_URL= \
	ECOCASE_LOG_FORMAT="$${ECOCASE_LOG_FORMAT:-console}" \
	$(BIN)/ecocase serve $(RUN_ARGS)

test: $(STAMP_DEV) ## ruff check, ruff format --check, mypy, pytest -n 2 (PYTEST_ARGS=...)
	@failed=(); \
	step() { printf '\n==> %s\n' "$$*"; "$$@"; }; \
	step $(BIN)/ruff check . || failed+=("ruff check"); \
	step $(BIN)/ruff format --check . || failed+=("ruff format --check"); \
	step $(BIN)/mypy || failed+=("mypy"); \
	rc=0; step $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "make test: pytest collected no tests (exit 5): that is a failure, not a pass" >&2; \
	  failed+=("pytest: no tests collected"); \
	elif [ $$rc -ne 0 ]; then \
	  failed+=("pytest (exit $$rc)"); \
	fi; \
	if [ $${#failed[@]} -ne 0 ]; then \
	  printf '\nmake test: FAILED:' >&2; printf ' [%s]' "$${failed[@]}" >&2; echo >&2; exit 1; \
	fi

bench: $(STAMP_DEV) ## run the benchmarks: python -m bench (BENCH_ARGS=...)
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: bench-full
bench-full: $(STAMP_DEV) ## the benchmarks with the 1M-event store; writes bench/results/latest.md
	$(BIN)/python -m bench --full $(BENCH_ARGS)

lock: $(UV_DEP) ## recompile requirements/*.lock from *.in (UPGRADE=1 to move to newer releases)
	$(UV) pip compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) \
	  requirements/main.in -o requirements/main.lock
	$(UV) pip compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) \
	  requirements/dev.in -o requirements/dev.lock
	@# The dev env stands in for the runtime env, so dev.lock must hold every runtime pin as is.
	@drift=$$(grep -E '^[A-Za-z0-9]' requirements/main.lock \
	  | grep -vxF -f <(grep -E '^[A-Za-z0-9]' requirements/dev.lock) || true); \
	if [ -n "$$drift" ]; then \
	  echo "make lock: dev.lock does not pin these as main.lock does:" >&2; \
	  echo "$$drift" >&2; exit 1; \
	fi

clean: ## remove the envs and caches (keeps ./var, the local data and secret)
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

env: $(STAMP_MAIN) ## only build the runtime env
dev-env: $(STAMP_DEV) ## only build the dev env

# --- bootstrap -------------------------------------------------------------------------------

$(TOOLS)/.uv-$(UV_VERSION):
	@echo "==> installing uv $(UV_VERSION) into $(TOOLS)"
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	@touch $@

$(VENV)/pyvenv.cfg: | $(UV_DEP)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "make: '$(PYTHON)' is not Python 3.11 (the locks are compiled for 3.11);" \
	       "run with PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(UV) venv --clear --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')" $(VENV)

# The runtime env: exactly main.lock plus the project (editable). hatchling is not in main.lock,
# so the project is built in an isolated build env pinned by dev.lock.
$(STAMP_MAIN): requirements/main.lock pyproject.toml $(VENV)/pyvenv.cfg | $(UV_DEP)
	@rm -f $(STAMP_MAIN) $(STAMP_DEV)
	$(UV) pip sync --python $(BIN)/python requirements/main.lock
	$(UV) pip install --python $(BIN)/python --no-deps --build-constraints requirements/dev.lock -e .
	@touch $@

# The dev env: dev.lock (a superset of main.lock, same pins) plus the project (editable, built
# with the locked hatchling). It satisfies the runtime env too, so both stamps are set.
$(STAMP_DEV): requirements/dev.lock requirements/main.lock pyproject.toml $(VENV)/pyvenv.cfg | $(UV_DEP)
	@rm -f $(STAMP_MAIN) $(STAMP_DEV)
	$(UV) pip sync --python $(BIN)/python requirements/dev.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@ $(STAMP_MAIN)
