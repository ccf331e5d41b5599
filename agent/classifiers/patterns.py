"""Query patterns: how a statement asks for its rows (DESIGN 3.2; docs/query-patterns.md).

``unbounded_result`` and ``offset_pagination`` read the statement deltas of
the latest interval (whatever window the caller built: two polls in ``run``,
``check --window``), so a statement rewritten, or no longer run, is gone on
the next pass. ``correlated_subquery`` reads the generic plans of the
statements that were frequent or expensive in that interval. Texts are read
with sqlglot (``sqlshape.paging``); a text it cannot read gives no finding:
these rules prefer the quiet answer where the evidence does not decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from pgradar.agent import sqlshape
from pgradar.agent.classifiers.fixes import index_candidate
from pgradar.agent.classifiers.grouped import StatementGroup as _Use
from pgradar.agent.classifiers.grouped import statement_groups as _uses
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot
from pgradar.agent.model.findings import (
    Finding,
    Kind,
    Severity,
    evidence_text,
    human_bytes,
    qualified,
    quote_ident,
)
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import PlansSnapshot, StatementPlan
from pgradar.agent.model.statements import StatementInterval
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.sqlshape import is_read


def _latest(obs: Observation) -> StatementInterval | None:
    return obs.statement_intervals[-1] if obs.statement_intervals else None


def _plans(obs: Observation) -> dict[tuple[int, int], StatementPlan]:
    plans: PlansSnapshot | None = obs.snapshots.plans
    return {(p.dbid, p.queryid): p for p in plans.plans if p.summary is not None} if plans else {}


def _plan_of(plans: dict[tuple[int, int], StatementPlan], use: _Use) -> StatementPlan | None:
    return next((plans[(use.dbid, q)] for q in use.queryids if (use.dbid, q) in plans), None)


# --- unbounded_result ---------------------------------------------------------------------


_LIST_OF_VALUES = re.compile(r"\bIN\s*\(\s*\$\d+|=\s*ANY\s*\(\s*\$\d+", re.IGNORECASE)


def by_list(text: str) -> bool:
    """The statement asks for the rows of a list the application sends: ``IN ($1, ...)`` or ``= ANY($1)``."""
    return _LIST_OF_VALUES.search(text) is not None


def unbounded_result(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A frequent SELECT that returns very many rows per call and has no LIMIT.

    Rule: in the latest interval, a statement text (its queryids together)
    that is a read, ran at least ``unbounded_min_calls`` times and returned
    at least ``unbounded_min_rows_per_call`` rows per call, and whose
    outermost query has no LIMIT (nor FETCH FIRST). Every row crosses the
    wire and is held by the client, on every call; a screen shows twenty.
    A text sqlglot cannot read gives no finding (it may have a LIMIT), nor
    one that asks for the rows of a list of values (``IN ($1, ...)``, ``=
    ANY($1)``): the list bounds it, and on 18 pg_stat_statements folds the
    lists of every length into one entry, whose rows per call are those of
    the lists together.
    Evidence: rows per call, calls, mean time, the plan's row width and the
    bytes per call it implies (when the statement was planned).
    Fix: a LIMIT with keyset pagination, or the aggregation done in SQL.
    """
    interval = _latest(obs)
    if interval is None:
        return
    plans = _plans(obs)
    for g in _uses(obs, interval.deltas):
        if g.text is None or g.calls < t.unbounded_min_calls or g.rows_per_call < t.unbounded_min_rows_per_call:
            continue
        if not is_read(g.text):
            continue
        shape = sqlshape.paging(g.text)
        if shape is None or shape.limit is not None or by_list(g.text):
            continue
        plan = _plan_of(plans, g)
        width = plan.summary.width if plan is not None and plan.summary is not None else None
        per_call = width * g.rows_per_call if width else None
        queryid = g.queryids[0]
        size = f", about {human_bytes(per_call)} per call" if per_call else ""
        keys = ", ".join(_bare(k) for k in shape.order) if shape.order else "key"
        order = ", ".join(shape.order) if shape.order else "key"
        yield Finding(
            Kind.UNBOUNDED_RESULT,
            Severity.WARNING,
            obs.target,
            summary=(
                f"statement {queryid} returns {g.rows_per_call:,.0f} rows per call{size}, with no LIMIT "
                f"({g.calls} calls in {interval.seconds:.0f}s)"
            ),
            recommendation=(
                f"Bound the result: add LIMIT and page by key (... WHERE ({keys}) > ($last) ORDER BY "
                f"{order} LIMIT 100, with a unique key last), or compute in SQL what the client does "
                "with the rows (GROUP BY, count(), sum()) so only the answer crosses the wire"
            ),
            evidence={
                "rows_per_call": round(g.rows_per_call),
                "calls": g.calls,
                "mean_exec_ms": round(g.exec_ms / g.calls, 3),
                "row_width_bytes": width,
                "bytes_per_call": round(per_call) if per_call else None,
                "aggregated": shape.aggregated,
                "queryids": [str(q) for q in g.queryids],
                "query": evidence_text(g.text),
                "interval_seconds": round(interval.seconds, 1),
            },
            database=g.database,
            queryid=str(queryid),
        )


# --- offset_pagination --------------------------------------------------------------------


def _bare(key: str) -> str:
    return key.removesuffix(" DESC")


def _keyset(shape: sqlshape.Paging, relation: str) -> str:
    """The keyset form of a paged statement: the last row's sort key instead of the OFFSET."""
    keys = list(shape.order)
    descending = [k.endswith(" DESC") for k in keys]
    if not keys:
        return (
            f"SELECT ... FROM {relation} WHERE id > $last_id ORDER BY id LIMIT $n "
            "(page by a unique key: OFFSET without ORDER BY returns rows in no defined order)"
        )
    columns = [_bare(k) for k in keys]
    if len(set(descending)) > 1:  # mixed directions: a row comparison does not express it
        return (
            f"SELECT ... FROM {relation} WHERE <after the last row by {', '.join(keys)}> "
            f"ORDER BY {', '.join(keys)} LIMIT $n (mixed directions: compare key by key, or store one "
            "direction)"
        )
    op = "<" if descending[0] else ">"
    lhs = f"({', '.join(columns)})" if len(columns) > 1 else columns[0]
    last = ", ".join(f"$last_{c.split('.')[-1].strip(chr(34))}" for c in columns)
    rhs = f"({last})" if len(columns) > 1 else last
    where = f"({shape.where}) AND " if shape.where else ""
    return f"SELECT ... FROM {relation} WHERE {where}{lhs} {op} {rhs} ORDER BY {', '.join(keys)} LIMIT $n"


def _serving_index(
    obs: Observation, database: str, schema: str | None, relation: str, columns: Sequence[str]
) -> str | None:
    """An existing index that leads with the sort columns (in any leading order of equality ones)."""
    indexes: IndexesSnapshot | None = obs.snapshots.indexes
    if indexes is None:
        return None
    for i in indexes.indexes:
        if (
            i.database == database
            and i.relation == relation
            and (schema is None or i.schema == schema)
            and i.is_valid
            and not i.predicate
            and list(i.keys[: len(columns)]) == list(columns)
        ):
            return i.index
    return None


def _index_reads(obs: Observation, database: str, index: str, interval: StatementInterval) -> int | None:
    """Index entries an index returned over the interval (idx_tup_read), from the kept index snapshots."""
    history: Sequence[IndexesSnapshot] = obs.history.indexes or (
        (obs.snapshots.indexes,) if obs.snapshots.indexes is not None else ()
    )
    if not history:
        return None

    def read(snap: IndexesSnapshot) -> int | None:
        return next((i.idx_tup_read for i in snap.indexes if i.database == database and i.index == index), None)

    now = read(history[-1])
    if now is None:
        return None
    before = [s for s in history[:-1] if s.taken_at <= interval.started_at]
    if before:
        return max(0, now - (read(before[-1]) or 0))
    return now if len(history) == 1 else None  # one poll (check): counters since their reset, as the interval


def rows_read_per_call(
    obs: Observation, plan: StatementPlan | None, interval: StatementInterval, calls: int
) -> tuple[float, str] | None:
    """What the statement's Limit reads per call, and from where; None when the plan does not say.

    Below the Limit, an Index Scan reads offset + limit entries of its index
    (its idx_tup_read over the interval, per call: the index's other users
    count too, so the time per call must confirm); a Sort over a Seq Scan
    reads the whole table on every page (its rows, from the catalog).
    """
    below = plan.summary.limit_input if plan is not None and plan.summary is not None else None
    if plan is None or plan.summary is None or below is None or calls <= 0:
        return None
    for used in plan.summary.indexes:
        if f" using {used.index}" in below or f" using {quote_ident(used.index)}" in below:
            entries = _index_reads(obs, plan.database, used.index, interval)
            return (entries / calls, f"index {used.index}, idx_tup_read per call") if entries is not None else None
    tables: TablesSnapshot | None = obs.snapshots.tables
    if below.startswith("Sort") and "Seq Scan" in below and tables is not None:
        scanned = [s for s in plan.summary.seq_scans if s.limited or not s.filter]
        rows = [
            max(x.reltuples, x.n_live_tup)
            for s in scanned
            for x in tables.tables
            if x.database == plan.database and x.relation == s.relation and s.schema in (None, x.schema)
        ]
        if rows:
            return sum(rows), "the whole table sorted on every page"
    return None


def deep_pages(read_per_call: float, rows_per_call: float, ms_per_call: float, t: Thresholds) -> bool:
    """Deep pages judged on rows read: many per call, many per row returned, and time spent reading them.

    Buffers alone miss a deep page over an index in the table's physical
    order: consecutive rows share heap pages, so tens of thousands of
    entries touch a few hundred buffers. A shallow page reads about what
    it returns, an OFFSET over a small table reads a small table: quiet.
    """
    return (
        read_per_call >= t.offset_min_rows_read_per_call
        and read_per_call / max(rows_per_call, 1.0) >= t.offset_min_rows_read_per_row
        and ms_per_call >= t.offset_min_ms_per_call
    )


def offset_pagination(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A frequent statement that pages with OFFSET and pays for every row it skips.

    pg_stat_statements counts the rows a paged statement returns (20 per
    call), not those it reads to skip the offset (``OFFSET 50000`` read
    50,020 index rows per call): the cost shows in the buffers it touches.
    Rule: in the latest interval, a read whose outermost query has an
    OFFSET (a parameter, or a literal other than 0), run at least
    ``offset_min_calls`` times, touching at least
    ``offset_min_blocks_per_call`` shared buffers per call and at least
    ``offset_min_blocks_per_row`` per row returned; or, judged on rows read
    (``deep_pages``: a deep page over a well-correlated index touches few
    buffers), whose generic plan has a Limit over an index scan or a sorted
    table scan reading at least ``offset_min_rows_read_per_call`` rows per
    call and ``offset_min_rows_read_per_row`` per row returned, at
    ``offset_min_ms_per_call`` or more per call. OFFSET on a small table,
    or a small offset, reads and touches little and stays quiet. Where the
    statement was planned, the evidence adds what its Limit reads (an Index
    Scan reads offset + limit rows; a Sort over a Seq Scan reads the table).
    Fix: keyset pagination (the last row's sort key instead of the offset)
    and, when none exists, the index on the sort key that serves it.
    """
    interval = _latest(obs)
    if interval is None:
        return
    plans = _plans(obs)
    for g in _uses(obs, interval.deltas):
        if g.text is None or g.calls < t.offset_min_calls or not is_read(g.text):
            continue
        per_row = g.blocks / max(g.rows, 1)
        by_buffers = g.blocks_per_call >= t.offset_min_blocks_per_call and per_row >= t.offset_min_blocks_per_row
        plan = _plan_of(plans, g)
        read = None if by_buffers else rows_read_per_call(obs, plan, interval, g.calls)
        by_rows = read is not None and deep_pages(read[0], g.rows_per_call, g.exec_ms / g.calls, t)
        if not by_buffers and not by_rows:
            continue
        shape = sqlshape.paging(g.text)
        if shape is None or shape.offset is None or shape.offset.strip() in ("0", "NULL"):
            continue
        schema, relation = shape.tables[0] if len(shape.tables) == 1 else (None, None)
        if relation is not None:  # one table: a qualifier on the sort keys is its alias or name
            shape = replace(
                shape, order=tuple(k.split(".", 1)[1] if "." in k.split(" ")[0] else k for k in shape.order)
            )
        columns = [_bare(k) for k in shape.order]
        plain = relation is not None and all(c.replace("_", "").isalnum() for c in columns)
        target_schema = schema or "public"
        name = qualified(target_schema, relation) if relation else "<table>"
        fix = _keyset(shape, name)
        index = _serving_index(obs, g.database, schema, relation, columns) if plain and relation else None
        candidates: list[dict[str, object]] = []
        if plain and relation and columns and index is None:
            keys = [c + (" DESC" if k.endswith(" DESC") else "") for c, k in zip(columns, shape.order, strict=True)]
            if all(k.endswith(" DESC") for k in keys):  # scanned backwards, the ascending index serves
                keys = columns
            candidate = index_candidate(
                target_schema, relation, keys, 0, (target_schema, relation) in _partitioned(obs, g.database)
            )
            candidates.append(candidate)
            fix = f"{candidate['sql']}\n-- then page by key: {fix}"
        else:
            served = f" (served by index {index})" if index else ""
            fix = f"-- page by key{served}: {fix}"
        queryid = g.queryids[0]
        cost = (
            f"it reads about {read[0]:,.0f} rows per call ({read[1]})"
            if read is not None and by_rows
            else f"it touches {g.blocks_per_call:,.0f} buffers per call"
        )
        yield Finding(
            Kind.OFFSET_PAGINATION,
            Severity.WARNING,
            obs.target,
            summary=(
                f"statement {queryid} pages with OFFSET {shape.offset}: {cost} to return "
                f"{g.rows_per_call:,.1f} rows ({g.calls} calls in {interval.seconds:.0f}s, "
                f"{g.exec_ms / g.calls:,.1f} ms each); every skipped row is read again on each page"
            ),
            recommendation=fix,
            evidence={
                "offset": shape.offset,
                "limit": shape.limit,
                "order_by": list(shape.order),
                "blocks_per_call": round(g.blocks_per_call),
                "blocks_per_row": round(per_row, 1),
                "rows_per_call": round(g.rows_per_call, 2),
                "calls": g.calls,
                "mean_exec_ms": round(g.exec_ms / g.calls, 3),
                "limit_reads": plan.summary.limit_input if plan is not None and plan.summary else None,
                "rows_read_per_call": round(read[0]) if read is not None else None,
                "rows_read_from": read[1] if read is not None else None,
                "evidence_from": (
                    "pg_stat_statements buffers per call"
                    if by_buffers
                    else "rows its Limit reads (the generic plan and the index or table counters), time per call"
                )
                + (" and the generic plan" if plan and by_buffers else ""),
                "queryids": [str(q) for q in g.queryids],
                "query": evidence_text(g.text),
                "interval_seconds": round(interval.seconds, 1),
                **({"index_candidates": candidates} if candidates else {}),
            },
            database=g.database,
            schema=target_schema if relation else None,
            relation=relation,
            queryid=str(queryid),
        )


# --- correlated_subquery ------------------------------------------------------------------


def _frequent(obs: Observation, t: Thresholds) -> Iterator[tuple[_Use, StatementPlan, dict[str, Any]]]:
    """Each statement text that ran ``statement_min_calls`` times in the latest interval, or took
    ``statement_min_share`` of its execution time, with its plan and its usage for the evidence."""
    interval = _latest(obs)
    plans = _plans(obs)
    if interval is None or not plans:
        return
    total_ms = sum(d.total_exec_ms for d in interval.deltas) or 1.0
    for g in _uses(obs, interval.deltas):
        if g.calls < t.statement_min_calls and g.exec_ms < t.statement_min_share * total_ms:
            continue
        plan = _plan_of(plans, g)
        if plan is not None and plan.summary is not None:
            yield (
                g,
                plan,
                {
                    "calls": g.calls,
                    "mean_exec_ms": round(g.exec_ms / g.calls, 3),
                    "queryids": [str(q) for q in g.queryids],
                    "query": evidence_text(g.text),
                    "interval_seconds": round(interval.seconds, 1),
                },
            )


def correlated_subquery(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A SubPlan run once per row of a large outer input, each run reading a table.

    Rule: the generic plan of a statement that, in the latest interval, ran
    at least ``statement_min_calls`` times or took ``statement_min_share`` of
    the execution time has a SubPlan (not an InitPlan, which runs once; not
    a hashed SubPlan, which runs once and is probed) whose parent the
    planner expects to produce at least ``correlated_min_outer_rows`` rows,
    and which reads a table sequentially on every run. A SubPlan whose run
    is an index probe costs what a nested loop would, and a SubPlan over a
    10-row outer table is cheap: both stay quiet.
    Evidence: the SubPlan, its parent, the outer row estimate, the tables it
    scans on each run, its cost per run (all from the generic plan: the
    estimates, not a count of runs).
    Fix: the JOIN / LATERAL / GROUP BY rewrite that reads the inner table
    once, or the index on the correlated column that makes each run a probe.
    """
    for g, plan, usage in _frequent(obs, t):
        yield from plan_correlated(
            obs.target, plan, t, g.database, str(g.queryids[0]), usage, _partitioned(obs, g.database)
        )


def _partitioned(obs: Observation, database: str) -> frozenset[tuple[str, str]]:
    """The partitioned tables of a database (their indexes cannot be built CONCURRENTLY)."""
    tables: TablesSnapshot | None = obs.snapshots.tables
    if tables is None:
        return frozenset()
    return frozenset((x.schema, x.relation) for x in tables.tables if x.database == database and x.relkind == "p")


def _split(name: str) -> tuple[str, str]:
    """``schema.relation`` as the plan names it (VERBOSE): its schema (public when none) and relation."""
    schema, _, relation = name.rpartition(".")
    return schema or "public", relation


def plan_correlated(
    target: str,
    plan: StatementPlan,
    t: Thresholds,
    database: str | None,
    queryid: str | None,
    usage: dict[str, Any],
    partitioned: frozenset[tuple[str, str]] = frozenset(),
) -> Iterator[Finding]:
    """``correlated_subquery`` in one plan (also ``pgradar explain``'s): its worst SubPlan run per row.

    Its index on each correlated column is an ``index_candidates`` entry on
    the inner table, merged with the other rules' indexes (``onefix``).
    """
    if plan.summary is None:
        return
    runs = [
        s for s in plan.summary.subplans if not s.hashed and s.seq_scans and s.outer_rows >= t.correlated_min_outer_rows
    ]
    if not runs:
        return
    worst = max(runs, key=lambda s: s.outer_rows * s.run_cost)
    tables = ", ".join(worst.seq_scans)
    candidates = [
        index_candidate(*_split(rel), (col,), 1, _split(rel) in partitioned)
        for rel, col in dict.fromkeys(worst.correlated)
    ]
    index = "".join(f"{c['sql']}\n" for c in candidates)
    statement = f"statement {queryid}" if queryid else "the statement"
    yield Finding(
        Kind.CORRELATED_SUBQUERY,
        Severity.WARNING,
        target,
        summary=(
            f"{statement} runs {worst.name} once per row of {worst.parent} "
            f"(about {worst.outer_rows:,.0f} rows), reading {tables} sequentially each time"
        ),
        recommendation=(
            f"{index}-- each run becomes an index probe; or rewrite the subquery as a JOIN (JOIN "
            f"LATERAL, or a JOIN to a GROUP BY) so {tables} is read once: SELECT ... FROM outer o "
            f"LEFT JOIN (SELECT key, agg(...) FROM {tables} GROUP BY key) s ON s.key = o.key"
            if index
            else f"Rewrite the correlated subquery as a JOIN (or JOIN LATERAL, or a JOIN to a GROUP BY of "
            f"{tables}) so {tables} is read once: SELECT ... FROM outer o LEFT JOIN (SELECT key, "
            f"agg(...) FROM {tables} GROUP BY key) s ON s.key = o.key; or index the column the "
            "subquery correlates on, so each run is a probe"
        ),
        evidence={
            "subplan": worst.name,
            "runs_for": worst.parent,
            "outer_rows_estimate": round(worst.outer_rows),
            "scanned_each_run": list(worst.seq_scans),
            "cost_per_run": worst.run_cost,
            "correlated_on": [f"{rel}.{col}" for rel, col in worst.correlated],
            "index_candidates": candidates,
            "plan_cost": plan.summary.total_cost,
            "evidence_from": "the generic plan (estimated rows, not counted runs)",
            **usage,
        },
        database=database,
        queryid=queryid,
    )


# --- partition_pruning_missed --------------------------------------------------------------


def _mentions(sql: str, column: str) -> bool:
    """The SQL text names the column (as a whole identifier, not inside another name)."""
    return re.search(rf"(?<![\w\"]){re.escape(quote_ident(column))}(?![\w\"])", sql) is not None


def partition_pruning_missed(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A statement on a partitioned table that reads all, or nearly all, of its partitions.

    Generic plans do not show pruning the same way on every version (on 18
    ``EXPLAIN (GENERIC_PLAN)`` of a range on the key lists every partition,
    while a real call reads one; on 13-15 EXECUTE with NULL parameters
    removes them all), so the rule rests on the text, which holds on every
    version, and the plan confirms: a statement that, in the latest
    interval, ran ``statement_min_calls`` times or took
    ``statement_min_share`` of the execution time, reads a partitioned table
    of at least ``large_table_rows`` rows with at least two partitions, and
    its WHERE clause compares no partition key column itself with a value
    (no filter on it, or the key wrapped in a function or cast); and its
    generic plan scans at least ``partition_scan_share`` of the partitions
    with none removed. A range on the key stays quiet; a key that is an
    expression is not judged (the text cannot tell).
    Evidence: partitions scanned of total, the filter, the partition key.
    Fix: a predicate on the key column itself (``WHERE at >= $1 AND at <
    $2``, the rewrite of a function on it), or a partition key the queries
    filter on.
    """
    for g, plan, usage in _frequent(obs, t):
        yield from plan_partitions(obs.target, plan, g.text, t, g.database, str(g.queryids[0]), usage)


def plan_partitions(
    target: str,
    plan: StatementPlan,
    text: str | None,
    t: Thresholds,
    database: str | None,
    queryid: str | None,
    usage: dict[str, Any],
) -> Iterator[Finding]:
    """``partition_pruning_missed`` in one plan (also ``pgradar explain``'s), one finding per table."""
    if plan.summary is None or plan.summary.subplans_removed:
        return
    scanned_relations = {f"{schema}.{relation}" for schema, relation in plan.summary.relations}
    shape = sqlshape.paging(text) if text else None
    statement = f"statement {queryid}" if queryid else "the statement"
    for part in plan.partitioned:
        if (
            part.key_constrained
            or None in part.key_columns
            or part.partitions < 2
            or part.reltuples < t.large_table_rows
        ):
            continue
        scanned = sum(1 for leaf in part.leaves if leaf in scanned_relations)
        if scanned < t.partition_scan_share * part.partitions:
            continue
        name = qualified(part.schema, part.relation)
        keys = ", ".join(k for k in part.key_columns if k)
        first = quote_ident(str(part.key_columns[0]))
        where = shape.where if shape is not None else None
        wrapped = where is not None and any(_mentions(where, str(k)) for k in part.key_columns)
        how = (
            f"its filter uses the partition key ({keys}) only inside a function or cast"
            if wrapped
            else f"its filter does not mention the partition key ({keys})"
        )
        fix = (
            f"-- add a predicate on the key column itself so the planner prunes, e.g.\n"
            f"SELECT ... FROM {name} WHERE {where + ' AND ' if where else ''}{first} >= $from AND "
            f"{first} < $to;\n-- (rewrite a function on the key as a range on the column); or, if the "
            f"queries never filter on {keys}, partition by the column they do filter on"
        )
        yield Finding(
            Kind.PARTITION_PRUNING_MISSED,
            Severity.WARNING,
            target,
            summary=(
                f"{statement} reads {scanned} of the {part.partitions} partitions of "
                f"{name} (partitioned by {part.key_definition}): {how}"
            ),
            recommendation=fix,
            evidence={
                "partitions_scanned": scanned,
                "partitions": part.partitions,
                "partition_key": part.key_definition,
                "filter": where,
                "key_in_function": wrapped,
                "reltuples": part.reltuples,
                "evidence_from": "the statement's WHERE clause (no comparison of the key column), "
                "confirmed by its generic plan (no partition removed)",
                **usage,
            },
            database=database,
            schema=part.schema,
            relation=part.relation,
            queryid=queryid,
        )


def plan_patterns(target: str, plan: StatementPlan, text: str, t: Thresholds) -> Iterator[Finding]:
    """The plan-based pattern findings of one statement, for ``pgradar explain`` (no usage to judge)."""
    queryid = str(plan.queryid) if plan.queryid else None
    yield from plan_correlated(target, plan, t, plan.database, queryid, {})
    yield from plan_partitions(target, plan, text, t, plan.database, queryid, {})


CLASSIFIERS = (unbounded_result, offset_pagination, correlated_subquery, partition_pruning_missed)
