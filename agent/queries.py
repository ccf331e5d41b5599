"""The one resolver of SQL variants.

Every query lives in ``agent/sql/<collector>/<name>.<major>.sql``, where
``<major>`` is the first server version the file serves; each file starts
with a comment saying what changed in that version. A server gets the
variant with the highest ``<major>`` not above its own. SQL never lives in
Python strings elsewhere in the agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SQL_ROOT = Path(__file__).parent / "sql"
_FILE = re.compile(r"^(?P<name>[a-z_]+)\.(?P<major>\d+)\.sql$")


class QueryNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    """One resolved SQL text; ``source`` names its file for error messages."""

    collector: str
    name: str
    since: int
    text: str

    @property
    def source(self) -> str:
        return f"{self.collector}/{self.name}.{self.since}.sql"


@cache
def variants(collector: str, name: str) -> dict[int, Path]:
    """Map of first-served major version to file, for one query."""
    found: dict[int, Path] = {}
    for path in (SQL_ROOT / collector).glob(f"{name}.*.sql"):
        match = _FILE.match(path.name)
        if match and match["name"] == name:
            found[int(match["major"])] = path
    return dict(sorted(found.items()))


def all_queries() -> list[tuple[str, str]]:
    """Every (collector, name) pair that has at least one variant."""
    pairs = set()
    for path in SQL_ROOT.glob("*/*.sql"):
        match = _FILE.match(path.name)
        if match:
            pairs.add((path.parent.name, match["name"]))
    return sorted(pairs)


@cache
def resolve(collector: str, name: str, major: int) -> Query:
    candidates = [since for since in variants(collector, name) if since <= major]
    if not candidates:
        raise QueryNotFound(f"no SQL for {collector}/{name} on PostgreSQL {major}")
    since = max(candidates)
    return Query(collector, name, since, variants(collector, name)[since].read_text())
