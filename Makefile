# The few commands people use: run, test, lint, bench.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# The test suite runs against the real services on 127.0.0.1: PostgreSQL's role postgres on trust, or with the
# password libpq finds in the environment (PGPASSWORD, ~/.pgpass) or in this URL.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lms
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# The settings refuse to start without DJANGO_SECRET_KEY (unless DJANGO_DEBUG). Tests, checks and benchmarks serve
# nobody: a fixed key will do there (`make run` makes a real one, scripts/run.sh).
LOCAL_KEY := DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-tests-and-benchmarks-only-not-a-secret}"

.PHONY: install install-dev run test lint format bench bench-limit bench-workbook bench-embedded bench-shapes services clean

# Two stamps: what the product needs to run, and on top of it what tests and linters need.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## install: the runtime (requirements.txt); install-dev: plus the test and lint tools (requirements-dev.txt)
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: the product on the embedded default (SQLite + filesystem broker), web on :8000 and a worker
run: install
	./scripts/run.sh

services:
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) ./scripts/services.sh

## lint: ruff (check and format), then import-linter's contracts (.importlinter: who may import whom)
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# axe-core, which the browser tests inject into every page (tests/browser/package-lock.json pins it).
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund
	touch $@

## test: make lint, then the whole suite on PostgreSQL and Redis (started or installed if needed)
test: install-dev services lint $(AXE)
	$(LOCAL_KEY) DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	$(LOCAL_KEY) DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

## bench: import throughput and peak memory at 100k and 1M rows on PostgreSQL
bench: install services
	$(LOCAL_KEY) DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lms_bench} $(PY) bench/run.py $(BENCH_ARGS)

## bench-limit: the product beside the validated-import limit probe (../shared/limit) on the probe's 1M-row file
bench-limit: install services
	$(LOCAL_KEY) $(PY) bench/limit.py $(BENCH_ARGS)

## bench-workbook: the same 100k rows as CSV and as .xlsx, side by side
bench-workbook: install-dev services
	$(LOCAL_KEY) DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lms_bench} $(PY) bench/workbook.py $(BENCH_ARGS)

## bench-embedded: the run command's SQLite default against PostgreSQL, 100k rows of learners without accounts
bench-embedded: install services
	$(LOCAL_KEY) $(PY) bench/embedded.py $(BENCH_ARGS)

## bench-shapes: rows/s of other file shapes beside the main case (--linearity: 100k against 3M rows)
bench-shapes: install services
	$(LOCAL_KEY) DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lms_bench} $(PY) bench/shapes.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/browser/node_modules var .pytest_cache .ruff_cache .import_linter_cache
