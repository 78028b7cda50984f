# Tamga: set-up, run, test, lint and benchmark from a fresh clone.
# Runs as root on a fresh Debian 12 machine (installs what is missing through apt-get) and on a
# developer machine where everything is already there (then `make setup` is quick).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOFTHSM_LIB := /usr/lib/softhsm/libsofthsm2.so
TYPED_PACKAGES := policies hsm db ca crl billing filing signing_api agency_stub

TAMGA_TEST_DATABASE_URL ?= postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres
export TAMGA_TEST_DATABASE_URL

.PHONY: help setup system-packages run test lint bench mutation clean distclean

help: ## show the targets
	@echo "Tamga make targets:"
	@awk -F ':.*## ' '/^[a-z-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "A bare 'make' only prints this."

setup: system-packages $(STAMP) ## install Debian packages if missing, create .venv, pip install -e '.[test]'

system-packages: ## apt-get install whatever is missing: softhsm2, openssl, python3-venv, git, poppler-utils, nginx, chromium, tidy
	@missing=(); \
	if [[ ! -e $(SOFTHSM_LIB) ]] || ! command -v softhsm2-util >/dev/null; then missing+=(softhsm2); fi; \
	command -v openssl >/dev/null || missing+=(openssl); \
	command -v git >/dev/null || missing+=(git); \
	command -v pdftotext >/dev/null || missing+=(poppler-utils); \
	command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx); \
	command -v chromium >/dev/null || missing+=(chromium); \
	command -v tidy >/dev/null || missing+=(tidy); \
	if [[ ! -x $(BIN)/python ]] && ! { $(PYTHON) -m venv --help && $(PYTHON) -c 'import ensurepip'; } >/dev/null 2>&1; then \
	    missing+=(python3-venv); \
	fi; \
	if (( $${#missing[@]} )); then \
	    echo "setup: apt-get install $${missing[*]}"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq; \
	    apt-get install -y -qq --no-install-recommends "$${missing[@]}"; \
	fi

# Re-run pip only when pyproject.toml is newer than the stamp (or the venv is new).
$(STAMP): pyproject.toml | system-packages
	@if [[ ! -x $(BIN)/python ]]; then \
	    echo "setup: creating $(VENV) with $$($(PYTHON) --version)"; \
	    $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $@

run: setup ## tamga init (idempotent), then the mail sink, the agency stub, the worker and tamga serve
	$(BIN)/tamga init
	BIN=$(BIN) scripts/run-dev.sh

test: setup ## PostgreSQL up (installed if needed), lint, then the whole suite (SQLite + PostgreSQL)
	scripts/ensure-postgres.sh
	$(MAKE) lint
	$(BIN)/pytest -n auto

lint: setup ## ruff, ruff format --check, mypy, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED_PACKAGES)
	$(BIN)/lint-imports

bench: setup ## HSM, ledger, issuance/CRL and CSC signing benchmarks, each beside its raw baseline
	$(BIN)/python bench/hsm_sign.py
	scripts/ensure-postgres.sh
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/issue.py
	$(BIN)/python bench/sign_api.py

mutation: setup ## mutation testing of the guard modules (slow; AREAS=ledger audit ... for some)
	scripts/ensure-postgres.sh
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]' --config-settings editable_mode=compat
	$(BIN)/python scripts/mutation.py $(AREAS)

clean: ## remove .venv, caches and build output (keeps var/, which holds the keys)
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	rm -rf ./*.egg-info
	find . -path ./var -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean, and ALSO delete var/ (database, SoftHSM tokens, CA keys)
	@echo "################################################################" >&2
	@echo "## distclean: DELETING var/ -- the database, the SoftHSM tokens ##" >&2
	@echo "## and every CA and subscriber key in them. No undo.           ##" >&2
	@echo "################################################################" >&2
	@if [[ -t 0 ]]; then echo "Ctrl-C within 5 s to keep it." >&2; sleep 5; fi
	rm -rf var
