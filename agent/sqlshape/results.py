"""How the outermost query bounds its result (LIMIT, OFFSET, ORDER BY) and which sources a ``*`` reads."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlglot import exp

from pgradar.agent.sqlshape.text import parse
from pgradar.agent.sqlshape.uses import identifier_name

# --- paging: how the outermost query bounds its result ------------------------------------------

_VALUES = (exp.Parameter, exp.Placeholder, exp.Literal)


@dataclass(frozen=True, slots=True)
class Paging:
    """How the outermost query of a statement bounds its result (query-pattern rules).

    ``limit`` and ``offset`` are the clause's text (``$1``, ``20``) or None;
    ``FETCH FIRST n ROWS`` counts as a limit. ``order`` is the ORDER BY as
    written (a column with ``DESC`` when descending), ``tables`` the tables
    of the outermost FROM and joins, ``aggregated`` whether it groups or
    aggregates (its rows are already a summary).
    """

    limit: str | None
    offset: str | None
    order: tuple[str, ...]
    tables: tuple[tuple[str | None, str], ...]
    aggregated: bool
    where: str | None


@functools.lru_cache(maxsize=16384)
def paging(text: str) -> Paging | None:
    """The outermost query's LIMIT, OFFSET, ORDER BY and tables; None when unparsable or not a query."""
    tree = parse(text)
    if not isinstance(tree, exp.Query):
        return None
    try:
        limit, offset = tree.args.get("limit"), tree.args.get("offset")
        order = tree.args.get("order")
        keys = tuple(
            o.this.sql(dialect="postgres", comments=False) + (" DESC" if o.args.get("desc") else "")
            for o in (order.expressions if order is not None else ())
        )
        tables: list[tuple[str | None, str]] = []
        aggregated = False
        where = None
        if isinstance(tree, exp.Select):
            sources = ([tree.args["from_"].this] if tree.args.get("from_") else []) + [
                j.this for j in tree.args.get("joins") or ()
            ]
            for source in sources:
                if isinstance(source, exp.Table) and source.name:
                    tables.append((identifier_name(source.args.get("db")), str(identifier_name(source.this))))
            aggregated = tree.args.get("group") is not None or any(
                e.find(exp.AggFunc) is not None and e.find(exp.Window) is None for e in tree.expressions
            )
            if tree.args.get("where") is not None:
                where = tree.args["where"].this.sql(dialect="postgres", comments=False)
        value = (
            limit.expression
            if isinstance(limit, exp.Limit)
            else (limit.args.get("count") if isinstance(limit, exp.Fetch) else None)
        )
        off = offset.expression if isinstance(offset, exp.Offset) else None

        def as_sql(node: exp.Expr | None) -> str | None:
            while isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this.unnest(), _VALUES):
                node = node.this.unnest()  # LIMIT $1::INTEGER (SQLAlchemy) pages as LIMIT $1
            return node.sql(dialect="postgres", comments=False) if node is not None else None

        return Paging(
            as_sql(value) or ("ALL" if limit is not None else None), as_sql(off), keys, tuple(tables), aggregated, where
        )
    except Exception:  # an unexpected tree shape: no judgement rather than a failed cycle
        return None


# --- star sources ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StarSource:
    """A table whose every column the outer SELECT returns."""

    schema: str | None
    relation: str


@functools.lru_cache(maxsize=16384)  # a whole pg_stat_statements: see read_kind
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
