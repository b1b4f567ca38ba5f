# cxpolicy — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
HOST   ?= 127.0.0.1
PORT   ?= 8181

.PHONY: run test lint typecheck pytest conformance fuzz bench bench-full clean venv precompile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m cxpolicy.service.devrun --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check cxpolicy tests bench
	$(BIN)/mypy --strict cxpolicy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check cxpolicy tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict cxpolicy

conformance: $(STAMP)
	$(BIN)/python ../shared/conformance/run.py ../shared/conformance --cxpolicy "$(BIN)/cxpolicy"

fuzz: $(STAMP)
	CXPOLICY_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -m slow tests/test_fuzz.py tests/engine/test_differential.py tests/lang/test_fastparse.py -p no:randomly

# The shipped packs' CEL trees (compliance_packs/precompiled.json); tests/engine/test_precompiled.py
# fails when a pack, core.cxp or the CEL converter changed and this was not rerun.
precompile: $(STAMP)
	$(BIN)/python -c "import sys; from cxpolicy.engine.precompiled import main; sys.exit(main())"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run --quick

bench-full: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run --full

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var
