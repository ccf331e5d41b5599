#!/usr/bin/env bash
# mypy --strict over the package as it is imported (pgradar.agent, pgradar.exporters, ...): the source
# folders are mapped onto the pgradar namespace by setup.py, so mypy reads them through a tree of links
# with the same shape. Configuration: [tool.mypy] in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
tree=build/typecheck
rm -rf "$tree"
mkdir -p "$tree/pgradar"
touch "$tree/pgradar/__init__.py"
for d in agent commands exporters dashboards alerts; do ln -s "../../../$d" "$tree/pgradar/$d"; done
cd "$tree"
exec "$python" -m mypy --config-file ../../pyproject.toml --python-executable "$python" -p pgradar "$@"
