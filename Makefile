# middlebury.mail_clients — developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The controller Python: newest >= 3.12 found (ansible-core 2.21), else Debian's (2.19 on Debian 12).
VENV_PYTHON ?= $(shell tests/tools/pick-python)
OLDEST_PYTHON ?= /usr/bin/python3
# Every ansible-core line meta/runtime.yml claims (requires_ansible >= 2.16); `make compat` runs the others than
# .venv's own, each in .venv-<line>.
COMPAT_LINES := 2.16 2.17 2.18 2.19 2.20 2.21
# The lines whose ansible-test sanity Automation Hub certification names.
SANITY_LINES := 2.16 2.18 2.20
# galaxy-importer and ansible-builder (tests/test_galaxy_build.py), on Debian's Python.
IMPORTER_VENV ?= .venv-importer
PYTEST_ARGS ?=
# The checkout as a collection (a symlink tree made by tests/conftest.py), one per checkout.
export MAIL_CLIENTS_COLLECTIONS_ROOT ?= /tmp/mail_clients-collections-$(shell printf %s "$(CURDIR)" | sha1sum | cut -c1-8)
export ANSIBLE_COLLECTIONS_PATH := $(MAIL_CLIENTS_COLLECTIONS_ROOT)

.PHONY: help deps apt venv venv-importer collection-path lint sanity sanity-lines unit integration pytest test \
        build-check compat demo molecule bench changelog clean

help: ## This list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

apt: ## Install the Debian packages the tests need (tests/apt/*.txt)
	tests/tools/apt-install

$(VENV)/.installed: requirements.txt
	@echo "venv: $(VENV_PYTHON) ($$($(VENV_PYTHON) --version))"
	$(VENV_PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv with the pinned tools (newest ansible-core line its Python runs, ansible-lint, molecule...)
	@tests/tools/controller-line $(PY)

$(IMPORTER_VENV)/.installed: requirements-importer.txt
	$(OLDEST_PYTHON) -m venv $(IMPORTER_VENV)
	$(IMPORTER_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-importer.txt
	touch $@

venv-importer: $(IMPORTER_VENV)/.installed ## galaxy-importer and ansible-builder, for the Automation Hub checks

deps: apt venv venv-importer ## Everything `make test` needs (`make compat` adds a venv per other ansible-core line)

collection-path: venv
	@$(PY) -c 'import sys; sys.path.insert(0, "tests"); import conftest'

lint: deps collection-path ## ruff, yamllint, ansible-lint (production), changelog lint
	$(BIN)/ruff check .
	$(BIN)/yamllint -s .
	$(BIN)/antsibull-changelog lint
	$(BIN)/ansible-lint --offline --profile production

sanity: deps ## ansible-test sanity (in a temp ansible_collections tree)
	VENV_BIN=$(abspath $(BIN)) tests/tools/sanity

unit: deps collection-path ## Unit tests only
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

compat: deps ## Unit tests and the playbooks on every other claimed ansible-core line (tests/tools/compat)
	PYTEST_ARGS="$(PYTEST_ARGS)" tests/tools/compat $(PY) $(COMPAT_LINES)

pytest: deps collection-path ## The whole pytest suite (unit, real-client integration, build, molecule)
	$(PY) -m pytest tests -q -rfE $(PYTEST_ARGS)

sanity-lines: deps ## ansible-test sanity of each line in SANITY_LINES, from the venvs `make compat` made (tests/tools/sanity-lines)
	tests/tools/sanity-lines $(SANITY_LINES)

test: deps lint sanity compat sanity-lines pytest ## The whole suite: gates, then every test (ends with the pytest summary)

bench: bench-check bench-fleet ## Benchmarks (not timed tests)

clean: ## Remove venvs, build output and test output
	rm -rf $(VENV) .venv-2.* $(IMPORTER_VENV) tests/output build middlebury-mail_clients-*.tar.gz

-include mk/*.mk
