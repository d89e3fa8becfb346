# One entry point for every habit. Each target builds the local virtualenv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# pytest workers: the suite is I/O-bound (emulators on 127.0.0.1), two per core is fine.
JOBS   ?= 4

.PHONY: demo test lint unit samples bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo

## make demo: scan the built-in demo estate (emulated AWS, no account needed)
demo: $(VENV)/.demo
	$(BIN)/rdsaudit demo --output-dir rdsaudit-demo

## make test: lint, then the whole test suite
test: lint unit

unit: $(VENV)/.dev
	$(BIN)/pytest -q -n $(JOBS) --dist loadfile

lint: $(VENV)/.dev
	$(BIN)/ruff check rdsaudit tests benchmarks
	$(BIN)/mypy

## make samples: regenerate sample_reports/ from the demo estate
samples: $(VENV)/.dev
	$(BIN)/python -m rdsaudit.demo.samples sample_reports

## make bench: benchmarks (never part of make test)
bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) rdsaudit-demo .pytest_cache .mypy_cache .ruff_cache
