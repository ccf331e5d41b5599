"""The exporters render what the agent found; they never judge it themselves.

An exporter that called a classifier would judge a second time, maybe with
other inputs than the finding it shows beside it (DESIGN 2). Read from the
import statements, wherever they stand (a function-level import counts).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPORTERS = sorted((ROOT / "exporters").glob("*.py"))
CLASSIFIERS = "pgradar.agent.classifiers"


def imported_modules(path: Path) -> set[str]:
    """Every module an exporter file imports, relative imports resolved (``from pgradar.agent import x`` gives both)."""
    package = "pgradar.exporters"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def test_the_exporter_files_are_read() -> None:
    assert {p.name for p in EXPORTERS} >= {"prometheus.py", "report.py", "status.py", "ci_formats.py"}
    assert "pgradar.agent.findings" in imported_modules(ROOT / "exporters" / "prometheus.py")


@pytest.mark.parametrize("path", EXPORTERS, ids=lambda p: p.name)
def test_exporters_import_no_classifier(path: Path) -> None:
    found = sorted(m for m in imported_modules(path) if m == CLASSIFIERS or m.startswith(CLASSIFIERS + "."))
    assert found == [], f"exporters/{path.name} imports {found}"


def test_a_classifier_import_is_seen(tmp_path: Path) -> None:
    """The reader catches each way of writing the import."""
    for line in (
        "from pgradar.agent.classifiers.replication import lag",
        "from pgradar.agent import classifiers",
        "import pgradar.agent.classifiers.tables",
        "def f():\n    from ..agent.classifiers import CLASSIFIERS",
    ):
        source = tmp_path / "x.py"
        source.write_text(line + "\n")
        assert any(m.startswith(CLASSIFIERS) for m in imported_modules(source)), line
