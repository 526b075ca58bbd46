# evoagent task runner. `make demo` and `make test` work on a fresh Debian/Ubuntu machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPC   := $(PIP) install -q -c constraints.txt
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup docker image test test-fast demo lint bench clean

# venv + install; re-runs only when pyproject.toml or constraints.txt change.
setup: $(VENV)/.installed docker image

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIPC) torch==2.13.0
	$(PIPC) -e '.[dev]'
	touch $@

docker:
	bash scripts/docker-bootstrap.sh

image: $(VENV)/.installed docker
	$(BIN)/evoagent sandbox build

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the Docker tests (no engine needed).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not docker" $(PYTEST_ARGS)

demo: setup
	$(BIN)/evoagent sandbox run examples/smoke/hello.py --tools examples/smoke/tools

lint: $(VENV)/.installed
	$(BIN)/ruff check agent toolforge memory sandbox tests bench
	$(BIN)/ruff format --check agent toolforge memory sandbox tests bench
	$(BIN)/mypy agent toolforge memory sandbox

bench: setup
	$(PY) bench/sandbox.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
