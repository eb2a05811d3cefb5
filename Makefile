# trackd: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Most tests wait on real processes (servers, daemons, a browser), so they run in parallel
# workers even on 2 cores; tests that bound a call's latency run alone afterwards.
TEST_WORKERS ?= 3

.PHONY: demo test install web lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install when the project definition changes; strict editable mode gives static tools a
# real `trackd/` link tree to follow.
$(STAMP): pyproject.toml $(PY)
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=strict
	touch $(STAMP)

# The web UI (web/, TypeScript + Vite) is built into server/static/, which `trackd server`
# serves at / and the Python package ships; it is rebuilt when its sources change.
WEB_DEPS := web/node_modules/.installed
WEB_OUT  := server/static/index.html
WEB_SRC  := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(WEB_DEPS)

$(WEB_OUT): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build

web: $(WEB_OUT)

install: $(STAMP) $(WEB_OUT)

demo: install
	$(PY) examples/demo.py

lint: install
	$(VENV)/bin/ruff check client daemon server tests bench examples
	$(VENV)/bin/ruff format --check client daemon server tests bench examples
	cd web && npm run lint

typecheck: install
	$(VENV)/bin/mypy

test: install
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=strict
	$(MAKE) lint typecheck
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope -m "not serial"
	$(PY) -m pytest -q -m serial

bench: install
	$(PY) bench/log_latency.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache web/node_modules server/static
