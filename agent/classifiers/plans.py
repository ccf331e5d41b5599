"""Problems in the generic plans of the costliest statements: seq_scan with the index that serves it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from pgradar.agent.classifiers.fixes import create_index_sql
from pgradar.agent.classifiers.tables import stale_stats
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.activity import SettingsSnapshot
from pgradar.agent.model.catalog import TablesSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity, qualified
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import IndexAdvice, PlansSnapshot, SeqScan, StatementPlan, parallel_divisor
from pgradar.agent.model.statements import StatementsSnapshot, StatementStat
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.sqlshape import group_key


def advice_comment(advice: IndexAdvice) -> str:
    """What hypopg measured for the index (or that nothing did), as an SQL comment."""
    if advice.verified and advice.gain is not None:
        only = "; with INCLUDE, an index-only scan" if advice.include else ""
        return (
            f"-- hypopg: estimated cost {advice.cost_before:,.0f} -> {advice.cost_after:,.0f} "
            f"({advice.gain:.0%} less{only})"
        )
    if advice.note:
        return f"-- unverified: {advice.note}"
    return "-- unverified: hypopg is not installed in this database (CREATE EXTENSION hypopg; verifies it)"


def advice_sql(advice: IndexAdvice) -> str:
    """The CREATE INDEX to run, with what hypopg measured (or that nothing did)."""
    statement = create_index_sql(
        advice.schema,
        advice.relation,
        advice.columns,
        advice.partitioned,
        include=advice.include,
        partitions=advice.partitions,
    )
    return f"{statement}\n{advice_comment(advice)}"


def index_candidate(advice: IndexAdvice) -> dict[str, object]:
    """The advice as an ``onefix`` candidate, merged with the table's other index recommendations."""
    return {
        "columns": list(advice.columns),
        "equality": advice.equality,
        "partitioned": advice.partitioned,
        "include": list(advice.include),
        "alone": advice.alone,
        "sql": advice_sql(advice),
        "comment": advice_comment(advice),
        "partitions": [list(p) for p in advice.partitions],
    }


def worth_recommending(advice: IndexAdvice, t: Thresholds) -> bool:
    """Unverified advice stands; verified advice only with a cost drop of ``index_advice_min_gain``."""
    if not advice.verified:
        return True
    return advice.gain is not None and advice.gain >= t.index_advice_min_gain


def plan_seq_scans(
    obs_target: str, plan: StatementPlan, t: Thresholds, stat: StatementStat | None = None
) -> Iterator[Finding]:
    """Filtered sequential scans of large tables in one plan, one finding per table.

    A scan sorted whole for the first rows (ORDER BY ... LIMIT) counts too.

    Large means ``large_table_rows`` by the catalog's estimate (a partitioned
    table by its partitions together). With index advice the finding is a
    warning naming the index (hypopg-verified where installed); advice that
    hypopg found useless means no finding (the scan is the right plan); a
    statement sqlglot could not read gets plan-only advice, as info.
    """
    scans = [s for s in plan.seq_scans if s.filter or s.limited]
    if plan.summary is None or not scans:
        return
    queryid = str(plan.queryid) if plan.queryid else None  # None: `pgradar explain --query`
    statement = f"statement {queryid}" if queryid else "the statement"
    usage = {"calls": stat.calls, "total_exec_ms": round(stat.total_exec_ms, 1)} if stat else {}
    for advice in plan.advice:
        if advice.reltuples < t.large_table_rows or not worth_recommending(advice, t):
            continue
        mine = [s for s in scans if s.relation == advice.relation or advice.partitioned]
        filters = [s.filter for s in mine if s.filter]
        sorts = [", ".join(s.sort_keys) for s in mine if s.limited]
        why = f"to filter {'; '.join(filters[:2])}" if filters else f"and sorts it all by {sorts[0]} for the first rows"
        severity: Severity = Severity.WARNING
        yield Finding(
            Kind.SEQ_SCAN,
            severity,
            obs_target,
            f"{statement} reads {qualified(advice.schema, advice.relation)} "
            f"({advice.reltuples:,.0f} rows) sequentially {why}; an index on "
            f"({', '.join(advice.columns)}) serves it",
            advice_sql(advice),
            {
                "filter": filters[:3],
                "reltuples": advice.reltuples,
                "plan_cost": plan.summary.total_cost,
                "cost_with_index": advice.cost_after,
                "verified": advice.verified,
                "note": advice.note or None,
                "shape_hash": plan.summary.shape_hash,
                "index_candidates": [index_candidate(advice)],
                **usage,
            },
            database=plan.database,
            schema=advice.schema,
            relation=advice.relation,
            queryid=queryid,
        )
    if plan.parsed:
        return
    for scan in scans:
        if (scan.reltuples or 0) < t.large_table_rows or not scan.filter:
            continue
        yield Finding(
            Kind.SEQ_SCAN,
            Severity.INFO,
            obs_target,
            f"{statement} reads {scan.relation} ({scan.reltuples:,.0f} rows) sequentially to "
            f"filter {scan.filter}; its text could not be parsed, so no index is proposed",
            f"-- index the columns of this filter on {qualified(scan.schema or 'public', scan.relation)}: "
            f"{scan.filter}",
            {
                "filter": scan.filter,
                "reltuples": scan.reltuples,
                "plan_rows": scan.plan_rows,
                "shape_hash": plan.summary.shape_hash,
                **usage,
            },
            database=plan.database,
            schema=scan.schema,
            relation=scan.relation,
            queryid=queryid,
        )


def frequent_or_expensive(stat: StatementStat, total_exec_ms: float, t: Thresholds) -> bool:
    return stat.calls >= t.statement_min_calls or stat.total_exec_ms >= t.statement_min_share * total_exec_ms


@per_snapshot  # summed once per statements poll, not at every pass
def per_statement(statements: StatementsSnapshot) -> Mapping[tuple[int, int], StatementStat]:
    """Top-level counters per (database, queryid), summed over the users that ran the statement.

    A plan is keyed by (dbid, queryid), while pg_stat_statements keeps a row
    per user: keeping one row per key let the last one win, and on 13 (no
    toplevel column) that could be the agent's own EXPLAIN of the
    statement, with a handful of calls, so the advice disappeared.
    """
    out: dict[tuple[int, int], StatementStat] = {}
    for r in statements.rows:
        if not r.toplevel:
            continue
        key = (r.dbid, r.queryid)
        seen = out.get(key)
        out[key] = (
            r
            if seen is None
            else replace(seen, calls=seen.calls + r.calls, total_exec_ms=seen.total_exec_ms + r.total_exec_ms)
        )
    return out


def text_key(texts: Mapping[tuple[int, int], str], dbid: int, queryid: int, database: str) -> tuple[str, str]:
    """A statement's group: its database and ``group_key`` of its text (its queryid when the text is unknown)."""
    text = texts.get((dbid, queryid))
    return database, group_key(text) if text else f"#{queryid}"


@per_snapshot  # every text keyed once per statements poll, not at every pass (5,000 of them every 15 s)
def counted_by_text(
    stats: Mapping[tuple[int, int], StatementStat], texts: Mapping[tuple[int, int], str]
) -> tuple[dict[tuple[str, str], tuple[StatementStat, frozenset[int]]], float]:
    """Each group's (``text_key``) counters, summed on its first row, with its queryids; and the
    execution time of them all. ``texts`` are fixed for the statements of one poll."""
    rows_of: dict[tuple[str, str], list[StatementStat]] = {}
    for (dbid, queryid), row in stats.items():
        rows_of.setdefault(text_key(texts, dbid, queryid, row.database), []).append(row)
    counted = {
        group: (
            rows[0]
            if len(rows) == 1
            else replace(rows[0], calls=sum(r.calls for r in rows), total_exec_ms=sum(r.total_exec_ms for r in rows)),
            frozenset(r.queryid for r in rows),
        )
        for group, rows in rows_of.items()
    }
    return counted, sum(r.total_exec_ms for r in stats.values())


def seq_scan(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Plan-level seq_scan for statements run ``statement_min_calls`` times or taking ``statement_min_share``.

    One statement, one finding: the plans of the queryids of one statement
    text (``sqlshape.group_key``: int2/int4 bindings, casts of parameters)
    are judged once, on their counters summed, named by the largest queryid
    with them all in ``evidence.queryids``. Evidence adds the statement's
    share of the execution time since the statistics were reset: what the
    fix is worth.
    """
    plans: PlansSnapshot | None = obs.snapshots.plans
    statements: StatementsSnapshot | None = obs.snapshots.statements
    if plans is None or statements is None:
        return
    counted, total = counted_by_text(per_statement(statements), texts=obs.statement_texts)
    groups: dict[tuple[str, str], list[StatementPlan]] = {}
    for plan in plans.plans:
        groups.setdefault(text_key(obs.statement_texts, plan.dbid, plan.queryid, plan.database), []).append(plan)
    for group, same in groups.items():
        found = counted.get(group)
        if found is None:
            continue
        stat, counted_queryids = found
        if not frequent_or_expensive(stat, total, t):
            continue
        queryids = sorted(counted_queryids | {p.queryid for p in same}, reverse=True)
        plan = max(same, key=lambda p: (p.summary is not None, p.queryid))
        share = round(stat.total_exec_ms / total, 4) if total > 0 else None
        # The share of execution time orders the problems (problems.impact).
        for finding in plan_seq_scans(obs.target, replace(plan, queryid=queryids[0]), t, stat):
            evidence = {**finding.evidence, "exec_time_share": share, "queryids": [str(q) for q in queryids]}
            yield replace(finding, evidence=evidence)


def estimate_drift(plan_rows: float, reltuples: float) -> float:
    """How far a plan's row estimate for a whole table is from pg_class.reltuples (0: equal, 1: double or half)."""
    low, high = sorted((max(plan_rows, 1.0), max(reltuples, 1.0)))
    return high / low - 1.0


def whole_table_drift(scan: SeqScan, reltuples: float, leader_participates: bool = True) -> tuple[float, float]:
    """(drift, the plan's estimate for the whole table): a parallel scan's per-process rows multiplied back."""
    estimate = scan.plan_rows * parallel_divisor(scan.workers, leader_participates)
    return estimate_drift(estimate, reltuples), estimate


def _analyzed_since(obs: Observation, database: str, scan: SeqScan) -> bool:
    """The table's reltuples moved since the plan was made: an ANALYZE ran, the cached plan is older."""
    snap: TablesSnapshot | None = obs.snapshots.tables
    if snap is None or scan.reltuples is None:
        return False
    table = next(
        (
            x
            for x in snap.tables
            if x.database == database and x.relation == scan.relation and x.schema == (scan.schema or "public")
        ),
        None,
    )
    return table is not None and abs(table.reltuples - scan.reltuples) > 0.5


def _covered(obs: Observation, t: Thresholds) -> set[tuple[str | None, str | None, str | None]]:
    """Tables the counter-based stale_stats reports, here or (from a standby) on the watched primary."""
    sources = [obs] + [p for p in obs.peers.values() if obs.on_standby and not p.on_standby]
    return {(f.database, f.schema, f.relation) for o in sources for f in stale_stats(o, t)}


def plan_estimates(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """stale_stats from plans: a whole-table scan whose row estimate is far from pg_class.

    For a scan without a filter the planner scales ``reltuples`` by the
    table's pages now against ``relpages`` at the last analyze or vacuum, so
    an estimate ``stale_stats_modified_ratio`` away from ``reltuples`` means
    the table grew or shrank that much since: the statistics describe
    another table. Like is compared with like: a Parallel Seq Scan's
    estimate is per process, so it is multiplied back first
    (``whole_table_drift``). A plan made before the table's last ANALYZE
    (reltuples moved since) is not judged. Reported with the statement's
    queryid, once per table, and only for tables the counter-based rule
    does not already report. On a standby the statistics are the primary's
    and ANALYZE cannot run there: the fix says to run it on the primary.
    """
    plans: PlansSnapshot | None = obs.snapshots.plans
    if plans is None:
        return
    covered = _covered(obs, t)
    settings: SettingsSnapshot | None = obs.snapshots.settings
    leader = settings.settings.parallel_leader_participation if settings is not None else True
    seen: set[tuple[str, str | None, str]] = set()
    for plan in plans.plans:
        for scan in plan.seq_scans:
            key = (plan.database, scan.schema, scan.relation)
            rows = scan.reltuples
            if scan.filter or rows is None or key in covered or key in seen:
                continue
            drift, estimate = whole_table_drift(scan, rows, leader)
            if max(estimate, rows) < t.large_table_rows or drift < t.stale_stats_modified_ratio:
                continue
            if _analyzed_since(obs, plan.database, scan):
                continue
            seen.add(key)
            target = qualified(scan.schema or "public", scan.relation)
            per_process = (
                f" ({scan.plan_rows:,.0f} per process, {scan.workers} worker(s){' and the leader' if leader else ''})"
                if scan.workers
                else ""
            )
            fix = f"ANALYZE {target};"
            if obs.on_standby:
                fix = f"-- on the primary (a standby cannot run ANALYZE; it replays the primary's statistics):\n{fix}"
            yield Finding(
                Kind.STALE_STATS,
                Severity.WARNING,
                obs.target,
                f"{target}: statement {plan.queryid} is planned for {estimate:,.0f} rows{per_process}, "
                f"the statistics say {rows:,.0f}; the table changed size since its last analyze",
                fix,
                {
                    "plan_rows": round(estimate),
                    "reltuples": rows,
                    "drift": round(drift, 3),
                    "parallel_workers": scan.workers or None,
                },
                database=plan.database,
                schema=scan.schema,
                relation=scan.relation,
                queryid=str(plan.queryid),
            )


CLASSIFIERS = (seq_scan, plan_estimates)
