# `make run` and `make test` bootstrap a local virtual environment from a clean checkout.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

run: $(STAMP)
	$(BIN)/gridrl powerflow

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/powerflow.py
	$(BIN)/python benchmarks/env.py
	$(BIN)/python benchmarks/sced.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
