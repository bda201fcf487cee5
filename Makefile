# paysaga: `make dev` runs everything, `make test` proves it. Only Python 3.11+ and make needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: dev test test-unit test-workflow test-system lint bench chaos clean install deploy deploy-status

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "paysaga needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(PY) -m devstack

test: $(STAMP)
	$(PY) -m pytest -q

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-workflow: $(STAMP)
	$(PY) -m pytest -q tests/workflow

test-system: $(STAMP)
	$(PY) -m pytest -q tests/system

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

bench: $(STAMP)
	$(PY) -m benchmarks.run

chaos: $(STAMP)
	$(PY) -m chaos.run

# this checkout's build: replay gate, then current (RAMP=10: ramping at 10 % instead)
deploy: $(STAMP)
	$(PY) -m deploy promote $(if $(RAMP),--ramp $(RAMP),)

deploy-status: $(STAMP)
	$(PY) -m deploy status
