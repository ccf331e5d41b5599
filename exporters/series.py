"""The series of each section of ``/metrics``, rendered from one target's state.

One ``render_*`` function per section, each adding families to ``Families``;
how sections are cached, versioned and joined into a scrape is in
``exporters.prometheus``. The bounds on cardinality (top tables, indexes,
statements, connection groups) are decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pgradar.agent.derive.deltas import counter_delta, rank_statements
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.derive.standby_lag import lag, standby_lag_seconds
from pgradar.agent.model.activity import ConnectionGroup
from pgradar.agent.model.catalog import IndexStat, TableStat
from pgradar.agent.model.findings import Kind, Severity
from pgradar.agent.runtime.state import TargetState
from pgradar.exporters.catalogue import BY_NAME


class Families:
    """Metric families keyed by catalogue name; unknown names and labels fail loudly."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, name: str, value: float | None, **labels: str) -> None:
        if value is None:
            return
        spec = BY_NAME[name]
        family = self._families.get(name)
        if family is None:
            if spec.kind == "counter":
                family = CounterMetricFamily(name, spec.help, labels=spec.labels)
            else:
                family = GaugeMetricFamily(name, spec.help, labels=spec.labels)
            self._families[name] = family
        family.add_metric([labels[label] for label in spec.labels], float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def render_self(f: Families, t: TargetState) -> None:
    f.add("pgradar_up", 1.0 if t.up else 0.0, target=t.name)
    for collector, status in sorted(t.status.items()):
        labels = {"target": t.name, "collector": collector}
        f.add("pgradar_collector_duration_seconds", status.last_duration_s, **labels)
        f.add("pgradar_collector_runs_total", status.runs, **labels)
        f.add("pgradar_collector_errors_total", status.errors, **labels)
        f.add("pgradar_collector_last_success_timestamp_seconds", _ts(status.last_success_at), **labels)
        f.add("pgradar_collector_enabled", 1.0 if status.enabled else 0.0, **labels)
        f.add("pgradar_collector_late_runs_total", status.late, **labels)
        f.add("pgradar_collector_skipped_runs_total", status.skipped, **labels)
        f.add("pgradar_collector_lateness_seconds", status.last_lateness_s, **labels)
    if t.server is not None:
        f.add("pgradar_server_info", 1.0, target=t.name, version=t.server.version, role=t.server.role)
        f.add("pgradar_server_in_recovery", 1.0 if t.server.in_recovery else 0.0, target=t.name)
        f.add("pgradar_server_start_time_seconds", _ts(t.server.started_at), target=t.name)


_STATEMENT_COUNTERS = (
    ("pgradar_statement_calls_total", "calls", 1.0),
    ("pgradar_statement_exec_seconds_total", "total_exec_ms", 0.001),
    ("pgradar_statement_plan_seconds_total", "total_plan_ms", 0.001),
    ("pgradar_statement_rows_total", "rows", 1.0),
    ("pgradar_statement_shared_blocks_hit_total", "shared_blks_hit", 1.0),
    ("pgradar_statement_shared_blocks_read_total", "shared_blks_read", 1.0),
    ("pgradar_statement_temp_blocks_written_total", "temp_blks_written", 1.0),
    ("pgradar_statement_io_read_seconds_total", "blk_read_ms", 0.001),
)


def render_statements(f: Families, t: TargetState, top_n: int) -> None:
    snapshot = t.current().statements
    if snapshot is None:
        return
    f.add("pgradar_statements_tracked", len(snapshot.rows), target=t.name)
    if snapshot.info is not None:
        f.add("pgradar_statements_deallocations_total", snapshot.info.dealloc, target=t.name)
    f.add("pgradar_statement_texts_fetched_total", t.texts_fetched_total, target=t.name)
    totals = t.statement_totals
    for database, acc in sorted(totals.by_database.items()):
        f.add("pgradar_statements_calls_total", acc["calls"], target=t.name, database=database)
        f.add("pgradar_statements_exec_seconds_total", acc["total_exec_ms"] / 1000, target=t.name, database=database)
        f.add("pgradar_statements_rows_total", acc["rows"], target=t.name, database=database)
        f.add("pgradar_statements_shared_blocks_hit_total", acc["shared_blks_hit"], target=t.name, database=database)
        f.add("pgradar_statements_shared_blocks_read_total", acc["shared_blks_read"], target=t.name, database=database)
        f.add(
            "pgradar_statements_temp_blocks_written_total", acc["temp_blks_written"], target=t.name, database=database
        )
    # Ranked among the entries still held: under churn the costliest of the last intervals may be evicted.
    for delta in rank_statements(t.statement_intervals, top_n, among=totals.counters):
        counters = totals.counters[delta.key]
        labels = {
            "target": t.name,
            "database": delta.database,
            "user": delta.username,
            "queryid": str(delta.queryid),
            "toplevel": "true" if delta.toplevel else "false",
        }
        for metric, counter, scale in _STATEMENT_COUNTERS:
            f.add(metric, counters[counter] * scale, **labels)
        f.add("pgradar_statement_mean_exec_seconds", delta.mean_exec_ms / 1000, **labels)


R = TypeVar("R")


def rank_rows(
    rows: Sequence[R],
    oldest: Sequence[R] | None,
    key: Callable[[R], Any],
    activity: Callable[[R], float],
    size: Callable[[R], float],
) -> list[R]:
    """``rows``, most active since ``oldest`` first, then the largest.

    Activity is counted over the snapshots kept (like the statements' top N,
    so a table busy every few minutes does not flicker in and out); a row new
    since then, or whose counters went backwards (stats reset), counts as it
    stands; without history (``oldest`` None), counters since the last reset
    rank. Ties go to the larger relation, then to the name, so the choice is
    stable.
    """
    before = {key(r): activity(r) for r in oldest} if oldest is not None else {}

    def rank(r: R) -> tuple[float, float, Any]:
        return (-counter_delta(activity(r), before.get(key(r))), -(size(r) or 0), key(r))

    return sorted(rows, key=rank)


def top_with(ranked: Sequence[R], n: int, key: Callable[[R], Any], keep: set[Any]) -> list[R]:
    """The first ``n`` of ``ranked``, plus every later row whose key is in ``keep`` (the objects of problems)."""
    return list(ranked[:n]) + [r for r in ranked[n:] if key(r) in keep]


def _table_key(r: TableStat) -> tuple[str, str, str]:
    return (r.database, r.schema, r.relation)


def _index_key(r: IndexStat) -> tuple[str, str, str, str]:
    return (r.database, r.schema, r.relation, r.index)


@per_snapshot  # rendered after every job; the tables change once a minute
def _ranked_tables(rows: Sequence[TableStat], oldest: Sequence[TableStat] | None) -> list[TableStat]:
    return rank_rows(
        rows,
        oldest,
        _table_key,
        activity=lambda r: r.seq_tup_read + r.idx_tup_fetch + r.n_tup_ins + r.n_tup_upd + r.n_tup_del,
        size=lambda r: r.size_bytes or 0,
    )


@per_snapshot
def _ranked_indexes(rows: Sequence[IndexStat], oldest: Sequence[IndexStat] | None) -> list[IndexStat]:
    return rank_rows(rows, oldest, _index_key, activity=lambda r: r.idx_scan, size=lambda r: r.size_bytes or 0)


def problem_objects(t: TargetState, with_index: bool) -> set[tuple[str, ...]]:
    """The objects of the active problems: indexes (``with_index``), or tables with a problem of their own.

    A problem on an index keeps that index's series, not its table's: no panel
    or alert joins them, and on a catalog where most indexes go unused it would
    keep nearly every table.
    """
    out: set[tuple[str, ...]] = set()
    for problem in t.problems.values():
        f = problem.finding  # its fields, not its ``object`` dict: asked for every problem at every render
        if with_index and f.index:
            out.add((f.database or "", f.schema or "", f.relation or "", f.index))
        elif not with_index and f.relation and not f.index:
            out.add((f.database or "", f.schema or "", f.relation))
    return out


S = TypeVar("S")


def oldest_of(history: Sequence[S]) -> S | None:
    """The oldest kept snapshot, when there is one before the latest."""
    return history[0] if len(history) > 1 else None


def render_tables(f: Families, t: TargetState, top_n: int, every_family: bool = False) -> None:
    """The tables kept (``top_with``): the families the dashboards and alerts read, or ``every_family``.

    ``every_family`` (``limits.relation_series: all``) adds index scans, rows
    inserted and rows deleted: three series more per table, read by no panel.
    """
    snapshot = t.current().tables
    if snapshot is None:
        return
    f.add("pgradar_tables_tracked", len(snapshot.tables), target=t.name)
    oldest = oldest_of(t.kept().tables)
    ranked = _ranked_tables(snapshot.tables, oldest.tables if oldest is not None else None)
    for r in top_with(ranked, top_n, _table_key, problem_objects(t, with_index=False)):
        labels = {"target": t.name, "database": r.database, "schema": r.schema, "relation": r.relation}
        f.add("pgradar_table_seq_scans_total", r.seq_scan, **labels)
        f.add("pgradar_table_seq_rows_read_total", r.seq_tup_read, **labels)
        f.add("pgradar_table_rows_updated_total", r.n_tup_upd, **labels)
        f.add("pgradar_table_rows_hot_updated_total", r.n_tup_hot_upd, **labels)
        f.add("pgradar_table_live_rows", r.n_live_tup, **labels)
        f.add("pgradar_table_dead_rows", r.n_dead_tup, **labels)
        f.add("pgradar_table_modified_since_analyze_rows", r.n_mod_since_analyze, **labels)
        f.add("pgradar_table_size_bytes", r.size_bytes, **labels)
        f.add("pgradar_table_last_analyze_timestamp_seconds", _ts(r.last_analyzed), **labels)
        f.add("pgradar_table_last_vacuum_timestamp_seconds", _ts(r.last_vacuumed), **labels)
        f.add("pgradar_table_xid_age", snapshot.xid_age(r), **labels)
        if every_family:
            f.add("pgradar_table_index_scans_total", r.idx_scan, **labels)
            f.add("pgradar_table_rows_inserted_total", r.n_tup_ins, **labels)
            f.add("pgradar_table_rows_deleted_total", r.n_tup_del, **labels)


def render_indexes(f: Families, t: TargetState, top_n: int, every_family: bool = False) -> None:
    """The indexes kept; ``every_family`` adds rows read (one series more per index, read by no panel)."""
    snapshot = t.current().indexes
    if snapshot is None:
        return
    f.add("pgradar_indexes_tracked", len(snapshot.indexes), target=t.name)
    oldest = oldest_of(t.kept().indexes)
    ranked = _ranked_indexes(snapshot.indexes, oldest.indexes if oldest is not None else None)
    for r in top_with(ranked, top_n, _index_key, problem_objects(t, with_index=True)):
        labels = {
            "target": t.name,
            "database": r.database,
            "schema": r.schema,
            "relation": r.relation,
            "index": r.index,
        }
        f.add("pgradar_index_scans_total", r.idx_scan, **labels)
        f.add("pgradar_index_size_bytes", r.size_bytes, **labels)
        f.add("pgradar_index_valid", 1.0 if r.is_valid else 0.0, **labels)
        if every_family:
            f.add("pgradar_index_rows_read_total", r.idx_tup_read, **labels)


def render_databases(f: Families, t: TargetState) -> None:
    snapshot = t.current().database
    if snapshot is None:
        return
    for r in snapshot.databases:
        labels = {"target": t.name, "database": r.database}
        f.add("pgradar_database_transactions_committed_total", r.xact_commit, **labels)
        f.add("pgradar_database_transactions_rolled_back_total", r.xact_rollback, **labels)
        f.add("pgradar_database_blocks_read_total", r.blks_read, **labels)
        f.add("pgradar_database_blocks_hit_total", r.blks_hit, **labels)
        f.add("pgradar_database_temp_bytes_total", r.temp_bytes, **labels)
        f.add("pgradar_database_deadlocks_total", r.deadlocks, **labels)
        f.add("pgradar_database_size_bytes", r.size_bytes, **labels)
        f.add("pgradar_database_xid_age", r.xid_age, **labels)
        f.add("pgradar_database_backends", r.numbackends, **labels)
        f.add("pgradar_database_mxid_age", r.mxid_age, **labels)


def render_activity(f: Families, t: TargetState) -> None:
    settings = t.current().settings
    if settings is not None:
        s = settings.settings
        f.add("pgradar_connections_max", s.max_connections - s.reserved_connections, target=t.name)
    snapshot = t.current().activity
    if snapshot is None:
        return
    worst: dict[str, tuple[float, float, float]] = {}
    for g in snapshot.groups:
        f.add(
            "pgradar_sessions",
            g.sessions,
            target=t.name,
            database=g.database,
            state=g.state,
            wait_event_type=g.wait_event_type,
        )
        old = worst.get(g.database, (0.0, 0.0, 0.0))
        worst[g.database] = (
            max(old[0], g.oldest_xact_seconds),
            max(old[1], g.longest_query_seconds),
            max(old[2], g.longest_idle_in_xact_seconds),
        )
    for database, (xact, query, idle) in sorted(worst.items()):
        f.add("pgradar_oldest_transaction_seconds", xact, target=t.name, database=database)
        f.add("pgradar_longest_query_seconds", query, target=t.name, database=database)
        f.add("pgradar_longest_idle_in_transaction_seconds", idle, target=t.name, database=database)


def render_plans(f: Families, t: TargetState) -> None:
    plans = t.current().plans
    if plans is None:
        return
    planned = [(p, p.summary) for p in plans.plans if p.summary is not None]
    f.add("pgradar_explain_statements", len(planned), target=t.name, outcome="planned")
    f.add("pgradar_explain_statements", len(plans.plans) - len(planned), target=t.name, outcome="skipped")
    f.add("pgradar_explain_cycle_seconds", plans.seconds, target=t.name)
    f.add("pgradar_explain_budget_exhausted", float(plans.budget_exhausted), target=t.name)
    for p, summary in planned:
        f.add(
            "pgradar_statement_plan_cost",
            summary.total_cost,
            target=t.name,
            database=p.database,
            queryid=str(p.queryid),
        )


RUNNING_LISTED = 10
CONNECTION_SERIES = 100  # application_name is free text: some clients put a unique id in it
OTHER = "(other)"


def bounded_connections(groups: Iterable[ConnectionGroup]) -> dict[tuple[str, str, str, str], int]:
    """The biggest connection groups as they are; the rest summed per state under '(other)'."""
    ordered = sorted(groups, key=lambda g: (-g.connections, g.database, g.username, g.application, g.state))
    out = {(g.database, g.username, g.application, g.state): g.connections for g in ordered[:CONNECTION_SERIES]}
    for g in ordered[CONNECTION_SERIES:]:
        key = (OTHER, OTHER, OTHER, g.state)
        out[key] = out.get(key, 0) + g.connections
    return out


def render_sessions(f: Families, t: TargetState) -> None:
    snapshot = t.current().sessions
    if snapshot is None:
        return
    for (database, user, application, state), count in bounded_connections(snapshot.connections).items():
        f.add(
            "pgradar_connections",
            count,
            target=t.name,
            database=database,
            user=user,
            application=application,
            state=state,
        )
    per_db: dict[str, list[float]] = {}
    for s in snapshot.sessions:
        counts = per_db.setdefault(s.database, [0.0, 0.0, 0.0])
        counts[0] += s.idle_in_transaction
        if s.blocked:
            counts[1] += 1
            counts[2] = max(counts[2], s.query_seconds or 0.0)
    for database, (idle, blocked, wait) in sorted(per_db.items()):
        labels = {"target": t.name, "database": database}
        f.add("pgradar_idle_in_transaction_sessions", idle, **labels)
        f.add("pgradar_blocked_sessions", blocked, **labels)
        f.add("pgradar_longest_lock_wait_seconds", wait, **labels)
    longest: dict[tuple[str, str], float] = {}
    for s in snapshot.sessions:
        if s.state == "active":
            key = (s.database, str(s.queryid) if s.queryid is not None else "")
            longest[key] = max(longest.get(key, 0.0), s.query_seconds or 0.0)
    for (database, queryid), seconds in sorted(longest.items(), key=lambda kv: -kv[1])[:RUNNING_LISTED]:
        f.add("pgradar_running_statement_seconds", seconds, target=t.name, database=database, queryid=queryid)


_STAGES = ("sent", "write", "flush", "replay")


def render_replication(f: Families, t: TargetState) -> None:
    snapshot = t.current().replication
    if snapshot is None:
        return
    f.add("pgradar_wal_bytes_total", snapshot.wal_bytes, target=t.name)
    for s in snapshot.standbys:
        labels = {"target": t.name, "standby": s.standby}
        f.add("pgradar_replication_standby_info", 1.0, state=s.state, sync_state=s.sync_state, **labels)
        for stage in _STAGES:
            f.add("pgradar_replication_lag_bytes", getattr(s, f"{stage}_behind_bytes"), stage=stage, **labels)
        for stage in _STAGES[1:]:
            f.add("pgradar_replication_lag_seconds", getattr(s, f"{stage}_lag_seconds"), stage=stage, **labels)
    for slot in snapshot.slots:
        labels = {"target": t.name, "slot": slot.slot}
        f.add(
            "pgradar_replication_slot_info",
            1.0,
            slot_type=slot.slot_type,
            database=slot.database,
            wal_status=slot.wal_status,
            **labels,
        )
        f.add("pgradar_replication_slot_active", 1.0 if slot.active else 0.0, **labels)
        f.add("pgradar_replication_slot_retained_bytes", slot.retained_bytes, **labels)
        f.add("pgradar_replication_slot_safe_wal_size_bytes", slot.safe_wal_size_bytes, **labels)
    r = snapshot.receiver
    if r is None:
        return
    since_replay = standby_lag_seconds(snapshot.taken_at, r, t.kept().replication)
    f.add("pgradar_standby_replay_paused", 1.0 if r.paused else 0.0, target=t.name)
    f.add("pgradar_standby_receiver_streaming", 1.0 if r.receiver_status == "streaming" else 0.0, target=t.name)
    f.add("pgradar_standby_replay_behind_bytes", r.replay_behind_bytes, target=t.name)
    f.add("pgradar_standby_replay_lag_seconds", lag(r.replay_behind_bytes, since_replay).seconds, target=t.name)
    f.add("pgradar_standby_last_replay_timestamp_seconds", _ts(r.last_replay_at), target=t.name)


def render_pgbouncer(f: Families, t: TargetState) -> None:
    snapshot = t.current().pgbouncer
    if snapshot is None:
        return
    for p in snapshot.pools:
        labels = {"target": t.name, "pool": p.name, "database": p.database, "user": p.user}
        f.add("pgradar_pgbouncer_clients", p.cl_active, state="active", **labels)
        f.add("pgradar_pgbouncer_clients", p.cl_waiting, state="waiting", **labels)
        for state in ("active", "idle", "used", "tested", "login"):
            f.add("pgradar_pgbouncer_servers", getattr(p, f"sv_{state}"), state=state, **labels)
        f.add("pgradar_pgbouncer_maxwait_seconds", p.maxwait_seconds, **labels)
    for d in snapshot.databases:
        labels = {"target": t.name, "database": d.name}
        f.add("pgradar_pgbouncer_pool_size", d.pool_size, **labels)
        f.add("pgradar_pgbouncer_reserve_pool", d.reserve_pool, **labels)
        f.add("pgradar_pgbouncer_database_max_connections", d.max_connections, **labels)
        f.add("pgradar_pgbouncer_database_connections", d.current_connections, **labels)
        f.add("pgradar_pgbouncer_database_paused", 1.0 if d.paused or d.disabled else 0.0, **labels)
    for s in snapshot.stats:
        labels = {"target": t.name, "database": s.database}
        f.add("pgradar_pgbouncer_transactions_total", s.transactions, **labels)
        f.add("pgradar_pgbouncer_queries_total", s.queries, **labels)
        f.add("pgradar_pgbouncer_received_bytes_total", s.received_bytes, **labels)
        f.add("pgradar_pgbouncer_sent_bytes_total", s.sent_bytes, **labels)
        f.add("pgradar_pgbouncer_transaction_seconds_total", s.xact_seconds, **labels)
        f.add("pgradar_pgbouncer_query_seconds_total", s.query_seconds, **labels)
        f.add("pgradar_pgbouncer_wait_seconds_total", s.wait_seconds, **labels)
    for key, metric in (
        ("max_client_conn", "pgradar_pgbouncer_max_client_connections"),
        ("default_pool_size", "pgradar_pgbouncer_default_pool_size"),
    ):
        value = snapshot.setting(key)
        if value is not None and value.isdigit():
            f.add(metric, float(value), target=t.name)


def render_load(f: Families, t: TargetState) -> None:
    """The load counters (model/load.py): every wait event per database, the top statements and the rest."""
    f.add("pgradar_target_cpus", t.cpus, target=t.name)
    totals = t.load.totals
    if not totals.samples:
        return
    f.add("pgradar_load_sampled_seconds_total", totals.sampled_seconds, target=t.name)
    for (database, wtype, event), seconds in sorted(totals.waits.items()):
        f.add(
            "pgradar_db_load_seconds_total",
            seconds,
            target=t.name,
            database=database,
            wait_event_type=wtype,
            wait_event=event,
        )
    for (database, queryid, wtype), seconds in sorted(totals.statements.items()):
        f.add(
            "pgradar_statement_load_seconds_total",
            seconds,
            target=t.name,
            database=database,
            queryid=queryid,
            wait_event_type=wtype,
        )


def render_problems(f: Families, t: TargetState) -> None:
    counts = {(kind, severity): 0 for kind in Kind for severity in Severity}
    for problem in t.problems.values():
        finding = problem.finding
        counts[(finding.kind, finding.severity)] += 1
        f.add(
            "pgradar_problem",
            1.0,
            kind=finding.kind,
            severity=finding.severity,
            target=t.name,
            **{name: value or "" for name, value in finding.object.items()},
        )
    for (kind, severity), count in counts.items():
        f.add("pgradar_problems", count, kind=kind, severity=severity, target=t.name)
