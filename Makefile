# Customer Health Workflows. `make demo` and `make test` are the two commands a new
# user needs; both set up the environment first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
# Never let uv fetch a Python build from outside the package registry.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/uv/bin/uv)
VENV := .venv/bin
# make test runs the suite in this many pytest-xdist workers, a test file per worker (its
# module fixtures, such as a history of nights, are built once); 0 runs it in one process.
PYTEST_WORKERS ?= 3

.PHONY: setup demo test test-server lint bench clean help

help:
	@echo "make demo   set up, then generate sample exports and run a few nights (chw demo)"
	@echo "make test   set up, then run the test suite against an embedded PostgreSQL"
	@echo "make lint   ruff (Python; sqlfluff cannot render the dbt macros offline, see DEVELOPERS.md)"
	@echo "make bench  benchmarks: generator, loader, dbt, reports, raw volume check"
	@echo "make setup  create .venv from uv.lock (brings its own uv if there is none)"

$(TOOLS)/uv/bin/uv:
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: .venv/.synced

demo: setup
	$(VENV)/chw demo

test: setup
	$(VENV)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(VENV)/ruff check .

bench: setup
	$(VENV)/python bench/run_all.py $(BENCH_ARGS)

clean:
	-$(VENV)/chw warehouse stop 2>/dev/null
	rm -rf .chw
