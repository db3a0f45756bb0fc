# reidlab: `make demo` runs every notebook at lab scale, `make test` runs the test suite.
# Both set up the environment first: the active conda env or virtualenv if there is one,
# otherwise a local .venv created on demand.
SHELL := /bin/bash

ifdef VIRTUAL_ENV
  PY := $(VIRTUAL_ENV)/bin/python
else ifdef CONDA_PREFIX
  PY := $(CONDA_PREFIX)/bin/python
else
  PY := .venv/bin/python
endif

# faiss: kept if the environment already has it (e.g. conda's faiss-gpu), else the GPU wheel where an
# NVIDIA GPU is visible and the CPU wheel otherwise. Override with make FAISS=cpu|gpu|none.
FAISS ?= $(shell $(PY) -c "import faiss" >/dev/null 2>&1 && echo none || \
           (nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu))
EXTRAS := $(if $(filter none,$(FAISS)),dev,$(FAISS),dev)
STAMP := .make/installed$(subst /,_,$(abspath $(PY)))

SCALE ?= lab
RUNS ?= runs
# Training seeds of notebooks 02, 03, 05 and 06: one keeps make demo within half an hour; SEEDS=0,1,2 runs the
# three seeds whose spread the notebooks' comparisons are checked against (about three times as long).
SEEDS ?= 0
# Notebooks executed at once, the cores shared out between their kernels (two one-thread kernels side by side
# finish the demo sooner on 2 cores than one two-thread kernel after another). Empty: reidlab demo's default,
# 2, or 1 on a 1-core machine.
JOBS ?=

.PHONY: setup demo test lab data baselines clean-runs help

help:
	@echo "make demo   set up, generate SynthMarket, run every notebook at lab scale into $(RUNS)/"
	@echo "make test   set up, then the whole test suite (unit tests + notebooks at tiny scale)"
	@echo "make lab    open JupyterLab on notebooks/ with this environment's kernel"
	@echo "make data   generate the lab SynthMarket dataset into data/synthmarket-lab if missing"
	@echo "make baselines  re-record tests/baselines/ (every notebook's metrics at tiny scale); review the diff"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ "$(PY)" = ".venv/bin/python" ] && [ ! -x .venv/bin/python ]; then \
		echo "Creating .venv"; python3 -m venv .venv; fi
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[$(EXTRAS)]"
	@mkdir -p .make && touch $@

data: setup
	$(PY) -m reidlab.data.synthmarket --root data/synthmarket-lab --preset lab --seed 0

demo: setup
	$(PY) -m reidlab demo --scale $(SCALE) --seeds $(SEEDS) $(if $(JOBS),--jobs $(JOBS)) --out $(RUNS)/$(SCALE)

test: setup
	$(PY) -m pytest -q

# Deliberately re-record the regression baselines (tests/baselines/*.json); NOTEBOOKS="02 03" limits it.
baselines: setup
	$(PY) tests/regression.py --record $(NOTEBOOKS)

lab: setup
	$(PY) -m reidlab lab

clean-runs:
	rm -rf $(RUNS)
