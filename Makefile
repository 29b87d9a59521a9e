# Two commands matter: `make serve` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck pytest services tools obs-tools install install-dev clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "mcpserve needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

serve: install
	@echo "mcpserve demo: http://$(HOST):$(PORT)/mcp  (Ctrl-C to stop)"
	$(BIN)/mcpserve serve --auth none --host $(HOST) --port $(PORT)

services:
	@scripts/ensure-services.sh

# Node 22, the conformance suites and the JS clients, project-local in .tools/ (git-ignored).
tools:
	@scripts/node-tools.sh >/dev/null

# promtool and chromium from Debian, for the alert-rule and operator-console tests.
obs-tools:
	@scripts/ensure-observability-tools.sh

lint: install-dev
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/ruff check src tests examples bench

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev services tools obs-tools
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
