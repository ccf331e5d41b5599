"""Statement-level problems: what is wrong with which query (DESIGN 3.2).

Every rule here reads the statement deltas of the latest interval (two polls
of pg_stat_statements), so a statement that stopped misbehaving, or stopped
running, is gone on the next pass. Findings carry the queryid as a decimal
string and the database; the evidence holds the numbers the rule compared.

Not here: ``n_plus_one`` (``classifiers.nplusone``, from the call pattern),
``plan_regression`` (``classifiers.regressions``, from plan shapes) and
``non_sargable_predicate`` (``classifiers.predicates``, from the text).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pgradar.agent.classifiers.grouped import StatementGroup, statement_groups
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.activity import SettingsSnapshot
from pgradar.agent.model.catalog import TablesSnapshot, TableStat
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
from pgradar.agent.model.plans import AnalyzeSnapshot, AutoExplainSnapshot, PlanNode, PlanSample, literal_free
from pgradar.agent.model.statements import StatementDelta, StatementInterval
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.sqlshape import group_key, is_dml, star_sources


def _latest(obs: Observation) -> StatementInterval | None:
    return obs.statement_intervals[-1] if obs.statement_intervals else None


def _text(obs: Observation, d: StatementDelta) -> str | None:
    return obs.statement_texts.get((d.dbid, d.queryid))


def _queries(obs: Observation, interval: StatementInterval) -> Iterable[StatementGroup]:
    """The interval's statements (queryids of one text together, nested calls counted) but utility
    statements (CREATE INDEX, ANALYZE...), whose reads and sorts are their job; a statement whose text
    is unknown yet is kept."""
    return _dml(statement_groups(obs, interval.deltas, toplevel_only=False))


@per_snapshot  # once per interval's groups (statement_groups keeps them), not by two rules at every pass
def _dml(groups: Sequence[StatementGroup]) -> tuple[StatementGroup, ...]:
    return tuple(g for g in groups if (g.text is None or is_dml(g.text)) and g.calls)


def _block_size(obs: Observation) -> int:
    settings: SettingsSnapshot | None = obs.snapshots.settings
    return settings.settings.block_size if settings else 8192


def _work_mem(obs: Observation) -> int | None:
    settings: SettingsSnapshot | None = obs.snapshots.settings
    return settings.settings.work_mem_bytes if settings else None


def mem_setting(n_bytes: float) -> str:
    """A work_mem value for SQL: the next power of two in MB (at least 4MB, at most 2GB)."""
    mb = max(4, min(2048, 2 ** math.ceil(math.log2(max(n_bytes / (1 << 20), 1)))))
    return f"{mb}MB" if mb < 1024 else f"{mb // 1024}GB"


# --- temp_spill ---------------------------------------------------------------------


def temp_spill(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """Statements that write temporary files: sorts and hashes larger than work_mem.

    Rule: in the latest interval, a query (not a utility statement such as
    CREATE INDEX) whose temp blocks written per call times the
    block size is at least ``temp_spill_bytes_per_call``. Critical when the
    statement also takes ``statement_min_share`` of the interval's execution
    time (the spill costs what the server spends most on).
    Evidence: temp bytes per call, calls, mean time, work_mem, share of time.
    Fix: a work_mem that holds it (four times the spilled size, rounded up to
    a power of two: a sort in memory takes two to three times its size on
    disk), for the role (``ALTER ROLE ... SET work_mem``) or for the
    statement alone (``SET LOCAL work_mem`` in its transaction); or, for a
    sort, an index that returns the rows in order.
    """
    interval = _latest(obs)
    if interval is None:
        return
    block = _block_size(obs)
    total_ms = sum(d.total_exec_ms for d in interval.deltas) or 1.0
    work_mem = _work_mem(obs)
    for g in _queries(obs, interval):
        per_call = g.temp_blks_written * block / g.calls
        if per_call < t.temp_spill_bytes_per_call:
            continue
        share = g.exec_ms / total_ms
        size = mem_setting(4 * per_call)
        sorts = g.text is not None and "order by" in group_key(g.text)
        evidence: dict[str, Any] = {
            "temp_bytes_per_call": round(per_call),
            "temp_blocks_written": g.temp_blks_written,
            "calls": g.calls,
            "mean_exec_ms": round(g.mean_exec_ms, 3),
            "exec_time_share": round(share, 4),
            "work_mem_bytes": work_mem,
            "suggested_work_mem": size,
            "queryids": g.queryid_list,
            "interval_seconds": round(interval.seconds, 1),
            "query": evidence_text(g.text),
        }
        index_hint = (
            " or an index matching its ORDER BY, so it reads the rows in order without sorting" if sorts else ""
        )
        username = g.usernames[0] if g.usernames else None
        yield Finding(
            Kind.TEMP_SPILL,
            Severity.CRITICAL if share >= t.statement_min_share else Severity.WARNING,
            obs.target,
            summary=(
                f"statement {g.queryid} writes {human_bytes(per_call)} of temporary files per call "
                f"({g.calls} calls in {interval.seconds:.0f}s); the server's work_mem is "
                f"{human_bytes(work_mem) if work_mem else 'unknown'} (a role or session may set less)"
            ),
            recommendation=(
                f"ALTER ROLE {quote_ident(username)} SET work_mem = '{size}'; "
                f"(or for this statement alone: SET LOCAL work_mem = '{size}'; in its transaction)"
                f"{index_hint}"
                if username
                else f"SET LOCAL work_mem = '{size}'; in the statement's transaction{index_hint}"
            ),
            evidence=evidence,
            database=g.database,
            queryid=str(g.queryid),
        )


# --- low_cache_hit --------------------------------------------------------------------


def low_cache_hit(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """Statements that read most of their blocks from outside shared buffers.

    Rule: in the latest interval, a query's (utility statements aside)
    shared_blks_read / (hit + read) is at
    least ``low_cache_hit_read_ratio``, at least ``low_cache_hit_min_blocks``
    blocks were read, and the statement took at least ``statement_min_share``
    of the interval's execution time: a rare query that reads from disk once
    is noise, the one the server spends its time on is not.
    Evidence: hit ratio, blocks read and per call, share of time, read time
    (with track_io_timing).
    Fix: read fewer blocks (an index that serves its filter: see seq_scan
    findings on its tables) or give the working set room (shared_buffers).
    """
    interval = _latest(obs)
    if interval is None:
        return
    total_ms = sum(d.total_exec_ms for d in interval.deltas) or 1.0
    block = _block_size(obs)
    for g in _queries(obs, interval):
        if g.blocks == 0 or g.blocks_read < t.low_cache_hit_min_blocks:
            continue
        read_ratio = g.blocks_read / g.blocks
        share = g.exec_ms / total_ms
        if read_ratio < t.low_cache_hit_read_ratio or share < t.statement_min_share:
            continue
        yield Finding(
            Kind.LOW_CACHE_HIT,
            Severity.WARNING,
            obs.target,
            summary=(
                f"statement {g.queryid} reads {read_ratio:.0%} of its blocks from disk "
                f"({human_bytes(g.blocks_read * block / g.calls)} per call) and takes {share:.0%} "
                f"of the execution time"
            ),
            recommendation=(
                "Make it read fewer blocks: index the columns it filters on (CREATE INDEX "
                "CONCURRENTLY ...; see the seq_scan findings of its tables) or, if it needs "
                "those blocks, raise shared_buffers so its working set stays cached"
            ),
            evidence={
                "hit_ratio": round(1 - read_ratio, 4),
                "blocks_read": g.blocks_read,
                "blocks_hit": g.blocks_hit,
                "bytes_read_per_call": round(g.blocks_read * block / g.calls),
                "calls": g.calls,
                "exec_time_share": round(share, 4),
                "io_read_ms": round(g.blk_read_ms, 3),
                "queryids": g.queryid_list,
                "interval_seconds": round(interval.seconds, 1),
                "query": evidence_text(g.text),
            },
            database=g.database,
            queryid=str(g.queryid),
        )


# --- select_star ------------------------------------------------------------------------


def _find_table(tables: Sequence[TableStat], database: str, schema: str | None, relation: str) -> TableStat | None:
    candidates = [
        x
        for x in tables
        if x.database == database and x.relation == relation and (schema is None or x.schema == schema)
    ]
    if len(candidates) > 1 and schema is None:  # search_path unknown: public first, as by default
        candidates = [x for x in candidates if x.schema == "public"] or candidates[:1]
    return candidates[0] if len(candidates) == 1 else None


def select_star(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A frequent statement that returns every column of a wide table.

    Rule: a statement text (queryids grouped) ran at least
    ``statement_min_calls`` times in the latest interval, and its outer
    SELECT list has ``*`` (or ``alias.*``) over a table with at least
    ``select_star_min_columns`` columns (from the tables collector). A star
    over a narrow lookup table is fine, and stars in subqueries are not
    counted (the outer list decides what crosses the wire).
    Evidence: calls, rows per call, the table and its column count.
    Fix: list the columns the application uses.
    """
    interval = _latest(obs)
    tables_snapshot: TablesSnapshot | None = obs.snapshots.tables
    if interval is None or tables_snapshot is None:
        return
    for g in statement_groups(obs, interval.deltas):
        if g.text is None or g.calls < t.statement_min_calls:
            continue
        for source in star_sources(g.text):
            table = _find_table(tables_snapshot.tables, g.database, source.schema, source.relation)
            if table is None or table.column_count < t.select_star_min_columns:
                continue
            name = qualified(table.schema, table.relation)
            yield Finding(
                Kind.SELECT_STAR,
                Severity.INFO,
                obs.target,
                summary=(
                    f"statement {g.queryid} selects all {table.column_count} columns of {name}, "
                    f"{g.calls} times in {interval.seconds:.0f}s"
                ),
                recommendation=(
                    f"Name the columns the application reads instead of * (SELECT col_a, col_b "
                    f"FROM {name} ...): fewer bytes per row, and index-only scans become possible"
                ),
                evidence={
                    "calls": g.calls,
                    "rows_per_call": round(g.rows_per_call, 3),
                    "columns": table.column_count,
                    "queryids": g.queryid_list,
                    "query": evidence_text(g.text),
                    "interval_seconds": round(interval.seconds, 1),
                },
                database=g.database,
                schema=table.schema,
                relation=table.relation,
                queryid=str(g.queryid),
            )
            break


# --- row_misestimate ----------------------------------------------------------------------


def _statement_index(obs: Observation) -> tuple[dict[int, str], dict[str, tuple[str, int]]]:
    """queryid -> database, and literal-free text -> (database, queryid), from pg_stat_statements."""
    by_queryid: dict[int, str] = {}
    snapshot = obs.snapshots.statements
    names = {}
    for row in snapshot.rows if snapshot is not None else ():
        by_queryid[row.queryid] = row.database
        names[row.dbid] = row.database
    by_text: dict[str, tuple[str, int]] = {}
    for (dbid, queryid), text in obs.statement_texts.items():
        if dbid in names:
            by_text.setdefault(literal_free(text), (names[dbid], queryid))
    return by_queryid, by_text


def _samples(obs: Observation) -> list[PlanSample]:
    """The latest executed plan of each statement: auto_explain's from the log, pgradar's own EXPLAIN ANALYZE."""
    latest: dict[str, PlanSample] = {}
    snapshot: AutoExplainSnapshot | AnalyzeSnapshot | None
    for snapshot in (obs.snapshots.auto_explain, obs.snapshots.explain_analyze):
        for plan in snapshot.plans if snapshot is not None else ():
            if plan.key not in latest or plan.seen_at > latest[plan.key].seen_at:
                latest[plan.key] = plan
    return list(latest.values())


def row_misestimate(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """Plan nodes whose row estimate was far from the rows they produced (auto_explain, EXPLAIN ANALYZE).

    Rule: in the latest executed plan of a statement (auto_explain's, read
    from the server log, see ``agent.plans.autoexplain``; or pgradar's own
    EXPLAIN ANALYZE on a standby where a target turns it on, see
    ``agent.plans.analyze``), a node whose estimated and
    actual rows per loop differ by at least ``misestimate_factor`` (either
    way), with the larger at least ``misestimate_min_rows``. One finding per
    statement and relation, for its worst node. The plan is matched to its
    queryid through ``Query Identifier`` (14+, auto_explain.log_verbose), or
    else its text with literals blanked against pg_stat_statements texts.
    Evidence: node type, estimated and actual rows, loops, the condition.
    Fix: ANALYZE the table; when a fresh analyze does not help, more
    statistics for the column (SET STATISTICS) or extended statistics for
    correlated columns (CREATE STATISTICS). Plans read more than
    ``misestimate_max_age_s`` ago are not judged.
    """
    samples = _samples(obs)
    if not samples:
        return
    by_queryid, by_text = _statement_index(obs)
    for plan in samples:
        if (obs.now - plan.seen_at).total_seconds() > t.misestimate_max_age_s:
            continue
        yield from _misestimates(obs, t, plan, by_queryid, by_text)


def _misestimates(
    obs: Observation, t: Thresholds, plan: PlanSample, by_queryid: dict[int, str], by_text: dict[str, tuple[str, int]]
) -> Iterable[Finding]:
    queryid, database = plan.queryid, plan.database
    if queryid is None and literal_free(plan.query) in by_text:
        database, queryid = by_text[literal_free(plan.query)]
    if database is None and queryid is not None:
        database = by_queryid.get(queryid)
    worst: dict[tuple[str | None, str | None], PlanNode] = {}
    for node in plan.nodes:
        if node.factor < t.misestimate_factor or max(node.plan_rows, node.actual_rows) < t.misestimate_min_rows:
            continue
        key = (node.schema, node.relation)
        if key not in worst or node.factor > worst[key].factor:
            worst[key] = node
    for (schema, relation), node in worst.items():
        name = qualified(schema, relation) if schema and relation else (quote_ident(relation) if relation else None)
        direction = "under" if node.actual_rows > node.plan_rows else "over"
        fix = (
            (
                f"ANALYZE {name}; if the estimate stays off after a fresh analyze, raise the statistics "
                f"target of the filtered column (ALTER TABLE {name} ALTER COLUMN ... SET STATISTICS 1000; then "
                f"ANALYZE) or add extended statistics on correlated columns (CREATE STATISTICS ... ON ... "
                f"FROM {name})"
            )
            if name
            else "ANALYZE the tables of this statement; for correlated columns, CREATE STATISTICS"
        )
        yield Finding(
            Kind.ROW_MISESTIMATE,
            Severity.WARNING,
            obs.target,
            summary=(
                f"statement {queryid if queryid is not None else '(unknown queryid)'}: the planner "
                f"{direction}estimated {node.node_type} on {name or 'a join'} by {node.factor:.0f}x "
                f"({node.plan_rows:.0f} rows estimated, {node.actual_rows:.0f} actual)"
            ),
            recommendation=fix,
            evidence={
                "node_type": node.node_type,
                "estimated_rows": node.plan_rows,
                "actual_rows": node.actual_rows,
                "loops": node.loops,
                "factor": round(node.factor, 1),
                "condition": node.condition,
                "duration_ms": plan.duration_ms,
                "query": evidence_text(plan.query),
                "source": plan.source,
                "seen_at": plan.seen_at.isoformat(),
            },
            database=database,
            schema=schema,
            relation=relation,
            queryid=str(queryid) if queryid is not None else None,
        )


CLASSIFIERS = (temp_spill, low_cache_hit, select_star, row_misestimate)
