"""The one catalogue of metrics: name, type, help and labels.

The exporter renders only what is listed here (an unlisted name is a bug that
fails loudly), and the dashboards and alert rules are checked against the
names the exporter really produces. Names follow DESIGN 3.3: prefix
``pgradar_``, base units, counters end in ``_total``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...]


T = ("target",)
TC = ("target", "collector")
TD = ("target", "database")
STMT = ("target", "database", "user", "queryid", "toplevel")
REL = ("target", "database", "schema", "relation")
IDX = ("target", "database", "schema", "relation", "index")
SLOT = ("target", "slot")
POOL = ("target", "pool", "database", "user")
CQ = ("target", "custom_query")  # a custom query by its name (never its text)


def _m(name: str, kind: Literal["gauge", "counter"], labels: tuple[str, ...], help_text: str) -> Metric:
    return Metric(name, kind, help_text, labels)


PROBLEM = (
    "kind",
    "severity",
    "target",
    "database",
    "schema",
    "relation",
    "index",
    "queryid",
    "standby",
    "slot",
    "pool",
    "wait_event",
)

METRICS: tuple[Metric, ...] = (
    # --- problems (DESIGN 3.2) ----------------------------------------------------------
    _m(
        "pgradar_problem",
        "gauge",
        PROBLEM,
        "1 while a problem is active; object labels that do not apply are empty. See /problems for the fix.",
    ),
    _m("pgradar_problems", "gauge", ("kind", "severity", "target"), "Active problems by kind and severity."),
    # --- the agent itself ------------------------------------------------------------
    _m("pgradar_up", "gauge", T, "1 when the last attempt to reach the target's server succeeded."),
    _m("pgradar_collector_duration_seconds", "gauge", TC, "Duration of the collector's last run."),
    _m("pgradar_collector_runs_total", "counter", TC, "Collector runs, successful or not."),
    _m("pgradar_collector_errors_total", "counter", TC, "Collector runs that failed."),
    _m(
        "pgradar_collector_last_success_timestamp_seconds",
        "gauge",
        TC,
        "Unix time of the collector's last successful run.",
    ),
    _m(
        "pgradar_collector_enabled",
        "gauge",
        TC,
        "0 while a missing extension or privilege keeps the collector off (see the agent's log).",
    ),
    _m(
        "pgradar_collector_late_runs_total",
        "counter",
        TC,
        "Scheduled runs that started more than a second after they were due: the process is too busy for "
        "its targets (shard them, docs/fleet.md).",
    ),
    _m(
        "pgradar_collector_skipped_runs_total",
        "counter",
        TC,
        "Scheduled runs not started because the previous run still ran (the collector is slower than its interval).",
    ),
    _m("pgradar_collector_lateness_seconds", "gauge", TC, "How late the collector's last scheduled run started."),
    _m("pgradar_server_info", "gauge", ("target", "version", "role"), "Server version and role (always 1)."),
    _m("pgradar_server_in_recovery", "gauge", T, "1 on a standby."),
    _m("pgradar_server_start_time_seconds", "gauge", T, "Unix time the postmaster started."),
    # --- statements (pg_stat_statements) ----------------------------------------------
    _m("pgradar_statement_calls_total", "counter", STMT, "Calls of a top-N statement since the agent started."),
    _m("pgradar_statement_exec_seconds_total", "counter", STMT, "Execution time of a top-N statement."),
    _m("pgradar_statement_plan_seconds_total", "counter", STMT, "Planning time of a top-N statement."),
    _m("pgradar_statement_rows_total", "counter", STMT, "Rows returned or affected by a top-N statement."),
    _m("pgradar_statement_shared_blocks_hit_total", "counter", STMT, "Shared buffer hits of a top-N statement."),
    _m(
        "pgradar_statement_shared_blocks_read_total",
        "counter",
        STMT,
        "Shared blocks a top-N statement read from outside shared buffers.",
    ),
    _m(
        "pgradar_statement_temp_blocks_written_total",
        "counter",
        STMT,
        "Temporary blocks a top-N statement wrote (sorts and hashes beyond work_mem).",
    ),
    _m(
        "pgradar_statement_io_read_seconds_total",
        "counter",
        STMT,
        "Time a top-N statement spent reading blocks (needs track_io_timing).",
    ),
    _m("pgradar_statement_mean_exec_seconds", "gauge", STMT, "Mean execution time over the last interval."),
    _m("pgradar_statements_calls_total", "counter", TD, "Calls of every statement, top-N or not."),
    _m("pgradar_statements_exec_seconds_total", "counter", TD, "Execution time of every statement."),
    _m("pgradar_statements_rows_total", "counter", TD, "Rows of every statement."),
    _m("pgradar_statements_shared_blocks_hit_total", "counter", TD, "Shared buffer hits of every statement."),
    _m(
        "pgradar_statements_shared_blocks_read_total",
        "counter",
        TD,
        "Shared blocks every statement read from outside shared buffers.",
    ),
    _m(
        "pgradar_statements_temp_blocks_written_total",
        "counter",
        TD,
        "Temporary blocks every statement wrote (sorts and hashes beyond work_mem).",
    ),
    _m("pgradar_statements_tracked", "gauge", T, "Entries in pg_stat_statements."),
    _m(
        "pgradar_statements_deallocations_total",
        "counter",
        T,
        "Entries pg_stat_statements evicted for lack of room (14+): raise pg_stat_statements.max if it grows.",
    ),
    _m(
        "pgradar_statement_texts_fetched_total",
        "counter",
        T,
        "Statement texts fetched: only texts of statements not seen before cross the wire.",
    ),
    # --- tables ------------------------------------------------------------------------
    _m("pgradar_table_seq_scans_total", "counter", REL, "Sequential scans of the table."),
    _m("pgradar_table_seq_rows_read_total", "counter", REL, "Rows read by sequential scans."),
    _m("pgradar_table_index_scans_total", "counter", REL, "Index scans of the table (limits.relation_series: all)."),
    _m("pgradar_table_rows_inserted_total", "counter", REL, "Rows inserted (limits.relation_series: all)."),
    _m("pgradar_table_rows_updated_total", "counter", REL, "Rows updated."),
    _m("pgradar_table_rows_deleted_total", "counter", REL, "Rows deleted (limits.relation_series: all)."),
    _m("pgradar_table_live_rows", "gauge", REL, "Estimated live rows."),
    _m("pgradar_table_dead_rows", "gauge", REL, "Estimated dead rows, waiting for vacuum."),
    _m("pgradar_table_modified_since_analyze_rows", "gauge", REL, "Rows changed since the last analyze."),
    _m("pgradar_table_size_bytes", "gauge", REL, "Size of the table with its TOAST, without indexes."),
    _m(
        "pgradar_table_last_analyze_timestamp_seconds",
        "gauge",
        REL,
        "Unix time of the last analyze, manual or automatic (absent: never analyzed).",
    ),
    _m(
        "pgradar_table_last_vacuum_timestamp_seconds",
        "gauge",
        REL,
        "Unix time of the last vacuum, manual or automatic (absent: never vacuumed).",
    ),
    _m("pgradar_table_xid_age", "gauge", REL, "Age of the table's relfrozenxid, in transactions."),
    _m(
        "pgradar_tables_tracked",
        "gauge",
        T,
        "User tables seen; per-table series only for the most active (limits.top_tables) and those with a problem.",
    ),
    # --- indexes -------------------------------------------------------------------------
    _m("pgradar_index_scans_total", "counter", IDX, "Scans of the index."),
    _m(
        "pgradar_index_rows_read_total",
        "counter",
        IDX,
        "Index entries returned by scans (limits.relation_series: all).",
    ),
    _m("pgradar_index_size_bytes", "gauge", IDX, "Size of the index."),
    _m("pgradar_index_valid", "gauge", IDX, "0 when the index is invalid (a failed CREATE INDEX CONCURRENTLY)."),
    # --- EXPLAIN (plans collector) -------------------------------------------------------------
    _m(
        "pgradar_explain_statements",
        "gauge",
        ("target", "outcome"),
        "Top-N statements for EXPLAIN (plain reads of user tables), by outcome: planned, or skipped (planning failed).",
    ),
    _m("pgradar_explain_cycle_seconds", "gauge", T, "Time the last EXPLAIN cycle took (bounded by the budget)."),
    _m(
        "pgradar_explain_budget_exhausted",
        "gauge",
        T,
        "1 when the last EXPLAIN cycle ran out of its time budget and left statements for the next one.",
    ),
    _m(
        "pgradar_statement_plan_cost",
        "gauge",
        ("target", "database", "queryid"),
        "Estimated total cost of a top-N statement's generic plan.",
    ),
    _m(
        "pgradar_indexes_tracked",
        "gauge",
        T,
        "User indexes seen; per-index series only for the most scanned (limits.top_indexes) and those with a problem.",
    ),
    # --- databases -------------------------------------------------------------------------
    _m("pgradar_database_transactions_committed_total", "counter", TD, "Transactions committed."),
    _m("pgradar_database_transactions_rolled_back_total", "counter", TD, "Transactions rolled back."),
    _m("pgradar_database_blocks_read_total", "counter", TD, "Blocks read from outside shared buffers."),
    _m("pgradar_database_blocks_hit_total", "counter", TD, "Blocks found in shared buffers."),
    _m("pgradar_database_temp_bytes_total", "counter", TD, "Bytes written to temporary files."),
    _m("pgradar_database_deadlocks_total", "counter", TD, "Deadlocks detected."),
    _m("pgradar_database_size_bytes", "gauge", TD, "Size of the database."),
    _m("pgradar_database_xid_age", "gauge", TD, "Age of the database's datfrozenxid, in transactions."),
    _m("pgradar_database_backends", "gauge", TD, "Backends connected to the database."),
    # --- sessions --------------------------------------------------------------------------
    _m(
        "pgradar_sessions",
        "gauge",
        ("target", "database", "state", "wait_event_type"),
        "Client sessions by database, state and wait event type.",
    ),
    _m(
        "pgradar_connections_max",
        "gauge",
        T,
        "Connections available to ordinary roles: max_connections minus reserved slots.",
    ),
    _m("pgradar_oldest_transaction_seconds", "gauge", TD, "Age of the oldest open transaction."),
    _m("pgradar_longest_query_seconds", "gauge", TD, "Run time of the longest active statement."),
    _m(
        "pgradar_longest_idle_in_transaction_seconds",
        "gauge",
        TD,
        "Longest time a session has sat idle inside a transaction.",
    ),
    _m(
        "pgradar_connections",
        "gauge",
        ("target", "database", "user", "application", "state"),
        "Client connections by database, user, application and state (this agent's included).",
    ),
    _m("pgradar_idle_in_transaction_sessions", "gauge", TD, "Sessions idle inside a transaction."),
    _m("pgradar_blocked_sessions", "gauge", TD, "Sessions waiting for a lock another session holds."),
    _m(
        "pgradar_longest_lock_wait_seconds",
        "gauge",
        TD,
        "Run time of the longest statement blocked by another session's lock.",
    ),
    _m(
        "pgradar_running_statement_seconds",
        "gauge",
        ("target", "database", "queryid"),
        "Run time of the longest running statements (at most 10), by queryid (14+; empty before).",
    ),
    # --- replication ------------------------------------------------------------------------
    _m(
        "pgradar_wal_bytes_total",
        "counter",
        T,
        "The server's WAL position in bytes (a standby: the last received); its rate is the WAL rate.",
    ),
    _m(
        "pgradar_replication_standby_info",
        "gauge",
        ("target", "standby", "state", "sync_state"),
        "A standby streaming from the target (always 1; the standby label is its application_name).",
    ),
    _m(
        "pgradar_replication_lag_bytes",
        "gauge",
        ("target", "standby", "stage"),
        "WAL the standby has not yet passed a stage for (sent, write, flush, replay), from the sender's position.",
    ),
    _m(
        "pgradar_replication_lag_seconds",
        "gauge",
        ("target", "standby", "stage"),
        "pg_stat_replication write/flush/replay lag; keeps its last value while the primary is idle, so "
        "read it with the replay lag in bytes.",
    ),
    _m(
        "pgradar_replication_slot_info",
        "gauge",
        ("target", "slot", "slot_type", "database", "wal_status"),
        "A replication slot (always 1).",
    ),
    _m("pgradar_replication_slot_active", "gauge", SLOT, "1 while a consumer uses the slot."),
    _m("pgradar_replication_slot_retained_bytes", "gauge", SLOT, "WAL the slot holds back from removal."),
    _m(
        "pgradar_replication_slot_safe_wal_size_bytes",
        "gauge",
        SLOT,
        "WAL that can still be written before the slot loses its WAL (max_slot_wal_keep_size set only).",
    ),
    _m("pgradar_standby_replay_paused", "gauge", T, "1 on a standby whose replay is paused or pause-requested."),
    _m("pgradar_standby_receiver_streaming", "gauge", T, "1 on a standby whose WAL receiver streams."),
    _m("pgradar_standby_replay_behind_bytes", "gauge", T, "WAL a standby received and has not replayed."),
    _m(
        "pgradar_standby_replay_lag_seconds",
        "gauge",
        T,
        "Time since the last replayed commit while the standby has WAL left to replay; 0 when caught up "
        "(an idle primary is no lag).",
    ),
    _m("pgradar_standby_last_replay_timestamp_seconds", "gauge", T, "Unix time of the last replayed commit."),
    # --- pgbouncer --------------------------------------------------------------------------
    _m("pgradar_pgbouncer_clients", "gauge", (*POOL, "state"), "Client connections of a pool: active, waiting."),
    _m(
        "pgradar_pgbouncer_servers",
        "gauge",
        (*POOL, "state"),
        "Server connections of a pool: active, idle, used, tested, login.",
    ),
    _m("pgradar_pgbouncer_maxwait_seconds", "gauge", POOL, "How long the oldest waiting client has waited."),
    _m("pgradar_pgbouncer_pool_size", "gauge", TD, "pool_size of a pgbouncer database entry."),
    _m("pgradar_pgbouncer_reserve_pool", "gauge", TD, "reserve_pool of a pgbouncer database entry."),
    _m(
        "pgradar_pgbouncer_database_max_connections",
        "gauge",
        TD,
        "max_db_connections of a pgbouncer database entry (0: unlimited).",
    ),
    _m("pgradar_pgbouncer_database_connections", "gauge", TD, "Server connections of a pgbouncer database entry."),
    _m("pgradar_pgbouncer_database_paused", "gauge", TD, "1 while the database entry is paused or disabled."),
    _m("pgradar_pgbouncer_transactions_total", "counter", TD, "Transactions pooled."),
    _m("pgradar_pgbouncer_queries_total", "counter", TD, "Queries pooled."),
    _m("pgradar_pgbouncer_received_bytes_total", "counter", TD, "Bytes received from clients."),
    _m("pgradar_pgbouncer_sent_bytes_total", "counter", TD, "Bytes sent to clients."),
    _m("pgradar_pgbouncer_transaction_seconds_total", "counter", TD, "Time spent in transactions."),
    _m("pgradar_pgbouncer_query_seconds_total", "counter", TD, "Time spent in queries."),
    _m("pgradar_pgbouncer_wait_seconds_total", "counter", TD, "Time clients spent waiting for a server."),
    _m("pgradar_pgbouncer_max_client_connections", "gauge", T, "max_client_conn."),
    _m("pgradar_pgbouncer_default_pool_size", "gauge", T, "default_pool_size."),
    # --- database load (the load sampler, model/load.py) -------------------------------------------
    _m(
        "pgradar_db_load_seconds_total",
        "counter",
        ("target", "database", "wait_event_type", "wait_event"),
        "Active-session seconds sampled, by wait event (CPU: active with none); rate() is average active sessions.",
    ),
    _m(
        "pgradar_statement_load_seconds_total",
        "counter",
        ("target", "database", "queryid", "wait_event_type"),
        'Active-session seconds sampled for the statements with the most load; the rest under queryid="other".',
    ),
    _m("pgradar_target_cpus", "gauge", T, "The server's cores as configured (targets[i].cpus); absent when unknown."),
    _m(
        "pgradar_load_sampled_seconds_total",
        "counter",
        T,
        "Seconds the load samples stood for; its rate() is below 1 while samples are missed.",
    ),
    # --- custom SQL collectors (their own series are named by their config: exporters/custom.py) ------
    _m("pgradar_custom_query_runs_total", "counter", CQ, "Runs of a custom query, failed or not."),
    _m(
        "pgradar_custom_query_errors_total",
        "counter",
        CQ,
        "Runs of a custom query that failed, timed out or tried to write (the agent's log says which).",
    ),
    _m("pgradar_custom_query_duration_seconds", "gauge", CQ, "Duration of a custom query's last run."),
    _m(
        "pgradar_custom_query_last_success_timestamp_seconds",
        "gauge",
        CQ,
        "Unix time of a custom query's last successful run.",
    ),
    _m(
        "pgradar_custom_query_enabled",
        "gauge",
        CQ,
        "0 while a custom query is off: backing off after an error, stopped after a write, or not for this server.",
    ),
    _m("pgradar_custom_query_series", "gauge", CQ, "Series a custom query's last run produced."),
    _m(
        "pgradar_custom_query_series_dropped_total",
        "counter",
        ("target", "custom_query", "reason"),
        "Series a custom query's runs left out: over its max_series (reason max_series) or a label set "
        "given twice (reason duplicate).",
    ),
    # --- vacuum (collectors vacuum and bloat) -----------------------------------------------
    _m(
        "pgradar_xmin_horizon_age_seconds",
        "gauge",
        ("target", "holder"),
        "How long the oldest holder of each kind (backend, prepared, slot, standby) has held the xmin horizon; "
        "the server's time where it keeps one, else how long pgradar has seen it.",
    ),
    _m(
        "pgradar_xmin_horizon_age_xids",
        "gauge",
        ("target", "holder"),
        "Age in transactions of the oldest xmin a holder of each kind keeps.",
    ),
    _m("pgradar_autovacuum_workers_busy", "gauge", T, "Autovacuum workers running a VACUUM now."),
    _m(
        "pgradar_table_bloat_bytes",
        "gauge",
        REL,
        "Wasted bytes of the 20 most bloated tables (pgstattuple's figure where measured, else the estimate).",
    ),
    _m("pgradar_index_bloat_bytes", "gauge", IDX, "Wasted bytes of the 20 most bloated B-tree indexes."),
    _m("pgradar_table_rows_hot_updated_total", "counter", REL, "Rows updated HOT (no index written)."),
    _m("pgradar_database_mxid_age", "gauge", TD, "Age of the database's datminmxid, in multixacts."),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
