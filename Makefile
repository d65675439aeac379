# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# This machine's CPU build of PyTorch; pyproject.toml itself accepts any torch>=2.4.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test bench venv clean

$(VENV)/.bootstrapped: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.bootstrapped

demo: venv
	$(VENV)/bin/resnetlab demo

test: venv
	$(PY) -m pytest

bench: venv
	$(PY) benchmarks/peak.py

clean:
	rm -rf $(VENV) runs .pytest_cache
