#!/bin/sh
# Build the pgradar wheel from SOURCE and install it into a fresh virtual
# environment at VENV, then smoke-test the installed console script.
# The Dockerfile's build stage runs exactly this (tests/integration/test_image.py
# builds the Dockerfile), on the python:*-slim base and on a plain Debian one
# (python3, python3-venv) alike.
#
#   sh scripts/image_install.sh SOURCE VENV
set -eu
src=$1
venv=$2
# The venv's own pip builds the wheel: a Debian base (python3, python3-venv) has no pip of its own.
python3 -m venv "$venv"
wheels=$(mktemp -d)
"$venv/bin/python" -m pip wheel --no-deps --no-cache-dir --wheel-dir "$wheels" "$src"
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
