#!/bin/sh
# Build the pgradar wheel from SOURCE and install it into a fresh virtual
# environment at VENV, then smoke-test the installed console script.
# The Dockerfile's build stage runs exactly this; tests/integration/test_image.py
# runs it too (in a clean folder holding only what the Dockerfile copies), so
# the image's install steps cannot rot unnoticed.
#
#   sh scripts/image_install.sh SOURCE VENV
set -eu
src=$1
venv=$2
wheels=$(mktemp -d)
python3 -m pip wheel --no-deps --no-cache-dir --wheel-dir "$wheels" "$src"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir "$wheels"/pgradar-*.whl
rm -rf "$wheels"
# Smoke test: the entrypoint starts, and the package data (SQL files) is installed.
"$venv/bin/pgradar" --version
"$venv/bin/pgradar" run --help >/dev/null
"$venv/bin/python" -c "from pgradar.agent.collect.queries import SQL_ROOT; assert any(SQL_ROOT.glob('*/*.sql')), SQL_ROOT"
# Nothing in the runtime image needs pip: drop it, and every bytecode cache
# (the root filesystem is read-only at run time, PYTHONDONTWRITEBYTECODE=1).
"$venv/bin/python" -m pip uninstall --yes --quiet pip
find "$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
