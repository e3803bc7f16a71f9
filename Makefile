# qkit developer tasks. Everything runs from the project's own virtual environment (.venv).
#
#   make install   create .venv (Python 3.11) and install qkit with the pinned versions
#   make train     install, then `qkit train $(ARGS)`      e.g. make train ARGS="--epochs 5"
#   make test      install with the dev extra, then run the test suite
#   make test-fast the same without the tests marked slow (the loop while developing)
#   make lint      install with the dev extra, then `ruff check` and `ruff format --check` the code
#                  (pyproject.toml: [tool.ruff]; `ruff format qkit tests benchmarks` formats it)
#   make bench     install with the bench extra, then run benchmarks/quantum_layer.py
#   make docs      install with the docs extra, then build the documentation site into site/
#                  (mkdocs build --strict, executing the tutorial notebook: it reads BreastMNIST
#                  from $QKIT_DATA_DIR as the tests do; a broken link or a failing cell fails it)
#   make clean     remove caches and build outputs (keeps .venv); make distclean also removes .venv
#
# Installs are idempotent: a stamp file in .venv named after a hash of pyproject.toml and
# constraints.txt records what was installed, so a re-run with unchanged files installs
# nothing (content, not timestamps: a fresh clone or checkout must not trigger a reinstall).

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
ARGS ?=
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
# One stamp per extra: "base" (no extra), "dev", "bench", "docs".
stamp = $(VENV)/.qkit-install-$(1)-$(DEPS_HASH)

.PHONY: install install-dev install-bench install-docs train test test-fast lint bench docs clean distclean

$(PY):
	@test -n "$(PYTHON)" || { echo "python3.11 not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# $(1): stamp name; $(2): the pip requirement (with extras).
define pip_install
	rm -f $(VENV)/.qkit-install-$(1)-*
	$(PY) -m pip install --progress-bar off -c constraints.txt -e '$(2)'
	touch $(call stamp,$(1))
endef

$(call stamp,base): | $(PY)
	$(call pip_install,base,.)

$(call stamp,dev): | $(PY)
	$(call pip_install,dev,.[dev])

$(call stamp,bench): | $(PY)
	$(call pip_install,bench,.[bench])

$(call stamp,docs): | $(PY)
	$(call pip_install,docs,.[docs])

install: $(call stamp,base)
install-dev: $(call stamp,dev)
install-bench: $(call stamp,bench)
install-docs: $(call stamp,docs)

train: install
	$(VENV)/bin/qkit train $(ARGS)

test: install-dev
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check qkit tests benchmarks
	$(VENV)/bin/ruff format --check qkit tests benchmarks

bench: install-bench
	$(PY) benchmarks/quantum_layer.py $(ARGS)

docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf build dist site *.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
