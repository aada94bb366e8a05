# Two commands do everything on a fresh machine; each creates .venv first when it is missing.
#   make train [MODEL=mlp|cnn|lstm|beto] [ARGS="--num_train_epochs 3 ..."]   train on the bundled sample
#   make test                                                                the layers contract and the test suite (what CI runs)
# Only the tests run offline (HF_HUB_OFFLINE=1): `make train MODEL=beto` may download BETO from the Hub.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch==2.13.0: the CPU build lies on this kind of machine; on a GPU machine PyPI's is the CUDA build.
TORCH ?= torch==2.13.0
MODEL ?= mlp
ARGS ?=

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: train test lint
train: $(VENV)/.installed
	$(PY) scripts/train.py --model $(MODEL) $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -rs tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check meli_hf scripts tests bench
