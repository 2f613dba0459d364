# Everything installs into the project folder: .venv (Python), node_modules (solc-js,
# anvil, OpenZeppelin) and .solcx (the compiler adapter brownie finds through
# SOLCX_BINARY_PATH). Each step leaves a stamp, so a second run skips it.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SOLC_VERSION := $(shell sed -n 's/^ *version: *\([0-9.]*\) *$$/\1/p' brownie-config.yaml | head -1)
SOLCX := .solcx
ADAPTER := $(SOLCX)/solc-v$(SOLC_VERSION)
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/$(SOLCX)
export PYTHONHASHSEED := 0

.PHONY: install test test-contracts test-trainer compile demo gas slither bench clean doctor

install: $(VENV)/.installed node_modules/.installed $(ADAPTER)

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package-lock.json
	@# npm ci rejects a lockfile without the optional anvil packages of other platforms,
	@# which this registry does not serve; npm install keeps the locked versions.
	npm install --no-audit --no-fund --loglevel=error
	touch $@

$(ADAPTER): tools/solc-adapter.js node_modules/.installed
	@node -e 'const v=require("solc/package.json").version; if (v !== "$(SOLC_VERSION)") { console.error(`package.json pins solc $${v} but brownie-config.yaml pins $(SOLC_VERSION)`); process.exit(1); }'
	mkdir -p $(SOLCX)
	ln -sf ../tools/solc-adapter.js $@

compile: install
	$(BIN)/brownie compile

test: install compile
	$(BIN)/brownie test tests/ -p no:cacheprovider

doctor: install
	$(BIN)/swarm doctor

gas: install compile
	$(BIN)/python benchmarks/gas.py --out benchmarks/results/gas.json

clean:
	rm -rf build reports .hypothesis
