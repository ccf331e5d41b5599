"""The reference pages say what the code does: every threshold listed with its default.

docs/kinds.md's thresholds table is parsed and compared with ``thresholds.DEFAULT``; a threshold
added in code without a row, or a default changed without the page, fails here. Sizes are
written the way people read them (8 MiB, 7 days, 500 M), so those units are understood.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from pgradar.agent.model.thresholds import DEFAULT

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "days": 86400, "M": 1e6, "G": 1e9}


def _value(text: str) -> float:
    number, _, unit = text.strip().partition(" ")
    return float(number) * UNITS.get(unit, 1)


def documented_defaults() -> dict[str, float]:
    page = (ROOT / "docs" / "kinds.md").read_text()
    table = page.split("| threshold | default | used by |", 1)[1].split("\n\n", 1)[0]
    found: dict[str, float] = {}
    for row in table.splitlines()[2:]:
        names_cell, default_cell = row.split("|")[1:3]
        names = re.findall(r"`(\w+)`", names_cell)
        defaults = default_cell.split(",")
        assert len(names) == len(defaults), row
        found.update({n: _value(d) for n, d in zip(names, defaults, strict=True)})
    return found


def test_every_threshold_is_documented_with_its_default() -> None:
    documented = documented_defaults()
    in_code = {f.name: float(getattr(DEFAULT, f.name)) for f in fields(DEFAULT)}
    assert sorted(set(in_code) - set(documented)) == [], "thresholds missing from docs/kinds.md"
    assert sorted(set(documented) - set(in_code)) == [], "docs/kinds.md lists thresholds the code does not have"
    assert {n: v for n, v in documented.items() if v != in_code[n]} == {}, "defaults that differ from the code"


def test_the_pages_the_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name} links {link}, which does not exist"
    assert len(readme.splitlines()) < 250, "the README is the front door; the reference goes in docs/"


def test_every_problem_kind_is_documented() -> None:
    """Each kind a finding can have is described on a reference page (docs/kinds.md, or a topic page)."""
    from pgradar.agent.model.findings import Kind

    pages = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert [kind for kind in Kind if f"`{kind}`" not in pages] == []
