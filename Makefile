# dlx: `make train` sets up .venv and trains the default (digits, offline); `make test` runs the tests.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# torch/torchvision: ranges in pyproject; this pair is known good (and cached on the dev machines).
TORCH   ?= torch==2.14.1 torchvision==0.29.1
EXTRAS  ?= dev
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train test lint format board clean bench bench-gpu e2e

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/dlx: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	@touch $(BIN)/dlx

install: $(BIN)/dlx  ## create .venv and install dlx (editable) with its dev tools

train: install  ## train the default run (model=cnn on digits, offline); ARGS="opt=sgd epochs=5" to change it
	$(BIN)/dlx train $(ARGS)

# Most tests start `dlx` as a child process (torch's import, Hydra's composition): one pytest
# worker a core (up to 4) keeps the cores busy; PYTEST_ARGS="-n 0" runs them one at a time.
test: install  ## run the test suite (CPU, offline, temp folders only; one worker a core)
	$(BIN)/pytest -q -n auto --maxprocesses 4 $(PYTEST_ARGS)

lint: install  ## ruff check + format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install  ## apply ruff's formatting and fixes
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

board: install  ## TensorBoard on 127.0.0.1 for outputs/
	$(BIN)/dlx board outputs

bench: install  ## benchmarks (not part of make test): one markdown table; ARGS="--quick" to try it
	@$(BIN)/python -c "import lightning" 2>/dev/null || $(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python tests/benchmarks/run.py $(ARGS)

bench-gpu: install  ## ResNet-18 images/s on a CUDA GPU; ARGS="--device cpu --quick" smoke-tests it
	$(BIN)/python tests/benchmarks/gpu.py $(ARGS)

e2e: install  ## headless-browser test of `dlx board` (installs Debian's chromium)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/pytest -q tests/test_board.py -k browser

clean:  ## remove the venv, caches and outputs/ runs
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
