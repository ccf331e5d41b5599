"""The one resolver of SQL variants.

Every query lives in ``agent/collect/sql/<collector>/<name>.<major>.sql``, where
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

# Every statement pgradar sends ends with this comment (DESIGN 4), so its
# own statements can be told from the application's in pg_stat_statements:
# with ``pg_stat_statements.track = all`` even its EXPLAIN and PREPARE texts
# are recorded there, under the application's queryids. At the end, not the
# start: PostgreSQL 18 records a statement from its first token, so a leading
# comment is lost, while a trailing one is kept on 13 to 18.
MARKER = "/* pgradar */"


def marked(text: str) -> str:
    """``text`` as sent to a server: the marker last, on its own line (after any ``--`` comment)."""
    body = text.rstrip()
    if body.endswith(MARKER):
        return text
    if body.endswith(";"):  # the marker goes inside the statement, not after it
        body = body[:-1].rstrip()
    return f"{body}\n{MARKER}"


def is_own(text: str) -> bool:
    """A statement text pgradar sent: it ends with the marker (a ``;`` and blanks aside)."""
    return text.rstrip().rstrip(";").rstrip().endswith(MARKER)


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


@cache
def resolve(collector: str, name: str, major: int) -> Query:
    candidates = [since for since in variants(collector, name) if since <= major]
    if not candidates:
        raise QueryNotFound(f"no SQL for {collector}/{name} on PostgreSQL {major}")
    since = max(candidates)
    return Query(collector, name, since, variants(collector, name)[since].read_text())
