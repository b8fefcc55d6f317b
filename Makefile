# otpservice: `make run` starts the sandbox, `make test` runs the suite. Both set up .venv themselves, from the
# lock files in requirements/ (exact versions and hashes): `make run` with the service's, `make test` adding the
# test tools.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Hash-checked: pip refuses anything the lock does not list, or whose file differs from the one locked.
LOCKED := $(PIP) install --require-hashes
SERVICE_STAMP := $(VENV)/.service-installed
TEST_STAMP := $(VENV)/.test-installed
UV_VERSION := 0.13.9
LOCK := $(BIN)/uv pip compile --universal --python-version 3.10 --generate-hashes --quiet
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run sim serve test lint bench lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(SERVICE_STAMP): requirements/build.txt requirements/service.txt setup.cfg pyproject.toml
	@echo "==> otpservice: creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> otpservice: installing the service's locked dependencies (first run only, about half a minute)"
	@$(LOCKED) -r requirements/build.txt -r requirements/service.txt
	@echo "==> otpservice: installing otpservice itself (editable: the checkout is what runs)"
	@$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(TEST_STAMP): $(SERVICE_STAMP) requirements/test.txt
	@echo "==> otpservice: installing the test tools (locked)"
	@$(LOCKED) -r requirements/build.txt -r requirements/test.txt
	@touch $@

venv: $(TEST_STAMP) ## create .venv with the service and its test tools

run: $(SERVICE_STAMP) ## the sandbox: service on :8080 + Telnyx simulator on :8081, embedded store, no account
	@$(BIN)/otpservice run

sim: $(SERVICE_STAMP) ## the Telnyx simulator alone (OTP_SIM_PORT, default 8081)
	@$(BIN)/otpservice sim

serve: $(SERVICE_STAMP) ## the service under gunicorn (production settings from the environment)
	@$(BIN)/otpservice serve

test: $(TEST_STAMP) ## run the test suite (starts its own redis-server on a free port)
	@command -v redis-server >/dev/null || { echo "make test needs redis-server on PATH (Debian: apt-get install redis-server)"; exit 1; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(TEST_STAMP) ## benchmark against the floor (1, 2, 4 workers; own redis-server; installs wrk if root)
	@command -v redis-server >/dev/null || { echo "make bench needs redis-server on PATH (Debian: apt-get install redis-server)"; exit 1; }
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(TEST_STAMP) ## static checks: ruff, and the layers contract of setup.cfg (import-linter)
	$(BIN)/ruff check otpservice tests bench examples
	$(BIN)/lint-imports --no-cache

# The build backend's requirements come from pyproject.toml's [build-system] (tests/unit/test_locks.py holds the
# three files to setup.cfg and pyproject.toml).
lock: $(SERVICE_STAMP) ## re-resolve requirements/*.txt after a dependency changes in setup.cfg (needs PyPI)
	@$(PIP) install --quiet uv==$(UV_VERSION)
	$(LOCK) setup.cfg -o requirements/service.txt
	$(LOCK) setup.cfg --extra test -o requirements/test.txt
	$(BIN)/python -c "import re; print('\n'.join(re.findall(r'\"([^\"]+)\"', re.search(r'requires = \[(.*?)\]', open('pyproject.toml').read()).group(1))))" \
	    | $(LOCK) - -o requirements/build.txt

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
