# Two commands do all setup on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test test-fast bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/pipelines run demo

# one worker per core (at most 4): test modules run whole on one worker (--dist loadscope), so
# module fixtures are built once; in the order tests/conftest.py gives them (slow modules first), not
# xdist's most-tests-first
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadscope --no-loadscope-reorder

# every test (CI runs this)
test: $(BIN)/.installed
	$(PYTEST)

# the edit loop: every test but those marked slow (end-to-end recipes, kill-and-resume loops)
test-fast: $(BIN)/.installed
	$(PYTEST) -m "not slow"

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/extract_cpu.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/tad_speed.py

clean:
	rm -rf runs data/synth
