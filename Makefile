# otpservice: `make run` starts the sandbox, `make test` runs the suite. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run sim serve test lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP) ## create .venv and install the service with its test tools

run: $(STAMP) ## the sandbox: service on :8080 + Telnyx simulator on :8081, embedded store, no account
	$(BIN)/otpservice run

sim: $(STAMP) ## the Telnyx simulator alone (OTP_SIM_PORT, default 8081)
	$(BIN)/otpservice sim

serve: $(STAMP) ## the service under gunicorn (production settings from the environment)
	$(BIN)/otpservice serve

test: $(STAMP) ## run the test suite (starts its own redis-server on a free port)
	@command -v redis-server >/dev/null || { echo "make test needs redis-server on PATH (Debian: apt-get install redis-server)"; exit 1; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) ## benchmark against the floor (1, 2, 4 workers; own redis-server; installs wrk if root)
	@command -v redis-server >/dev/null || { echo "make bench needs redis-server on PATH (Debian: apt-get install redis-server)"; exit 1; }
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(STAMP) ## static checks: ruff, and the layers contract of setup.cfg (import-linter)
	$(BIN)/ruff check otpservice tests bench examples
	$(BIN)/lint-imports --no-cache

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
