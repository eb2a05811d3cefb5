# trackd: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install when the project definition changes; strict editable mode gives static tools a
# real `trackd/` link tree to follow.
$(STAMP): pyproject.toml $(PY)
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) examples/demo.py

lint: install
	$(VENV)/bin/ruff check client daemon server tests bench examples
	$(VENV)/bin/ruff format --check client daemon server tests bench examples

typecheck: install
	$(VENV)/bin/mypy

test: install
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=strict
	$(MAKE) lint typecheck
	$(PY) -m pytest -q

bench: install
	$(PY) bench/log_latency.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
