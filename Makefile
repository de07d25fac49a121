# The few targets a newcomer needs. Everything runs in .venv, created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions with hashes of everything privrec and its dev extras need; pyproject.toml keeps ranges.
LOCK := requirements.lock

.PHONY: install lock demo test test-fast lint schemas clean down

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the locked dependencies, then privrec itself

lock: $(STAMP)  ## regenerate requirements.lock from pyproject.toml (keeps pins; UPGRADE=--upgrade for newer)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--custom-compile-command 'make lock' $(UPGRADE) -o $(LOCK)

demo: $(STAMP)  ## run the whole product on the embedded broker and Redis
	$(BIN)/privrec demo

test: $(STAMP)  ## the whole test suite (unit + integration on real services)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest -m "not integration"

lint: $(STAMP)  ## ruff (lint + format) and mypy --strict on pipeline/; CI runs it before the tests
	$(BIN)/ruff check pipeline agents tests schemas
	$(BIN)/ruff format --check pipeline agents tests schemas
	$(BIN)/mypy

schemas: $(STAMP)  ## regenerate schemas/*.json from the wire structs
	$(BIN)/python -m pipeline.wire.jsonschema

down: $(STAMP)
	$(BIN)/privrec down

clean:
	-$(BIN)/privrec down
	rm -rf $(VENV) .privrec build *.egg-info
