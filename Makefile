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

# The demo: the BBH stream without learning (the baseline, on an empty library), then
# with learning, then the report comparing them. About 2 minutes after setup.
DEMO_HOME ?= .evoagent-demo
DEMO_MODEL := scripted:examples/bbh/model.yaml
demo: setup
	rm -rf $(DEMO_HOME)
	$(BIN)/evoagent --home $(DEMO_HOME) run examples/bbh/stream.jsonl --model $(DEMO_MODEL) --workers 4 --no-learn --run-id baseline --quiet
	$(BIN)/evoagent --home $(DEMO_HOME) run examples/bbh/stream.jsonl --model $(DEMO_MODEL) --workers 4 --run-id demo
	$(BIN)/evoagent --home $(DEMO_HOME) report demo --baseline baseline

lint: $(VENV)/.installed
	$(BIN)/ruff check agent toolforge memory sandbox tests bench
	$(BIN)/ruff format --check agent toolforge memory sandbox tests bench
	$(BIN)/mypy agent toolforge memory sandbox

bench: setup
	$(PY) bench/sandbox.py
	$(PY) bench/memory.py
	$(PY) bench/forge.py
	$(PY) bench/stream.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
