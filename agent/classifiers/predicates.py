"""Predicate problems: a function, cast or arithmetic on an indexed column hides the index (DESIGN 3.2).

The statement's structure comes from ``agent.sqlshape`` (sqlglot, cached by
text); the indexes and tables from their collectors. Like the other
statement rules it reads the latest interval of pg_stat_statements, so a
statement that is fixed, or stops running, is gone on the next pass, and so
is one whose expression gets an index of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pgradar.agent.classifiers.fixes import create_index_on, index_candidate, index_name_for
from pgradar.agent.classifiers.grouped import StatementGroup, statement_groups
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.catalog import IndexesSnapshot, IndexStat, TablesSnapshot, TableStat
from pgradar.agent.model.findings import Finding, Kind, Severity, evidence_text, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.sqlshape import (
    Wrapped,
    index_expression_keys,
    is_dml,
    is_noop_cast,
    is_timestamptz,
    sargable_rewrite,
    wrapped_predicates,
)


def hidden_index(w: Wrapped, indexes: Sequence[IndexStat]) -> tuple[IndexStat, str | None] | None:
    """The index that ``w`` keeps from serving its statement, and the column's type; or None.

    None when no valid, non-partial index of the table leads with the column
    (btree; hash for equality), when the cast is one PostgreSQL drops (to the
    column's own type, varchar to text), or when an index already has the
    expression among its keys (compared after normalization: pg_get_expr
    writes ``lower((email)::text)`` for ``lower(email)``).
    """
    usable = [i for i in indexes if i.is_valid and i.predicate is None]
    leading = [
        i
        for i in usable
        if i.keys
        and i.keys[0] == w.column
        and (i.method == "btree" or (i.method == "hash" and w.operator in ("=", "in")))
    ]
    if not leading:
        return None
    best = min(leading, key=lambda i: (not i.is_primary, not i.is_unique, i.index))
    column_type = best.column_types[0] if best.column_types else None
    if w.shape in ("cast", "date") and is_noop_cast(w.cast_type, column_type):
        return None
    if any(w.key in index_expression_keys(i.expressions) for i in usable):
        return None
    return best, column_type


@dataclass(frozen=True, slots=True)
class _Relations:
    """One snapshot's relations by table, and the schemas each relation name is found in."""

    by_table: dict[tuple[str, str, str], Any]  # (database, schema, relation) -> its table, or its indexes
    partitioned: frozenset[tuple[str, str, str]]
    schemas: dict[tuple[str, str], frozenset[str]]  # (database, relation) -> schemas


def _schemas_of(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], frozenset[str]]:
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for database, schema, relation in keys:
        found[(database, relation)].add(schema)
    return {k: frozenset(v) for k, v in found.items()}


@per_snapshot  # once per indexes poll (every 5 minutes), not at every tables poll
def _index_relations(indexes: Sequence[IndexStat]) -> _Relations:
    """The indexes by table; an index of a partition counts for its root too."""
    by_table: dict[tuple[str, str, str], list[IndexStat]] = defaultdict(list)
    partitioned = set()
    for i in indexes:
        by_table[(i.database, i.schema, i.relation)].append(i)
        if i.root_schema is not None and i.root_relation is not None:
            by_table[(i.database, i.root_schema, i.root_relation)].append(i)
            partitioned.add((i.database, i.root_schema, i.root_relation))
    return _Relations(dict(by_table), frozenset(partitioned), _schemas_of(by_table))


@per_snapshot
def _table_relations(tables: Sequence[TableStat]) -> _Relations:
    by_table = {(t.database, t.schema, t.relation): t for t in tables}
    partitioned = frozenset(k for k, t in by_table.items() if t.relkind == "p")
    return _Relations(by_table, partitioned, _schemas_of(by_table))


class _Catalog:
    """The indexes and tables of every database, by table, each side derived once per poll of its own."""

    def __init__(self, indexes: Sequence[IndexStat], tables: Sequence[TableStat]) -> None:
        self._indexes, self._tables = _index_relations(indexes), _table_relations(tables)

    def indexes_of(self, key: tuple[str, str, str]) -> Sequence[IndexStat]:
        found: Sequence[IndexStat] = self._indexes.by_table.get(key, ())
        return found

    def table(self, key: tuple[str, str, str]) -> TableStat | None:
        found: TableStat | None = self._tables.by_table.get(key)
        return found

    def is_partitioned(self, key: tuple[str, str, str]) -> bool:
        return key in self._indexes.partitioned or key in self._tables.partitioned

    def resolve(self, database: str, schema: str | None, relation: str) -> tuple[str, str] | None:
        """The table a FROM item names; an unqualified name found in more than one schema is skipped."""
        key = (database, relation)
        schemas = self._indexes.schemas.get(key, frozenset()) | self._tables.schemas.get(key, frozenset())
        if schema is not None:
            return (schema, relation) if schema in schemas else None
        return (next(iter(schemas)), relation) if len(schemas) == 1 else None


def _small(table: TableStat | None, t: Thresholds) -> bool:
    """Known to be small: a sequential scan of it is the right plan anyway."""
    if table is None or table.relkind == "p":
        return False
    rows = max(table.reltuples, table.n_live_tup)
    return rows < t.large_table_rows and (table.size_bytes or 0) < t.large_table_bytes


@dataclass(frozen=True, slots=True)
class _Hidden:
    wrapped: Wrapped
    index: IndexStat
    column_type: str | None

    @property
    def index_name(self) -> str:
        return self.index.root_index or self.index.index


def _fix_lines(
    h: _Hidden, schema: str, relation: str, partitioned: bool, candidates: list[dict[str, object]]
) -> list[str]:
    """The rewrite where there is one; the expression index for functions, or where there is no rewrite.

    The expression index is added to ``candidates`` too (``onefix``).
    """
    w, lines = h.wrapped, []
    better = sargable_rewrite(w, h.column_type)
    if better is not None:
        lines.append(f"-- rewrite {w.predicate} as {better} (index {h.index_name} then serves it)")
    if w.shape != "function" and better is not None:
        return lines
    if is_timestamptz(h.column_type) and w.shape != "function":
        lines.append(
            f"-- compare {w.column_sql} itself with a range instead of {w.expression}: casts of "
            "timestamptz depend on the TimeZone setting and cannot be indexed"
        )
        return lines
    name = index_name_for(relation, [w.column, w.word])
    create = create_index_on(schema, relation, f"({w.index_sql})", partitioned, name)
    lines.append(create)
    if all(c["sql"] != create for c in candidates):
        candidates.append(index_candidate(schema, relation, (f"({w.index_sql})",), 0, partitioned, sql=create))
    if w.has_parameter:
        lines.append(
            "-- an index expression cannot hold a parameter: write the constant the application "
            "passes in place of each $n"
        )
    if is_timestamptz(h.column_type) or w.shape != "function":
        lines.append(
            "-- PostgreSQL indexes only IMMUTABLE expressions: not casts between text and dates or "
            "times, nor most functions of timestamptz"
        )
    if w.word in ("lower", "upper"):
        lines.append(f"-- or make {quote_ident(w.column)} case-insensitive (citext) and compare it directly")
    return lines


def _finding(
    obs: Observation,
    g: StatementGroup,
    share: float,
    interval_seconds: float,
    schema: str,
    relation: str,
    found: list[_Hidden],
    partitioned: bool,
    table: TableStat | None,
) -> Finding:
    first = found[0]
    lines: list[str] = []
    candidates: list[dict[str, object]] = []
    for h in found:
        lines += [line for line in _fix_lines(h, schema, relation, partitioned, candidates) if line not in lines]
    queryid = str(g.queryids[0])
    mean_ms = g.exec_ms / g.calls if g.calls else 0.0
    name = qualified(schema, relation)
    w = first.wrapped
    evidence: dict[str, Any] = {
        "predicate": w.predicate,
        "column": w.column,
        "column_type": first.column_type,
        "index": first.index_name,
        "expression": w.expression,
        "rewrite": sargable_rewrite(w, first.column_type),
        "predicates": [
            {
                "predicate": h.wrapped.predicate,
                "column": h.wrapped.column,
                "index": h.index_name,
                "rewrite": sargable_rewrite(h.wrapped, h.column_type),
            }
            for h in found
        ],
        "calls": g.calls,
        "mean_exec_ms": round(mean_ms, 3),
        "exec_time_share": round(share, 4),
        "table_rows": round(max(table.reltuples, table.n_live_tup)) if table is not None else None,
        "queryids": [str(q) for q in g.queryids],
        "query": evidence_text(g.text),
        "interval_seconds": round(interval_seconds, 1),
    }
    if candidates:
        evidence["index_candidates"] = candidates
    more = f" (and {len(found) - 1} more predicate{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
    return Finding(
        Kind.NON_SARGABLE_PREDICATE,
        Severity.WARNING,
        obs.target,
        summary=(
            f"statement {queryid} filters {name} on {w.expression}, so index {first.index_name} on "
            f"{w.column} cannot serve it{more}; {g.calls} calls in {interval_seconds:.0f}s, "
            f"{mean_ms:.2f} ms each"
        ),
        recommendation="\n".join(lines),
        evidence=evidence,
        database=g.database,
        schema=schema,
        relation=relation,
        queryid=queryid,
    )


def non_sargable_predicate(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A function, cast or arithmetic on an indexed column in WHERE or JOIN ON.

    Rule: in the latest interval, a query text (its queryids grouped) run at
    least ``statement_min_calls`` times or taking ``statement_min_share`` of
    the execution time compares an expression over one column
    (``lower(email) = $1``, ``date(created_at) = $1``, ``id::text = $1``,
    ``qty + 1 > $1``) with something that does not depend on the same row,
    and that column leads a valid index of the table (found through the FROM
    aliases; an unqualified table name in more than one schema is skipped),
    and no index has the expression itself among its keys. Tables known to
    be small (``large_table_rows``, ``large_table_bytes``) are left alone.
    One finding per statement and table.
    Evidence: the predicate, the column and its type, the hidden index, the
    rewrite, calls and mean time in the interval, the statement.
    Fix: the rewrite that leaves the column alone (a range for ``date()``,
    the value cast to the column's type, the constant moved across); for
    functions, or where there is none, the expression index.
    """
    interval = obs.statement_intervals[-1] if obs.statement_intervals else None
    indexes: IndexesSnapshot | None = obs.snapshots.indexes
    if interval is None or indexes is None:
        return
    tables: TablesSnapshot | None = obs.snapshots.tables
    catalog = _Catalog(indexes.indexes, tables.tables if tables is not None else ())
    total_ms = sum(d.total_exec_ms for d in interval.deltas) or 1.0
    for g in statement_groups(obs, interval.deltas):
        share = g.exec_ms / total_ms
        if g.calls < t.statement_min_calls and share < t.statement_min_share:
            continue  # the figures first: most statements stop here, before their text is read
        if g.text is None or not is_dml(g.text):
            continue
        by_table: dict[tuple[str, str], list[_Hidden]] = defaultdict(list)
        for w in wrapped_predicates(g.text):
            name = catalog.resolve(g.database, w.schema, w.table)
            if name is None or _small(catalog.table((g.database, *name)), t):
                continue
            hidden = hidden_index(w, catalog.indexes_of((g.database, *name)))
            if hidden is not None and all(h.wrapped.key != w.key for h in by_table[name]):
                by_table[name].append(_Hidden(w, *hidden))
        for (schema, relation), found in by_table.items():
            if found:
                yield _finding(
                    obs,
                    g,
                    share,
                    interval.seconds,
                    schema,
                    relation,
                    found,
                    catalog.is_partitioned((g.database, schema, relation)),
                    catalog.table((g.database, schema, relation)),
                )


CLASSIFIERS = (non_sargable_predicate,)
