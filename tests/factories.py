"""Builders of snapshots for unit tests (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pgradar.agent.snapshots import StatementsInfo, StatementsSnapshot, StatementStat

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
