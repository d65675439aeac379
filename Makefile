# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# This machine's CPU build of PyTorch; pyproject.toml itself accepts any torch>=2.4.
TORCH_PIN ?= torch==2.13.0
TEST_WORKERS ?= 2

.PHONY: demo test lint bench venv clean

$(VENV)/.bootstrapped: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.bootstrapped

demo: venv
	$(VENV)/bin/resnetlab demo

# Two workers (pytest-xdist), one test file each at a time: module fixtures are built once, and
# the suite takes about half as long on 2 cores (tests run one intra-op thread each: conftest.py).
test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# ruff (pinned in the dev extra): lint and format check of the whole tree, as CI runs it.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: venv
	$(PY) benchmarks/peak.py

clean:
	rm -rf $(VENV) runs .pytest_cache
