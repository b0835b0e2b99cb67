# Sparkify data pipeline. `make demo` and `make test` are all a new user needs; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
LOCAL := .local
LAKE_DIR := $(LOCAL)/lake
SCALE ?= 1
SEED ?= 42
START ?= 2018-11-01
END ?= 2018-11-30
# Days per DAG run of a backfill: 1 (a run per day, Airflow's own backfill), N, or all (one run).
DAYS_PER_RUN ?= 1
DATE ?= 2018-11-01

# The Airflow configuration every deployment shares (no telemetry, among others), for every command run here.
include airflow/config.env
export $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' airflow/config.env)

.PHONY: help install data manifest demo backfill airflow stage docs check sql bench stack-env stack-test lock test test-fast lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else \
		"Python 3.11 or 3.12 is required (found " + sys.version.split()[0] + "): set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@# Every Airflow task is a new Python process: without compiled bytecode (PYTHONDONTWRITEBYTECODE, a
	@# read-only venv) each one compiles Airflow, Cosmos and dbt from source again (about 2x slower per task).
	$(BIN)/python -m compileall -q -j 0 src airflow/dags > /dev/null
	touch $@

install: $(BIN)/.installed ## create .venv with every pinned dependency and the sparkify package

# make demo's lake has one broken day, an injected volume drop, for the Sparkify health view to flag.
ifneq ($(filter demo,$(MAKECMDGOALS)),)
DROP ?= 2018-11-24:0.3
endif
LAKE_STAMP := $(LAKE_DIR)/.scale-$(SCALE)-seed-$(SEED)-$(START)-$(END)$(if $(DROP),-drop-$(subst :,_,$(DROP)))

$(LAKE_STAMP): | $(BIN)/.installed
	rm -rf $(LAKE_DIR)
	$(BIN)/python -m sparkify.datagen --scale $(SCALE) --seed $(SEED) --start $(START) --end $(END) \
		$(if $(DROP),--drop $(DROP)) --out $(LAKE_DIR)
	touch $@

data: $(LAKE_STAMP) ## generate the lake in .local/lake: days START..END (default November 2018), SCALE=N, SEED=N, DROP=DAY:SHARE

MANIFEST := dbt_sparkify/target/manifest.json
DBT_FILES := $(shell find dbt_sparkify -path dbt_sparkify/target -prune -o -path dbt_sparkify/logs -prune \
	-o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print) profiles.yml

$(MANIFEST): $(BIN)/.installed $(DBT_FILES)
	$(BIN)/python -m sparkify.cli manifest

manifest: $(MANIFEST) ## build dbt_sparkify/target/manifest.json (the DAG is rendered from it, never from dbt ls)

demo: install data manifest ## backfill START..END (November 2018) through the scheduler, print a summary, keep the UI up
	$(BIN)/python -m sparkify.cli demo --start $(START) --end $(END)

backfill: install manifest ## backfill START..END (DAYS_PER_RUN=1|N|all) through the scheduler; non-zero exit if a run failed
	@# The lake there is kept (a day it does not hold fails its run); with none, START..END is generated.
	@if [ -z "$$SPARKIFY_LAKE" ] && ! ls $(LAKE_DIR)/.scale-* > /dev/null 2>&1; then \
		$(MAKE) --no-print-directory data; fi
	$(BIN)/python -m sparkify.cli backfill --start $(START) --end $(END) --days-per-run $(DAYS_PER_RUN)

airflow: install manifest ## start Airflow (UI at http://localhost:8080) until Ctrl-C
	$(BIN)/python -m sparkify.cli airflow

stage: install ## stage one day (DATE=YYYY-MM-DD) without Airflow, for working on the dbt models
	@if [ -z "$$SPARKIFY_LAKE" ] && ! ls $(LAKE_DIR)/.scale-* > /dev/null 2>&1; then \
		$(MAKE) --no-print-directory data; fi
	$(BIN)/python -m sparkify.cli stage --date $(DATE)

docs: $(MANIFEST) ## generate the dbt docs (served by `make airflow` / `make demo` under Browse > dbt docs)
	$(BIN)/python -m sparkify.cli docs

check: install manifest ## run every dbt data test on all of history (a day's run tests what its day changed)
	$(BIN)/python -m sparkify.cli check

sql: install ## run a read-only query on the warehouse: make sql Q="select * from analytics.dim_users limit 5"
	$(BIN)/python -m sparkify.cli sql "$$Q"

bench: install manifest ## benchmarks: prints a table and writes docs/BENCHMARKS.md
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

stack-env: install ## write .env with generated secrets for docker-compose.yaml (existing values kept)
	$(BIN)/python -m sparkify.cli stack-env

lock: install ## re-resolve requirements.lock (everything) and docker/requirements.lock (the image: no dev tools)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -c requirements.lock -o docker/requirements.lock

lint: install ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Test modules run side by side, a worker a core, a module to a worker (its fixtures, its Airflow), the longest
# first (tests/conftest.py). More workers than cores took no less time (docs/development.md: Test time).
TEST_WORKERS ?= $(shell nproc)
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
# The everyday tier: no Airflow run, no Docker (docs/development.md: Test time).
FAST_TESTS := tests/test_*.py tests/dags tests/datagen tests/staging tests/dbt/test_dbt_project.py \
	tests/dbt/test_dbt_conventions.py tests/dbt/test_duplicates_and_empty_days.py \
	tests/docs/test_docs_blocks.py tests/redshift/test_checks.py

test: install manifest lint ## install, then run every test but the Docker stack's (make stack-test)
	$(BIN)/python -m pytest -m "not stack" $(PYTEST_PARALLEL)

test-fast: install manifest lint ## lint, unit, dbt on DuckDB, DAG structure, generator, staging: a few minutes
	$(BIN)/python -m pytest -m "not stack and not e2e" $(PYTEST_PARALLEL) $(FAST_TESTS)

stack-test: install ## Docker: build the images, start docker-compose.yaml, backfill 3 days, kill a worker, compare
	.ci/ensure-docker
	docker/ci/build-images
	$(BIN)/python -m sparkify.cli stack-env
	$(BIN)/python -m pytest -m stack -s tests/stack

clean: ## remove generated data, the local Airflow home, the DuckDB file and dbt's target
	rm -rf $(LOCAL) dbt_sparkify/target dbt_sparkify/logs
