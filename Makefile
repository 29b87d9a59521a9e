# Two commands matter: `make serve` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck pytest services tools deploy-tools deploy-check image install install-dev clean

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
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Authentication is what the environment configures (MCP_API_KEYS=... make serve); with none, the
# loopback demo serves open and says so once.
serve: install
	@echo "mcpserve demo: http://$(HOST):$(PORT)/mcp  (Ctrl-C to stop)"
	$(BIN)/mcpserve serve --host $(HOST) --port $(PORT)

services:
	@scripts/ensure-services.sh

# Node 22, the conformance suites, the JS clients and third-party MCP servers (npm and PyPI, each
# PyPI one in its own venv), project-local in .tools/ (git-ignored).
tools:
	@scripts/node-tools.sh >/dev/null
	@scripts/py-tools.sh

# nginx, Caddy and promtool for the deployment checks (apt, only when missing).
deploy-tools:
	@scripts/deploy-tools.sh

# Every offline validation of deploy/ (manifests for two Kubernetes versions, compose, hadolint,
# yamllint, nginx -t, caddy validate, promtool, the service-link start test): tests/deploy,
# which `make test` runs with the rest of the suite.
deploy-check: install-dev deploy-tools
	$(BIN)/pytest -q tests/deploy

# The container image (podman/buildah, installed when missing), smoke-tested as its user.
image: install-dev
	scripts/image.sh

lint: install-dev
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/ruff check src tests examples bench
	$(BIN)/lint-imports --no-logo --no-cache

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev services tools deploy-tools
	rm -f .coverage .coverage.*
	MCPSERVE_TEST_REQUIRE_TOOLS=1 $(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache build/image
