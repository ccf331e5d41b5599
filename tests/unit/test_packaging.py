"""What ships is what is in the source tree: every module and data file, nothing else.

``make test`` (what CI runs) installs the built wheel, not the checkout, and sets
TEST_PGRADAR_INSTALL=wheel: there this test compares the installed ``pgradar.*`` files with the
source folders, so a subpackage or a data file the build leaves out fails here, by name, before any
test that needs it. (A hand-written
package list once left ``pgradar.agent.classifiers`` out of the wheel while every test, run from an
editable checkout, passed.) In an editable checkout the comparison is of the tree with itself; the
image test (tests/integration/test_image.py) builds the image and compares its install too.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from shipped import FOLDERS, ROOT, installed_files, source_files


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


WHEEL = os.environ.get("TEST_PGRADAR_INSTALL") == "wheel"  # set by make test


def test_the_installed_package_has_every_file_of_the_source_tree() -> None:
    installed = set().union(*(installed_files(package_dir(pkg)) for pkg in FOLDERS.values()))
    expected = source_files()
    assert sorted(expected - installed) == [], "in the source tree, missing from the installed package"
    assert sorted(installed - expected) == [], "installed, but not in the source tree (a stale build?)"
    assert any(f.startswith("pgradar/agent/classifiers/") for f in installed)
    assert any(f.endswith(".sql") for f in installed) and any(f.endswith(".json") for f in installed)


def test_the_tests_import_what_ships() -> None:
    """In CI every ``pgradar.*`` package comes from the installed wheel, never from the checkout."""
    for folder, package in FOLDERS.items():
        where = package_dir(package)
        if WHEEL:
            assert where != ROOT / folder, f"{package} comes from the checkout, not the wheel"
            assert where.parent.name == "pgradar" and "site-packages" in where.parts
        else:
            assert where == ROOT / folder
