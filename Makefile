# Tourline: `make serve` installs and starts the server; `make test` installs the test tools
# and runs every test. Both use a virtualenv in .venv (override with VENV=...).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: serve install install-test browser proxy test lint bench chat

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

serve: install
	$(BIN)/tourline serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian's headless Chromium for the browser tests (Playwright drives /usr/bin/chromium;
# nothing is downloaded from anywhere but the Debian archive).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# mypy (config in pyproject.toml: strict on app/ and agents/) between ruff and pytest, so a
# type error fails the run; its cache in .mypy_cache keeps repeat runs to a few seconds.
# Two pytest workers (TEST_WORKERS=1 for one): the slow tests are whole calls that mostly
# wait on real time, so two of them share two cores well. --dist loadscope keeps a module's
# tests (and its server) on one worker.
TEST_WORKERS ?= 2
# Debian's Caddy for the load-balancer tests of deploy/Caddyfile (same archive, no downloads).
proxy:
	@command -v caddy >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq caddy >/dev/null; }

test: install-test browser proxy lint
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=15

chat: install
	$(BIN)/tourline chat

bench: install
	$(BIN)/python bench/planner.py
