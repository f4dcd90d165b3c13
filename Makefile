# `make start` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: start test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,redis,postgres]'
	touch $@

# The Procfile's commands (gunicorn, celery) come from the venv.
start: export PATH := $(abspath $(BIN)):$(PATH)
# `robotni start` runs the Procfile with honcho, its worker line once per queue the worker types declare. A root
# worker runs jobs as nobody; where nobody cannot run this venv's Python (a pyenv under /root) it keeps jobs as root
# for a development stack, and says so. Deployments: docs/security.md.
# A person reads this console, and honcho's pipes are no terminal (`auto` would pick JSON): text lines.
start: export ROBOTNI_LOG_FORMAT ?= text
start: $(VENV)/.installed
	$(BIN)/robotni start

# Test files run on two processes at once (their tests mostly wait on real workers); the tests that restart the
# shared Redis and PostgreSQL run after them, alone. A plain `pytest` runs everything in one process.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not exclusive"
	$(BIN)/python -m pytest -m exclusive

lint: $(VENV)/.installed
	$(BIN)/ruff check robotni tests bench celeryconfig.py
	$(BIN)/ruff format --check robotni tests bench celeryconfig.py
	$(BIN)/lint-imports
	$(BIN)/mypy

# The benchmark brings what it measures with: the peers (the `bench` extra) and h2load (Debian's nghttp2-client,
# so that the submit rate measures the API, not a Python client; installed when root and missing).
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,redis,postgres,bench]'
	touch $@

bench: $(VENV)/.installed $(VENV)/.bench-installed
	@command -v h2load >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y nghttp2-client \
		|| (apt-get update && apt-get install -y nghttp2-client)
	$(BIN)/python -m bench

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on any warning, such as a broken link.
.PHONY: docs
$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/mkdocs build --strict --site-dir site
