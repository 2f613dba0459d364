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

.PHONY: install test compile deploy gas clean doctor

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

# Static analysis in its own venv: slither wants a newer eth-abi than brownie pins.
# A directory target with standard JSON is the route that works with OpenZeppelin 5 and
# the solc-js adapter (a single-file target makes slither ask for --combined-json, which
# the adapter does not answer, and slither then "analyses" nothing and exits 0).
SLITHER_VENV := .venv-slither

$(SLITHER_VENV)/.installed: tools/slither-requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/slither-requirements.txt
	touch $@

slither: $(SLITHER_VENV)/.installed node_modules/.installed $(ADAPTER)
	$(SLITHER_VENV)/bin/slither contracts/ --solc $(ADAPTER) --solc-standard-json \
		--solc-remaps "@openzeppelin=node_modules/@openzeppelin" --filter-paths node_modules

# Deploys to brownie's development network (an anvil it starts and stops); the record
# lands in deployments/development.json. Use --network <id> with brownie for others.
deploy: install compile
	$(BIN)/brownie run scripts/deploy.py main config/swarm.toml
