"""Normalized statement texts: grouping them, and parsing them with sqlglot.

Kept small on purpose (the EXPLAIN and query-structure work has its own
sqlglot module; the two are meant to be consolidated). Two facts measured
on real pg_stat_statements texts shape it (DESIGN 7):

- sqlglot reads ``$1,$2`` (no space) as the start of a dollar-quoted string,
  and fails on typed literals normalized to ``date $1``; a space before each
  ``$n`` and ``CAST($n AS type)`` fix both without breaking anything else.
- a driver that binds ints as int2/int4/int8 (psycopg 3) splits one
  statement text over several queryids: ``group_key`` gives them one key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp

_PARAM_AFTER = re.compile(r"(?<=[^\s(])\$(\d+)")
_WRITES = re.compile(r"\b(insert|update|delete|merge)\b", re.IGNORECASE)
_TYPED_LITERAL = re.compile(
    r"\b(date|time|timestamp|timestamptz|interval|numeric|int[248]?|bigint|smallint|text|uuid|jsonb?)"
    r"\s+\$(\d+)", re.IGNORECASE)


def for_sqlglot(text: str) -> str:
    """A normalized text in the form sqlglot parses (DESIGN 7)."""
    text = _TYPED_LITERAL.sub(lambda m: f"CAST(${m[2]} AS {m[1]})", text)
    return _PARAM_AFTER.sub(r" $\1", text)


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


@lru_cache(maxsize=4096)
def parse(text: str) -> exp.Expression | None:
    """The statement's tree, or None when sqlglot cannot read it (about 3.5% of texts)."""
    try:
        tree = sqlglot.parse_one(for_sqlglot(text), read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    return tree


@dataclass(frozen=True, slots=True)
class StarSource:
    """A table whose every column the outer SELECT returns."""

    schema: str | None
    relation: str


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
