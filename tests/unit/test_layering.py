"""The layers, read from the source's import statements (at any depth: a lazy import counts).

- One module per outside dependency that shapes a layer: psycopg in ``db`` (hardened
  sessions and the error types the job boundary knows), sqlglot in ``sqlshape``.
- The model (``agent/model``) is types and small pure functions: it imports only the
  standard library and itself, so a classifier or a test builds one without I/O.
- Classifiers judge an Observation: they import no module that talks to a database,
  a file or the network.
- Exporters render what the agent found and never judge it again: no classifier.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"agent": "pgradar.agent", "exporters": "pgradar.exporters", "dashboards": "pgradar.dashboards"}
# Modules that read a database, a file or a socket, or start threads.
IO_MODULES = (
    "psycopg",
    "pgradar.agent.db",
    "pgradar.agent.collectors",
    "pgradar.agent.registry",
    "pgradar.agent.runner",
    "pgradar.agent.pool",
    "pgradar.agent.bouncer",
    "pgradar.agent.custom_collector",
    "pgradar.agent.embedded",
    "pgradar.agent.agent",
    "pgradar.agent.demo",
    "pgradar.agent.plans.planner",
    "pgradar.agent.plans.generic",
    "pgradar.agent.plans.analyze",
    "pgradar.agent.plans.advisor",
    "pgradar.agent.plans.autoexplain",
    "pgradar.exporters",
)


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    return ".".join([FOLDERS[folder], *(p for p in rest if p != "__init__")])


def imports(path: Path) -> set[str]:
    package = module_name(path).rpartition(".")[0] if path.name != "__init__.py" else module_name(path)
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> set[str]:
    """Every module a source imports, relative imports resolved; ``from a import b`` gives ``a`` and ``a.b``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def importers_of(prefix: str) -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix() for p in sources(*FOLDERS) if any(within(m, prefix) for m in imports(p))
    )


@pytest.mark.parametrize(
    ("dependency", "home"),
    [("psycopg", "agent/db.py"), ("sqlglot", "agent/sqlshape.py")],
)
def test_one_module_imports_each_dependency(dependency: str, home: str) -> None:
    assert importers_of(dependency) == [home]


@pytest.mark.parametrize("path", sources("agent/model"), ids=lambda p: p.name)
def test_the_model_imports_only_the_standard_library_and_itself(path: Path) -> None:
    outside = sorted(
        m
        for m in imports(path)
        if not within(m, "pgradar.agent.model") and m.split(".")[0] not in sys.stdlib_module_names
    )
    assert outside == [], f"{path.name} imports {outside}"


@pytest.mark.parametrize("path", sources("agent/classifiers"), ids=lambda p: p.name)
def test_classifiers_import_no_io_module(path: Path) -> None:
    found = sorted(m for m in imports(path) for io in IO_MODULES if within(m, io))
    assert found == [], f"{path.name} imports {found}"


@pytest.mark.parametrize("path", sources("exporters"), ids=lambda p: p.name)
def test_exporters_import_no_classifier(path: Path) -> None:
    found = sorted(m for m in imports(path) if within(m, "pgradar.agent.classifiers"))
    assert found == [], f"exporters/{path.name} imports {found}"


def test_the_reader_sees_every_way_of_writing_an_import() -> None:
    for line in (
        "from pgradar.agent.classifiers.replication import lag",
        "from pgradar.agent import classifiers",
        "import pgradar.agent.classifiers.tables",
        "def f():\n    from ..agent.classifiers import CLASSIFIERS",
    ):
        assert any(within(m, "pgradar.agent.classifiers") for m in imports_in(line, "pgradar.exporters")), line
    assert "agent/db.py" in importers_of("psycopg")


def test_config_loads_no_heavy_dependency() -> None:
    """``pgradar --help`` and config validation answer at once: no driver, parser or pandas behind them."""
    code = (
        "import sys, pgradar.agent.config, pgradar.agent.jobs; "
        "print(sorted(m for m in ('pandas', 'sqlglot', 'psycopg', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
