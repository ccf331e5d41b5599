"""Normalized statement texts: grouping them, and what the statement rules read of them.

Parsing is ``sqlparse.parse`` (one place for the rewrites sqlglot needs on
pg_stat_statements texts, DESIGN 7). A driver that binds ints as
int2/int4/int8 (psycopg 3) splits one statement text over several queryids:
``group_key`` gives them one key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from pgradar.agent.sqlparse import parse

_WRITES = re.compile(r"\b(insert|update|delete|merge)\b", re.IGNORECASE)


def group_key(text: str) -> str:
    """One key for the texts of one statement: whitespace and case of keywords aside.

    Parameters are already ``$n`` in normalized texts, so the same statement
    bound with different parameter types has the same key.
    """
    return " ".join(text.split()).rstrip(";").lower()


def is_select(text: str) -> bool:
    """A read (SELECT, or WITH ... SELECT) and not a locking or writing one."""
    head = text.lstrip(" \t\n(").lower()
    if head.startswith("with"):
        return not _WRITES.search(text)
    return head.startswith("select") and " into " not in f" {' '.join(head.split())} "


_QUERY_HEADS = ("select", "with", "insert", "update", "delete", "merge", "values", "table")


def is_query(text: str) -> bool:
    """A query (DML), not a utility statement: CREATE INDEX or ANALYZE read and sort too, by design."""
    head = text.lstrip(" \t\n(").split(None, 1)
    return bool(head) and head[0].lower() in _QUERY_HEADS


@dataclass(frozen=True, slots=True)
class StarSource:
    """A table whose every column the outer SELECT returns."""

    schema: str | None
    relation: str


# Results are small and texts stable, so the cache holds a whole pg_stat_statements
# (pg_stat_statements.max up to 10,000): a smaller LRU walked in the same order
# every classification would miss every time. Trees are not kept.
@lru_cache(maxsize=16384)
def star_sources(text: str) -> tuple[StarSource, ...]:
    """Tables expanded by ``*`` (or ``alias.*``) in the outermost SELECT list.

    ``SELECT *`` expands every table of the FROM clause and its joins;
    ``o.*`` expands the table aliased ``o``. Stars inside subqueries,
    ``count(*)`` and stars over subqueries or functions are not counted.
    """
    tree = parse(text)
    if not isinstance(tree, exp.Select):
        return ()
    tables: dict[str, exp.Table] = {}
    order: list[exp.Table] = []
    sources = []
    if tree.args.get("from_") is not None:
        sources.append(tree.args["from_"].this)
    sources += [j.this for j in tree.args.get("joins") or []]
    for source in sources:
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            tables[source.alias_or_name] = source
            order.append(source)
    found: list[exp.Table] = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star):
            found.extend(order)
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            table = tables.get(projection.table)
            if table is not None:
                found.append(table)
    seen: dict[tuple[str | None, str], StarSource] = {}
    for table in found:
        source = StarSource(table.db or None, table.name)
        seen.setdefault((source.schema, source.relation), source)
    return tuple(seen.values())
