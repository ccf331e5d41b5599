"""Which files the ``pgradar`` package must carry, and which an installed copy has.

Used by the packaging test (the installed package) and the image test (a venv built from the wheel):
both compare with the source folders, so a module or data file left out of the wheel fails by name.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "agent": "pgradar.agent",
    "exporters": "pgradar.exporters",
    "dashboards": "pgradar.dashboards",
    "alerts": "pgradar.alerts",
}


def _kept(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.name != ".gitkeep"


def source_files() -> set[str]:
    """``pgradar/<folder>/...`` for every file of the mapped folders a wheel must carry."""
    return {
        f"pgradar/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("*")
        if _kept(p)
    }


def installed_files(package: Path) -> set[str]:
    """The same names for one installed package folder (its name in the wheel is ``pgradar/<folder>``)."""
    return {f"pgradar/{package.name}/{p.relative_to(package).as_posix()}" for p in package.rglob("*") if _kept(p)}
