"""The layers, read from the folders and the source's import statements (at any depth: a lazy import counts).

A module's folder is its layer, so these rules name folder prefixes and never a list of modules:

- ``agent/model`` is types and small pure functions: the standard library and itself only, so a
  classifier or a test builds one without I/O.
- ``agent/collect`` talks to servers (the one psycopg module is ``collect/db.py``); ``agent/sqlshape``
  is the one importer of sqlglot; ``agent/derive`` computes from snapshots without I/O;
  ``agent/plans`` reads and judges plans (over collect's sessions); ``agent/classifiers`` judge an
  Observation and import nothing that reads a database, a file or a socket; ``agent/settings`` is
  what the user configures; ``agent/runtime`` runs all of it.
- ``exporters`` render what the agent found and never judge it again (no classifier); the
  commands (``commands``) sit above both, and nothing imports them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "agent": "pgradar.agent",
    "commands": "pgradar.commands",
    "exporters": "pgradar.exporters",
    "dashboards": "pgradar.dashboards",
}

# What each layer of the agent may import besides itself and the standard library: lower layers only.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "pgradar.agent.model": (),
    "pgradar.agent.collect": ("pgradar.agent.model", "psycopg"),
    "pgradar.agent.sqlshape": ("pgradar.agent.model", "sqlglot"),
    "pgradar.agent.derive": ("pgradar.agent.model", "pgradar.agent.sqlshape"),
    "pgradar.agent.settings": ("pgradar.agent.model", "pgradar.agent.collect.db", "yaml"),
    "pgradar.agent.plans": (
        "pgradar.agent.model",
        "pgradar.agent.collect",
        "pgradar.agent.sqlshape",
        "pgradar.agent.derive",
    ),
    "pgradar.agent.classifiers": ("pgradar.agent.model", "pgradar.agent.sqlshape", "pgradar.agent.derive"),
}
# Outside the agent: a package imports no package above it.
MAY_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "pgradar.agent": ("pgradar.exporters", "pgradar.commands", "pgradar.dashboards"),
    "pgradar.exporters": ("pgradar.commands", "pgradar.dashboards", "pgradar.agent.classifiers"),
    "pgradar.dashboards": ("pgradar.commands",),
}


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


def layer_of(module: str) -> str | None:
    return next((layer for layer in MAY_IMPORT if within(module, layer)), None)


def importers_of(prefix: str) -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix() for p in sources(*FOLDERS) if any(within(m, prefix) for m in imports(p))
    )


def outside_standard_library(module: str) -> bool:
    top = module.split(".")[0]
    return top not in sys.stdlib_module_names and top != "_typeshed" and module not in ("pgradar", "pgradar.agent")


@pytest.mark.parametrize(("dependency", "home"), [("psycopg", "agent/collect/db.py"), ("sqlglot", "agent/sqlshape/")])
def test_one_place_imports_each_dependency(dependency: str, home: str) -> None:
    importers = importers_of(dependency)
    assert importers and all(p == home or (home.endswith("/") and p.startswith(home)) for p in importers), importers


@pytest.mark.parametrize("path", sources("agent"), ids=lambda p: p.relative_to(ROOT / "agent").as_posix())
def test_each_agent_layer_imports_only_the_layers_below_it(path: Path) -> None:
    layer = layer_of(module_name(path))
    if layer is None:  # runtime (and the package docstring): may use every layer of the agent
        assert within(module_name(path), "pgradar.agent.runtime") or path.name == "__init__.py", path
        allowed: tuple[str, ...] = ("pgradar.agent", "apscheduler", "psycopg")
    else:
        allowed = (layer, *MAY_IMPORT[layer])
    wrong = sorted(m for m in imports(path) if outside_standard_library(m) and not any(within(m, a) for a in allowed))
    assert wrong == [], f"{path.relative_to(ROOT)} ({layer or 'runtime'}) imports {wrong}"


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_package_imports_one_above_it(package: str) -> None:
    folder = next(f for f, name in FOLDERS.items() if name == package)
    found = sorted(
        f"{p.relative_to(ROOT)}: {m}"
        for p in sources(folder)
        for m in imports(p)
        if any(within(m, above) for above in MAY_NOT_IMPORT[package])
    )
    assert found == []


def test_nothing_imports_the_commands() -> None:
    assert [p for p in importers_of("pgradar.commands") if not p.startswith("commands/")] == []


def test_the_reader_sees_every_way_of_writing_an_import() -> None:
    for line in (
        "from pgradar.agent.classifiers.replication import lag",
        "from pgradar.agent import classifiers",
        "import pgradar.agent.classifiers.tables",
        "def f():\n    from ..agent.classifiers import CLASSIFIERS",
    ):
        assert any(within(m, "pgradar.agent.classifiers") for m in imports_in(line, "pgradar.exporters")), line
    assert "agent/collect/db.py" in importers_of("psycopg")
    assert layer_of("pgradar.agent.collect.db") == "pgradar.agent.collect"
    assert layer_of("pgradar.agent.runtime.runner") is None


def test_config_loads_no_heavy_dependency() -> None:
    """``pgradar --help`` and config validation answer at once: no driver, parser or exporter library behind them."""
    code = (
        "import sys, pgradar.agent.settings.config, pgradar.agent.model.jobs; "
        "print(sorted(m for m in ('sqlglot', 'psycopg', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_module_reads_in_one_sitting() -> None:
    """Under 600 lines, the declarative dashboards aside (a panel list is long, not deep)."""
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in sources("agent", "commands", "exporters")
        if (n := len(p.read_text().splitlines())) >= 600
    ]
    assert long == []
