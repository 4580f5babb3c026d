# Tourline: `make serve` installs and starts the server; `make test` installs the test tools
# and runs every test. Both use a virtualenv in .venv (override with VENV=...).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: serve install install-test test lint bench chat

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

test: install-test lint
	$(BIN)/pytest -q

chat: install
	$(BIN)/tourline chat

bench: install
	$(BIN)/python bench/planner.py
