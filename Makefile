# Labelwise: `make run` serves the CDS Hooks service, `make test` runs ruff + pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint install clean bench conformance proxy-deps e2e e2e-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The integration tests' FHIR server (Medplum's router on Node, from the npm registry).
FHIR_SERVER := tests/fhir_server
$(FHIR_SERVER)/node_modules/.installed: $(FHIR_SERVER)/package-lock.json
	@command -v npm >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0] < 18))' 2>/dev/null || \
	  { echo "make test needs Node.js >= 18 and npm for the integration tests' FHIR server (apt-get install nodejs npm)"; exit 1; }
	cd $(FHIR_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/labelwise serve --bind $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .

test: lint $(FHIR_SERVER)/node_modules/.installed
	$(BIN)/python -m pytest

# The pages in a real browser: Playwright drives the OS Chromium (never a downloaded browser).
e2e-deps:
	@command -v chromium >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

e2e: install e2e-deps
	$(BIN)/python -m pytest tests/e2e/e2e_pages.py

# The CDS Hooks 2.0 requirement matrix (docs/conformance.md) from the tests that cite them.
conformance: install $(FHIR_SERVER)/node_modules/.installed
	$(BIN)/python -m pytest -q -m req
	$(BIN)/labelwise conformance

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

bench: install
	$(BIN)/python -m bench.run

# The reverse-proxy profile's tests (tests/test_proxy.py) run Debian's nginx; CI calls this first.
proxy-deps:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  { apt-get update -qq && export DEBIAN_FRONTEND=noninteractive && \
	    { apt-get install -y -qq nginx-light openssl || apt-get install -y -qq nginx openssl; }; }
