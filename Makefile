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
UV_VERSION := 0.13.8
# uv checks TLS against the system's certificates, as pip does (not its bundled roots).
UV := $(BIN)/uv pip install --quiet --native-tls --python $(BIN)/python
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/$(SOLCX)
export PYTHONHASHSEED := 0

.PHONY: install test test-units test-e2e compile deploy demo gas clean doctor

install: $(VENV)/.installed node_modules/.installed $(ADAPTER)

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# torch through pip, which reads this machine's pip configuration (where its CPU wheel
	@# lies); the locked rest through uv (68 s with pip, 16 s with uv, the same versions).
	@# Bytecode is compiled here: where PYTHONDONTWRITEBYTECODE is set, nothing else writes
	@# it, and every process would compile brownie, web3 and torch again (the suite ran 30 % slower).
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0 uv==$(UV_VERSION)
	$(UV) --compile-bytecode -r requirements.lock
	$(UV) --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package-lock.json
	@# npm ci rejects a lockfile without the optional anvil packages of other platforms,
	@# which this registry does not serve; npm install keeps the locked versions.
	npm install --no-audit --no-fund --loglevel=error
	touch $@

$(ADAPTER): tools/solc-adapter.js | node_modules/.installed
	@node -e 'const v=require("solc/package.json").version; if (v !== "$(SOLC_VERSION)") { console.error(`package.json pins solc $${v} but brownie-config.yaml pins $(SOLC_VERSION)`); process.exit(1); }'
	mkdir -p $(SOLCX)
	ln -sf ../tools/solc-adapter.js $@

# The project's bytecode too: with PYTHONDONTWRITEBYTECODE set, every node and CLI process
# would otherwise compile the modules it imports again (0.2 s each, hundreds in the suite).
compile: install
	$(BIN)/brownie compile
	$(BIN)/python -m compileall -q swarmtoken trainer tests benchmarks examples scripts

# Contract tests run under brownie (its fixtures, its anvil on 8545); chain-free tests and
# the end-to-end tests (which start their own chains on free ports) run without brownie's
# pytest plugin, so they never share or tear down that chain. The end-to-end tests take
# about as long as the rest together and share nothing with them, so the two groups run
# side by side (each one's output is printed when it ends); either failing fails the target.
# GNU make before 4.0 (macOS's default) has no --output-sync: there the groups run in turn.
SIDE_BY_SIDE := $(if $(filter 3.%,$(MAKE_VERSION)),,--jobs=2 --output-sync=target)
# Three end-to-end tests (25-45 s each) run with the chain-free tests instead, so that
# the two groups take about as long (measured without the third: 641 s against 712 s).
E2E_IN_UNITS := tests/e2e/test_protocol_attacks.py tests/e2e/test_demo_peer_attack.py tests/e2e/test_lost_participant.py
# The contract tests spend much of their time waiting on anvil's replies, so two pytest-xdist
# workers (brownie gives each its own anvil, on 8545 and 8546, and hands them whole files)
# finish them sooner on 2 cores (measured alone: 429 s -> 318 s; 219 s since the tests' connection
# caches the chain id, `steady_connection`).
CONTRACT_WORKERS := -n 2

test: install compile
	@$(MAKE) --no-print-directory $(SIDE_BY_SIDE) test-units test-e2e

# Both runs, even when the first fails; the target fails if either did.
test-units:
	status=0; \
	$(BIN)/brownie test tests/contracts -p no:cacheprovider --durations=5 $(CONTRACT_WORKERS) || status=1; \
	$(BIN)/python -m pytest -p no:pytest-brownie -p no:cacheprovider --durations=5 \
		tests/swarmtoken tests/trainer tests/benchmarks $(E2E_IN_UNITS) || status=1; \
	exit $$status

test-e2e:
	$(BIN)/python -m pytest -p no:pytest-brownie -p no:cacheprovider --durations=10 \
		$(addprefix --ignore=,$(E2E_IN_UNITS)) tests/e2e

doctor: install
	$(BIN)/swarm doctor

gas: install compile
	$(BIN)/python benchmarks/gas.py --out benchmarks/results/gas.json

clean:
	rm -rf build reports .hypothesis

# Static analysis in its own venv: slither wants a newer eth-abi than brownie pins.
# A directory target with standard JSON is the route that works with OpenZeppelin 5 and
# the solc-js adapter (a single-file target makes slither ask for --combined-json, which
# the adapter does not answer, and slither then "analyses" nothing and exits 0: the grep
# below catches that). High and medium findings fail the target unless they are in the
# triage database tools/slither.db.json or silenced by a `slither-disable-next-line` comment
# at the line, each with its note in contracts/SECURITY.md.
SLITHER_VENV := .venv-slither

$(SLITHER_VENV)/.installed: tools/slither-requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/slither-requirements.txt
	touch $@

slither: $(SLITHER_VENV)/.installed node_modules/.installed $(ADAPTER)
	@mkdir -p reports
	set -o pipefail; $(SLITHER_VENV)/bin/slither contracts/ --solc $(ADAPTER) --solc-standard-json \
		--solc-remaps "@openzeppelin=node_modules/@openzeppelin" --filter-paths node_modules \
		--triage-database tools/slither.db.json --fail-medium 2>&1 | tee reports/slither.txt
	@grep -q "analyzed ([1-9][0-9]* contracts" reports/slither.txt \
		|| { echo "slither analysed no contract: see the Static analysis notes in the toolchain docs"; exit 1; }

# The main job: a local swarm (embedded anvil chain, 5 node processes, one rogue) run to
# its stopping rule, with a live view, a final table, the audit, and a run folder.
demo: install compile
	$(BIN)/swarm demo --out runs/demo
