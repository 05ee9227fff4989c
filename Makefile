# Two entry points: `make demo` (the quickstart study, on this machine) and `make test` (the test suite, as CI runs it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?=

.PHONY: demo test setup setup-test system-test-deps benchmarks clean-demo

# The target is pip, not python: Debian without python3-venv leaves .venv/bin/python behind a failed `venv`.
$(BIN)/pip:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "make: '$(PYTHON) -m venv' failed: install python3-venv (Debian: apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip

# torch and torchvision resolve from pyproject's ranges (on the project's machines: the local CUDA build that runs on CPU).
# Installed again only after pyproject.toml changes (the install is editable: code edits need none), so that a rerun
# of `make demo` goes straight to the quickstart, without pip's and setuptools' output.
setup: $(VENV)/.setup-quickstart

$(VENV)/.setup-quickstart: pyproject.toml | $(BIN)/pip
	$(BIN)/pip install -q -e '.[quickstart]'
	touch $@

setup-test: $(BIN)/pip
	$(BIN)/pip install -q -e '.[quickstart,test]'

# Debian packages the tests use for real: Fashion-MNIST, headless Chromium, and a single-node Slurm cluster.
system-test-deps:
	bash scripts/system_test_deps.sh

demo: setup
	$(BIN)/study quickstart $(if $(WORKERS),--workers $(WORKERS),)

test: setup-test system-test-deps
	$(BIN)/python -m pytest -q

benchmarks: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean-demo:
	rm -rf runs/quickstart reports/quickstart data/quickstart
