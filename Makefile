# seqkit: `make help` lists the targets.
PYTHON_SYS ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Use the reference data beside the checkout when it is there (CI and developer machines).
SEQKIT_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export SEQKIT_DATA_DIR
export TF_CPP_MIN_LOG_LEVEL ?= 2

TASK ?=
TUNER ?= hyperband
TRIALS ?= 20
WORKERS ?= 2
DATA ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup test test-slow lint format demo sentiment ner forecast charlm tune tune-distributed results bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'
	@echo "  variables: TASK=sentiment|ner|forecast|charlm TUNER=$(TUNER) TRIALS=$(TRIALS) WORKERS=$(WORKERS) DATA=airline|sunspots|univariate ARGS='--set k=v ...'"

setup: $(VENV)/.installed ## create .venv and install seqkit with its pinned dependencies

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON_SYS) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

test: setup ## the unit suite (fast, no real data)
	$(BIN)/pytest -q

test-slow: setup ## real-data and multi-process tests (needs SEQKIT_DATA_DIR or network)
	$(BIN)/pytest -q -m slow

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: setup ## offline demo: char LM on Python's own source + a sunspots forecast vs baselines
	$(PY) -m seqkit.demo

sentiment: setup ## train BiLSTM sentiment on IMDB with the default config
	$(PY) -m seqkit train sentiment $(ARGS)

ner: setup ## train BiLSTM-CRF NER on CoNLL-2003 with the default config
	$(PY) -m seqkit train ner $(ARGS)

forecast: setup ## train forecasting on ETTh1 (M, H=96); DATA=airline|sunspots for the classic series; DATA=univariate for ETTh1 S/96 (tuned config)
	$(PY) -m seqkit train forecast $(if $(DATA),$(if $(wildcard configs/forecast-$(DATA).yaml),--config configs/forecast-$(DATA).yaml,--set dataset=$(DATA))) $(ARGS)

charlm: setup ## train the character LM on Tiny Shakespeare and print a sample
	$(PY) -m seqkit train charlm $(ARGS)

tune: setup ## hyperparameter search: make tune TASK=ner [TUNER=hyperband|bayesian|random] [TRIALS=N]
	@test -n "$(TASK)" || (echo "make tune: set TASK=sentiment|ner|forecast|charlm" >&2; exit 2)
	$(PY) -m seqkit tune $(TASK) --tuner $(TUNER) --trials $(TRIALS) $(ARGS)

tune-distributed: setup ## keras-tuner chief + WORKERS workers on this machine
	@test -n "$(TASK)" || (echo "make tune-distributed: set TASK=..." >&2; exit 2)
	$(PY) -m seqkit.tuning_distributed $(TASK) --workers $(WORKERS) --tuner $(TUNER) --trials $(TRIALS) $(ARGS)

results: setup ## the headline table: each task's default config with seeds 1-3 (ARGS=--quick: seed 1 only)
	$(PY) -m bench.results $(ARGS)
	$(PY) -m bench.run --summary-only

bench: setup ## every benchmark (results included); results in bench/results/ (JSON + markdown)
	$(BIN)/pip install -q -r requirements-bench.txt
	$(PY) -m bench.run $(ARGS)

clean: ## remove build outputs (runs/, tune/), keep .venv
	rm -rf runs tune .pytest_cache .ruff_cache
