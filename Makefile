# The few targets a newcomer needs. Everything runs in .venv, created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint schemas clean down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install privrec with its dev extras

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
