# The README's two commands: `make demo` (the whole DAG on the embedded tiny default) and
# `make test` (the test suite). Both create/refresh .venv and install dcobench with its extras.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast lint install clean

install: $(STAMP)

# torch is unpinned on purpose (FACTS.md: never the local CPU-only 2.13 wheel).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import dcobench, torch, diffusers, peft, open_clip, snakemake"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete --printshellcmds
	@echo ""
	@echo "Report:  $(CURDIR)/results/demo/report.html"
	@echo "Figures: $(CURDIR)/results/demo/figures/   Tables: $(CURDIR)/results/demo/tables/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check dcobench tests
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
