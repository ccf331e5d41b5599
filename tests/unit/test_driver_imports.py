"""One module talks to the database driver: ``agent/db.py``, with its hardened sessions and error types.

Anything else that imported psycopg would open sessions without the read-only
and time limits, or let the driver's exceptions past the one error boundary per
job. Checked on the source (every import statement, at any depth), not by
importing, so a module imported lazily inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"agent/db.py"}


def driver_imports(path: Path) -> list[int]:
    """Lines of ``path`` that import psycopg (or one of its modules)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names = [node.module]
        else:
            continue
        if any(name == "psycopg" or name.startswith("psycopg.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_db_module_imports_psycopg() -> None:
    found = {
        f"{path.relative_to(ROOT).as_posix()}:{line}"
        for folder in ("agent", "exporters")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in ALLOWED
        for line in driver_imports(path)
    }
    assert sorted(found) == [], "psycopg imported outside agent/db.py; go through pgradar.agent.db"


def test_the_check_sees_an_import() -> None:
    assert driver_imports(ROOT / "agent" / "db.py"), "agent/db.py imports psycopg: the check must find it"
