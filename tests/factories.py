"""Builders of snapshots for unit tests (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pgradar.agent.analysis import StatementDelta, StatementInterval
from pgradar.agent.autoexplain import AutoExplainSnapshot
from pgradar.agent.observation import Observation
from pgradar.agent.snapshots import (
    DatabaseSnapshot,
    DatabaseStat,
    Settings,
    SettingsSnapshot,
    StatementsInfo,
    StatementsSnapshot,
    StatementStat,
    TablesSnapshot,
    TableStat,
)

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def stat(queryid: int, calls: int, exec_ms: float, rows: int = 0, userid: int = 10) -> StatementStat:
    return StatementStat(userid=userid, dbid=5, queryid=queryid, toplevel=True, database="app",
                         username="u", calls=calls, total_exec_ms=exec_ms, total_plan_ms=0.0,
                         max_exec_ms=1.0, rows=rows, shared_blks_hit=calls * 10, shared_blks_read=0,
                         shared_blks_dirtied=0, shared_blks_written=0, temp_blks_read=0,
                         temp_blks_written=0, blk_read_ms=0.0, blk_write_ms=0.0, wal_bytes=0.0)


def snap(minutes: int, *rows: StatementStat, reset: datetime | None = None) -> StatementsSnapshot:
    info = StatementsInfo(0, reset) if reset is not None else None
    return StatementsSnapshot(T0 + timedelta(minutes=minutes), rows, info, 0)


# --- statement classifiers: deltas, intervals and observations ----------------------


def delta(queryid: int, calls: int, exec_ms: float = 1.0, rows: int = 0, hit: int = 0, read: int = 0,
          temp_written: int = 0, database: str = "app", username: str = "u", dbid: int = 5,
          toplevel: bool = True) -> StatementDelta:
    return StatementDelta(userid=10, dbid=dbid, queryid=queryid, toplevel=toplevel, database=database,
                          username=username, calls=calls, total_exec_ms=exec_ms, total_plan_ms=0.0, rows=rows,
                          shared_blks_hit=hit, shared_blks_read=read, shared_blks_dirtied=0,
                          shared_blks_written=0, temp_blks_read=temp_written, temp_blks_written=temp_written,
                          blk_read_ms=0.0, blk_write_ms=0.0, wal_bytes=0.0)


def interval(*deltas: StatementDelta, seconds: float = 60, start: datetime = T0) -> StatementInterval:
    return StatementInterval(start, start + timedelta(seconds=seconds), deltas, False)


def table(relation: str, columns: int, schema: str = "public", database: str = "app") -> TableStat:
    return TableStat(database=database, relid=1, schema=schema, relation=relation, relkind="r", reltuples=1000.0,
                     size_bytes=8192, total_size_bytes=8192, seq_scan=0, seq_tup_read=0, idx_scan=0,
                     idx_tup_fetch=0, n_tup_ins=0, n_tup_upd=0, n_tup_del=0, n_tup_hot_upd=0, n_live_tup=1000,
                     n_dead_tup=0, n_mod_since_analyze=0, n_ins_since_vacuum=0, last_vacuum=None,
                     last_autovacuum=None, last_analyze=None, last_autoanalyze=None, vacuum_count=0,
                     analyze_count=0, last_seq_scan=None, xid_age=None, reloptions=[], column_count=columns)


def commits(seconds: float, **per_database: int) -> DatabaseSnapshot:
    """pg_stat_database at T0 + seconds, with xact_commit per database."""
    return DatabaseSnapshot(T0 + timedelta(seconds=seconds), tuple(
        DatabaseStat(database=name, numbackends=1, xact_commit=n, xact_rollback=0, blks_read=0, blks_hit=0,
                     tup_returned=0, tup_fetched=0, tup_inserted=0, tup_updated=0, tup_deleted=0, conflicts=0,
                     temp_files=0, temp_bytes=0, deadlocks=0, blk_read_ms=0.0, blk_write_ms=0.0, stats_reset=None,
                     size_bytes=0, xid_age=0, mxid_age=0)
        for name, n in per_database.items()))


def settings(work_mem: int = 4 << 20, block_size: int = 8192) -> SettingsSnapshot:
    return SettingsSnapshot(T0, Settings(
        max_connections=100, reserved_connections=3, work_mem_bytes=work_mem, track_io_timing=True,
        autovacuum=True, autovacuum_vacuum_threshold=50, autovacuum_vacuum_scale_factor=0.2,
        autovacuum_analyze_threshold=50, autovacuum_analyze_scale_factor=0.1,
        autovacuum_freeze_max_age=200_000_000, pgss_max=5000, idle_in_transaction_session_timeout_s=0.0,
        raw=(), block_size=block_size))


def observation(*intervals: StatementInterval, texts: dict[tuple[int, int], str] | None = None,
                tables: tuple[TableStat, ...] = (), database_history: tuple[DatabaseSnapshot, ...] = (),
                settings_snapshot: SettingsSnapshot | None = None, statements: StatementsSnapshot | None = None,
                auto_explain: AutoExplainSnapshot | None = None,
                now: datetime = T0 + timedelta(minutes=5)) -> Observation:
    latest: dict[str, Any] = {"settings": settings_snapshot or settings(),
                              "tables": TablesSnapshot(T0, tables)}
    if database_history:
        latest["database"] = database_history[-1]
    if statements is not None:
        latest["statements"] = statements
    if auto_explain is not None:
        latest["auto_explain"] = auto_explain
    return Observation("t", now, snapshots=latest, history={"database": database_history},
                       statement_intervals=intervals, statement_texts=dict(texts or {}))
