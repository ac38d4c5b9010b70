# `make run` and `make test` bootstrap a local virtual environment from a clean checkout.
PYTHON ?= python3
comma := ,
space := $(subst ,, )
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

# the main job: train the quick preset, evaluate it beside the shipped pretrained agents and the
# baselines over the six scenarios (evaluation seed 0, never a training seed), then the HTML report
# with the learning curves
POLICIES := pretrained sced do_nothing proportional emergency
EPISODES ?= 2
TRAIN_SEED ?= 1
RUN_DIR := results/quick
run: $(STAMP)
	rm -rf $(RUN_DIR) results/evaluation
	$(BIN)/gridrl train --preset quick --seed $(TRAIN_SEED) --out $(RUN_DIR)
	$(BIN)/gridrl evaluate --policy $(subst $(space),$(comma),$(POLICIES) $(RUN_DIR)) \
		--scenario all --episodes $(EPISODES) --seed 0 --json results/evaluation/{policy}.json
	$(BIN)/gridrl report $(RUN_DIR) results/evaluation/*.json --out results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/powerflow.py
	$(BIN)/python benchmarks/env.py
	$(BIN)/python benchmarks/sced.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
