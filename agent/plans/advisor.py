"""Index advice from a generic plan: which index, in which column order, and whether hypopg agrees.

For each sequential scan with a filter (or sorted under a Limit), the
statement's structure (sqlglot) proposes an index; where hypopg is installed
in the database, the index is created hypothetically, the statement planned
again, and the cost reduction recorded; an index-only scan it would allow
adds INCLUDE columns. One index recommended for several statements of a
table (``indexmerge``) is checked with hypopg for each of them. Everything
runs in the caller's rolled-back transaction; the judging functions
(``order_by_selectivity``, ``unselective``, ``covering_columns``,
``wants_first_rows``) are pure.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pgradar.agent import sqlshape
from pgradar.agent.collect.db import DatabaseError, QueryFailed, Session
from pgradar.agent.derive import indexmerge
from pgradar.agent.model.findings import qualified
from pgradar.agent.model.plans import IndexAdvice, PlanSummary, SeqScan, StatementPlan
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.plans import planner
from pgradar.agent.plans.chooser import PlanContext
from pgradar.agent.plans.walker import all_pruned, index_only_scan, root_of, walk


def order_by_selectivity(columns: tuple[str, ...], equality: int, distinct: Mapping[str, float]) -> tuple[str, ...]:
    """The equality columns most selective first (most distinct values, pg_stats), the rest as they were.

    Any order of the equality columns serves a statement comparing them
    all; the most selective first also serves best the statements that
    compare only it. A column holding one value only is left out (it
    selects nothing). Without statistics for every one of them the order
    written in the statement stays.
    """
    head = columns[:equality]
    if len(head) < 2 or any(distinct.get(c) is None for c in head):
        return columns
    ranked = sorted(head, key=lambda c: -distinct[c])  # stable: ties keep the statement's order
    kept = [c for c in ranked if distinct[c] > 1] or ranked[:1]  # a column of one value selects nothing
    return (*kept, *columns[equality:])


def unselective(share: float | None, use: sqlshape.TableUse, limited: bool, max_share: float) -> bool:
    """An equality filter keeps more than ``max_share`` of the table: no index serves that read.

    The generic plan's estimate of ``col = $1`` comes from the column's
    statistics (its distinct values), so it tells; that of a range
    (``created > $1``) is a fixed default (a third), which says nothing of
    the data, so a filter with a range is not judged. Nor is one where the
    statement wants the first rows in an order the index gives (equality
    columns then the sort columns, under a Limit): the index scan stops
    after those rows however many match.
    """
    if share is None or share <= max_share or use.range:
        return False
    return not (limited and use.order)


def wants_first_rows(text: str) -> bool:
    """A LIMIT or FETCH with a count: only then does an index on the sort keys stop early.

    An OFFSET alone also puts a Limit node over the Sort, but the statement
    still reads the whole order (``ORDER BY payload OFFSET 59999``): an index
    on the sort keys would not save that work. Unparsable text keeps the plan's word.
    """
    paging = sqlshape.paging(text)
    return paging is None or (paging.limit is not None and paging.limit != "ALL")


@dataclass(frozen=True, slots=True)
class _Table:
    """One table the plan scans sequentially (partitions under their partitioned table)."""

    schema: str
    relation: str
    relkind: str
    reltuples: float
    index_keys: tuple[tuple[str, ...], ...]
    scans: tuple[SeqScan, ...]
    columns: int = 0

    @property
    def share(self) -> float | None:
        """The share of the table the filtered scans keep (None: no filter)."""
        filtered = [s for s in self.scans if s.filter]
        if not filtered or self.reltuples <= 0:
            return None
        return sum(s.rows for s in filtered) / self.reltuples

    @property
    def limited(self) -> bool:
        return any(s.limited for s in self.scans)


def _scanned_tables(
    session: Session, server: ServerInfo, summary: PlanSummary, named: frozenset[tuple[str, str]] = frozenset()
) -> dict[tuple[str, str], _Table]:
    """The tables whose sequential scans advice may serve: filtered, or sorted under a Limit.

    A partition's scan counts for its partitioned table (the statement
    names the parent, the plan the partitions it kept), unless the
    statement names the partition itself (``named``): then the index
    belongs on that partition alone.
    """
    tables: dict[tuple[str, str], _Table] = {}
    roots: dict[tuple[str, str], dict[str, Any] | None] = {}  # a partitioned table's partitions share one look-up
    for scan in summary.seq_scans:
        if not scan.filter and not scan.limited:
            continue
        rel = planner.relation(session, server, scan.schema, scan.relation)
        if rel is not None and rel.get("root") and (str(rel["schema"]), str(rel["relation"])) not in named:
            root = (str(rel["root_schema"]), str(rel["root"]))
            if root not in roots:
                roots[root] = planner.relation(session, server, *root)
            rel = roots[root]
        if rel is None or rel["relkind"] not in ("r", "p", "m"):
            continue
        key = (str(rel["schema"]), str(rel["relation"]))
        known = tables.get(key)
        scans = (*known.scans, scan) if known else (scan,)
        tables[key] = _Table(
            key[0],
            key[1],
            str(rel["relkind"]),
            float(rel["reltuples"]),
            tuple(tuple(k.split(",")) for k in rel["index_keys"]),
            scans,
            int(rel["columns"]),
        )
    return tables


def advise(
    session: Session,
    server: ServerInfo,
    summary: PlanSummary,
    uses: Sequence[sqlshape.TableUse] | None,
    max_share: float,
) -> list[IndexAdvice]:
    """An index per table the plan scans sequentially for a filter or a sorted Limit; none an index covers.

    The columns come from the statement's text where it names the table,
    else from the plan's own filter and sort keys (``sqlshape.plan_use``:
    views, inlined CTEs, subqueries, writes). A filter that keeps most of
    the table gets none (``unselective``); equality columns are ordered by
    pg_stats (``order_by_selectivity``).
    """
    advice: list[IndexAdvice] = []
    resolved: list[tuple[tuple[str, str], sqlshape.TableUse]] = []
    for use in uses or ():
        rel = planner.relation(session, server, use.schema, use.table)
        if rel is not None:
            resolved.append(((str(rel["schema"]), str(rel["relation"])), use))
    tables = _scanned_tables(session, server, summary, frozenset(key for key, _ in resolved))
    from_text: dict[tuple[str, str], sqlshape.TableUse] = {}
    for key, use in resolved:
        if key in tables:
            from_text.setdefault(key, use)
    for key, table in tables.items():
        found = from_text.get(key)
        if found is None or not sqlshape.propose_index(found):
            scan = table.scans[0]
            found = sqlshape.plan_use(
                scan.schema, scan.relation, scan.alias, scan.filter, scan.sort_keys if scan.limited else ()
            )
        if found is None or unselective(table.share, found, table.limited, max_share):
            continue
        columns, equality = sqlshape.propose_index(found), sqlshape.equality_count(found)
        if not columns:
            continue
        if equality > 1:
            stats = session.dicts(
                planner.query("column_stats", server),
                {"schema": table.schema, "relation": table.relation, "reltuples": table.reltuples},
            )
            ordered = order_by_selectivity(columns, equality, {r["column_name"]: r["n_distinct"] for r in stats})
            columns, equality = ordered, equality - (len(columns) - len(ordered))
        if sqlshape.covered_by(columns, [list(k) for k in table.index_keys], equality):
            continue
        candidate = IndexAdvice(
            table.schema,
            table.relation,
            columns,
            table.relkind == "p",
            table.reltuples,
            None,
            equality=equality,
            table_columns=table.columns,
            partitions=_partitions(session, server, table) if table.relkind == "p" else (),
        )
        if candidate not in advice:
            advice.append(candidate)
    return advice


def _partitions(session: Session, server: ServerInfo, table: _Table) -> tuple[tuple[str, str, str, str, bool], ...]:
    """A partitioned table's partitions at every level, top down (for the script that builds its index)."""
    rows = session.dicts(planner.query("partition_tree", server), {"name": qualified(table.schema, table.relation)})
    return tuple(
        (str(r["schema"]), str(r["relation"]), str(r["parent_schema"]), str(r["parent_relation"]), bool(r["leaf"]))
        for r in rows
    )


def verify(
    session: Session,
    server: ServerInfo,
    text: str,
    summary: PlanSummary,
    advice: IndexAdvice,
    hypopg: str,
    pruning: bool = True,
) -> IndexAdvice:
    """Plan again with the index created hypothetically (hypopg), in the same rolled-back transaction."""
    try:
        with session.rolled_back():  # a savepoint: a refused index must not abort the whole transaction
            session.dicts(
                planner.query("hypopg_create", server),
                {"definition": advice.definition(concurrently=False)},
                hypopg=hypopg,
            )
            after = walk(planner.explain(session, server, text, pruning))
    except QueryFailed as exc:
        return replace(advice, note=f"hypopg could not verify it: {exc}")
    finally:
        session.dicts(planner.query("hypopg_reset", server), hypopg=hypopg)
    return replace(advice, verified=True, cost_before=summary.total_cost, cost_after=after.total_cost)


MAX_INCLUDE = 3  # columns a covering index may carry besides its keys
WIDE_TABLE_COLUMNS = 10  # a table this wide is worth covering (as select_star_min_columns judges width)
_PLAIN_COLUMN = re.compile(r'^(?:(?:"[^"]+"|[a-z_][a-z0-9_$]*)\.)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)$')


def covering_columns(advice: IndexAdvice, summary: PlanSummary) -> tuple[str, ...]:
    """The columns the statement reads from the table besides the index's keys, when a covering index fits.

    Only for a plain table of ``WIDE_TABLE_COLUMNS`` columns or more and at
    least twice as wide as what the statement reads, scanned for plain columns (an expression in the output, or a
    filter on a column the index does not hold, and there is nothing to
    cover), and at most ``MAX_INCLUDE`` of them.
    """
    scans = [s for s in summary.seq_scans if s.relation == advice.relation and (s.schema in (None, advice.schema))]
    if advice.partitioned or not scans:
        return ()
    read: list[str] = []
    for scan in scans:
        use = sqlshape.plan_use(scan.schema, scan.relation, scan.alias, scan.filter)
        if use is None or not set(use.equality + use.range + use.join) <= set(advice.columns):
            return ()
        for item in scan.output:
            match = _PLAIN_COLUMN.match(item)
            if match is None:
                return ()
            name = match.group(1)
            name = name[1:-1].replace('""', '"') if name.startswith('"') else name
            if name not in advice.columns and name not in read:
                read.append(name)
    if (
        not read
        or len(read) > MAX_INCLUDE
        or advice.table_columns < max(WIDE_TABLE_COLUMNS, 2 * (len(advice.columns) + len(read)))
    ):
        return ()
    return tuple(read)


def cover(
    session: Session,
    server: ServerInfo,
    text: str,
    summary: PlanSummary,
    advice: IndexAdvice,
    hypopg: str,
    pruning: bool,
) -> IndexAdvice:
    """The verified advice with INCLUDE columns, when hypopg shows an index-only scan would follow and cost less."""
    include = covering_columns(advice, summary)
    if not include or not advice.verified or advice.cost_after is None:
        return advice
    covering = replace(advice, include=include)
    try:
        with session.rolled_back():
            session.dicts(
                planner.query("hypopg_create", server),
                {"definition": covering.definition(concurrently=False)},
                hypopg=hypopg,
            )
            plan = planner.explain(session, server, text, pruning)
    except QueryFailed:
        return advice
    finally:
        session.dicts(planner.query("hypopg_reset", server), hypopg=hypopg)
    only = index_only_scan(plan, advice.relation)
    cost = float(root_of(plan).get("Total Cost", 0))
    return replace(covering, cost_after=cost) if only and cost < advice.cost_after else advice


def _merged_cost(session: Session, server: ServerInfo, text: str, username: str, definition: str) -> float | None:
    """The statement's estimated cost with one hypothetical index (hypopg), or None when it cannot tell."""
    if not sqlshape.is_plain_read(text):
        text = sqlshape.equivalent_read(text) or ""
    hypopg = None
    try:
        with session.rolled_back():
            session.dicts(planner.query("search_path", server), {"path": planner.search_path_for(username)})
            hypopg = planner.hypopg_schema(session, server)
            if hypopg is None or not text:
                return None
            pruning = server.has_generic_plan or not all_pruned(planner.explain(session, server, text))
            session.dicts(planner.query("hypopg_create", server), {"definition": definition}, hypopg=hypopg)
            return walk(planner.explain(session, server, text, pruning)).total_cost
    except QueryFailed:
        return None
    finally:
        if hypopg is not None:
            with contextlib.suppress(QueryFailed):
                session.dicts(planner.query("hypopg_reset", server), hypopg=hypopg)


def verify_merged(ctx: PlanContext, plans: dict[tuple[int, int], StatementPlan]) -> None:
    """Where one index serves several statements' advice (``indexmerge``), check it with hypopg for each.

    Each statement's own index was verified when it was planned; the index
    recommended once for the table may be wider or in another order. Each
    statement it would serve is planned again with that index: if the cost
    does not drop by ``index_advice_min_gain`` the advice stays apart
    (``alone``), recommended on its own; else it records the merged index.
    Only verified advice (hypopg installed) takes part.
    """
    groups: dict[tuple[str, str, str], list[tuple[indexmerge.Candidate, tuple[int, int], int]]] = {}
    for key, plan in plans.items():
        for j, a in enumerate(plan.advice):
            if a.verified:
                groups.setdefault((plan.database, a.schema, a.relation), []).append(
                    (indexmerge.Candidate(a.columns, a.equality, a.include, a.alone), key, j)
                )
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (-len(m[0].columns), -len(m[0].include), str(m[1][1])))  # as onefix ranks
        indexmerge.merge_group([m[0] for m in members])
        for candidate, key, j in members:
            owner = candidate.served_by
            plan = plans[key]
            advice = plan.advice[j]
            if (
                owner is None
                or (owner.columns, owner.include) == (advice.columns, advice.include)
                or advice.merged == owner.columns
            ):
                continue
            text = ctx.statement_texts.get(key)
            try:
                session = ctx.session(plan.database)
            except DatabaseError:
                continue
            merged = replace(advice, columns=owner.columns, include=owner.include)
            cost = (
                _merged_cost(session, ctx.server, text, plan.username, merged.definition(concurrently=False))
                if text
                else None
            )
            if cost is None:
                continue
            before = advice.cost_before or 0.0
            serves = before > 0 and 1.0 - cost / before >= ctx.thresholds.index_advice_min_gain
            changed = (
                replace(advice, merged=owner.columns)
                if serves
                else replace(
                    advice, alone=True, note=f"the merged index ({', '.join(owner.columns)}) does not serve it (hypopg)"
                )
            )
            plans[key] = replace(plan, advice=tuple(changed if i == j else a for i, a in enumerate(plan.advice)))
