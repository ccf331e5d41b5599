"""A prometheus-client custom collector that renders the agent's state.

A scrape reads the latest snapshots and never queries a database, so the
load on PostgreSQL depends on poll intervals, not on how many Prometheus
servers scrape (DESIGN section 2). ``describe`` returns nothing so that
registering the collector does not trigger a collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from pgradar.agent.analysis import rank_statements
from pgradar.agent.findings import KINDS, SEVERITIES
from pgradar.agent.state import AgentState, TargetState
from pgradar.exporters.catalogue import BY_NAME
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry


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
    snapshot = t.latest("statements")
    if snapshot is None:
        return
    f.add("pgradar_statements_tracked", len(snapshot.rows), target=t.name)
    if snapshot.info is not None:
        f.add("pgradar_statements_deallocations_total", snapshot.info.dealloc, target=t.name)
    f.add("pgradar_statement_texts_fetched_total", t.texts_fetched_total, target=t.name)
    totals = t.statement_totals
    for database, acc in sorted(totals.by_database.items()):
        f.add("pgradar_statements_calls_total", acc["calls"], target=t.name, database=database)
        f.add("pgradar_statements_exec_seconds_total", acc["total_exec_ms"] / 1000, target=t.name,
              database=database)
        f.add("pgradar_statements_rows_total", acc["rows"], target=t.name, database=database)
        f.add("pgradar_statements_shared_blocks_hit_total", acc["shared_blks_hit"], target=t.name,
              database=database)
        f.add("pgradar_statements_shared_blocks_read_total", acc["shared_blks_read"], target=t.name,
              database=database)
        f.add("pgradar_statements_temp_blocks_written_total", acc["temp_blks_written"], target=t.name,
              database=database)
    for delta in rank_statements(t.statement_intervals, top_n):
        acc = totals.counters.get(delta.key)
        if acc is None:
            continue
        labels = {"target": t.name, "database": delta.database, "user": delta.username,
                  "queryid": str(delta.queryid), "toplevel": "true" if delta.toplevel else "false"}
        for metric, counter, scale in _STATEMENT_COUNTERS:
            f.add(metric, acc[counter] * scale, **labels)
        f.add("pgradar_statement_mean_exec_seconds", delta.mean_exec_ms / 1000, **labels)


def render_tables(f: Families, t: TargetState) -> None:
    snapshot = t.latest("tables")
    if snapshot is None:
        return
    for r in snapshot.tables:
        labels = {"target": t.name, "database": r.database, "schema": r.schema, "relation": r.relation}
        f.add("pgradar_table_seq_scans_total", r.seq_scan, **labels)
        f.add("pgradar_table_seq_rows_read_total", r.seq_tup_read, **labels)
        f.add("pgradar_table_index_scans_total", r.idx_scan, **labels)
        f.add("pgradar_table_rows_inserted_total", r.n_tup_ins, **labels)
        f.add("pgradar_table_rows_updated_total", r.n_tup_upd, **labels)
        f.add("pgradar_table_rows_deleted_total", r.n_tup_del, **labels)
        f.add("pgradar_table_live_rows", r.n_live_tup, **labels)
        f.add("pgradar_table_dead_rows", r.n_dead_tup, **labels)
        f.add("pgradar_table_modified_since_analyze_rows", r.n_mod_since_analyze, **labels)
        f.add("pgradar_table_size_bytes", r.size_bytes, **labels)
        f.add("pgradar_table_last_analyze_timestamp_seconds", _ts(r.last_analyzed), **labels)
        f.add("pgradar_table_last_vacuum_timestamp_seconds", _ts(r.last_vacuumed), **labels)
        f.add("pgradar_table_xid_age", r.xid_age, **labels)


def render_indexes(f: Families, t: TargetState) -> None:
    snapshot = t.latest("indexes")
    if snapshot is None:
        return
    for r in snapshot.indexes:
        labels = {"target": t.name, "database": r.database, "schema": r.schema, "relation": r.relation,
                  "index": r.index}
        f.add("pgradar_index_scans_total", r.idx_scan, **labels)
        f.add("pgradar_index_rows_read_total", r.idx_tup_read, **labels)
        f.add("pgradar_index_size_bytes", r.size_bytes, **labels)
        f.add("pgradar_index_valid", 1.0 if r.is_valid else 0.0, **labels)


def render_databases(f: Families, t: TargetState) -> None:
    snapshot = t.latest("database")
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


def render_activity(f: Families, t: TargetState) -> None:
    settings = t.latest("settings")
    if settings is not None:
        s = settings.settings
        f.add("pgradar_connections_max", s.max_connections - s.reserved_connections, target=t.name)
    snapshot = t.latest("activity")
    if snapshot is None:
        return
    worst: dict[str, tuple[float, float, float]] = {}
    for g in snapshot.groups:
        f.add("pgradar_sessions", g.sessions, target=t.name, database=g.database, state=g.state,
              wait_event_type=g.wait_event_type)
        old = worst.get(g.database, (0.0, 0.0, 0.0))
        worst[g.database] = (max(old[0], g.oldest_xact_seconds), max(old[1], g.longest_query_seconds),
                             max(old[2], g.longest_idle_in_xact_seconds))
    for database, (xact, query, idle) in sorted(worst.items()):
        f.add("pgradar_oldest_transaction_seconds", xact, target=t.name, database=database)
        f.add("pgradar_longest_query_seconds", query, target=t.name, database=database)
        f.add("pgradar_longest_idle_in_transaction_seconds", idle, target=t.name, database=database)


def render_problems(f: Families, t: TargetState) -> None:
    counts = {(kind, severity): 0 for kind in KINDS for severity in SEVERITIES}
    for problem in t.problems.values():
        finding = problem.finding
        counts[(finding.kind, finding.severity)] += 1
        f.add("pgradar_problem", 1.0, kind=finding.kind, severity=finding.severity, target=t.name,
              **{name: value or "" for name, value in finding.object.items()})
    for (kind, severity), count in counts.items():
        f.add("pgradar_problems", count, kind=kind, severity=severity, target=t.name)


class StateCollector(Collector):
    def __init__(self, state: AgentState, top_statements: int) -> None:
        self.state = state
        self.top_statements = top_statements

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        f = Families()
        for t in self.state:
            with t.lock:
                render_self(f, t)
                render_statements(f, t, self.top_statements)
                render_tables(f, t)
                render_indexes(f, t)
                render_databases(f, t)
                render_activity(f, t)
                render_problems(f, t)
        return list(f)


def registry_for(state: AgentState, top_statements: int) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, top_statements))
    return registry
