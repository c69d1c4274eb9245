# One entry point for everything: `make serve` starts the server, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format typecheck check bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "Ategnatos needs Python 3.11 or newer, and '$(PYTHON)' is older or not installed." >&2; \
	  echo "Install Python 3.11+ and run again, or point make at it: make PYTHON=python3.12 test" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# stdout belongs to the MCP stdio transport: installation output goes to stderr.
serve:
	@$(MAKE) --no-print-directory -s install >&2
	@exec $(BIN)/ategnatos-mcp serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ategnatos_mcp tests benchmarks
	$(BIN)/ruff format --check ategnatos_mcp tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format ategnatos_mcp tests benchmarks
	$(BIN)/ruff check --fix ategnatos_mcp tests benchmarks

typecheck: $(STAMP)
	$(BIN)/pyright

check: lint typecheck test

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
