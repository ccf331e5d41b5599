"""Typed, timestamped snapshots: what one collector saw at one moment.

Row types are frozen and slotted; their field names are the column names of
the SQL in ``agent/sql`` (the driver builds them directly from the rows), so
renaming a field means renaming the column in every variant, which the
per-version integration test catches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

# --- statements ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementStat:
    userid: int
    dbid: int
    queryid: int
    toplevel: bool
    database: str
    username: str
    calls: int
    total_exec_ms: float
    total_plan_ms: float
    max_exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    shared_blks_dirtied: int
    shared_blks_written: int
    temp_blks_read: int
    temp_blks_written: int
    blk_read_ms: float
    blk_write_ms: float
    wal_bytes: float

    @property
    def key(self) -> StatementKey:
        return (self.userid, self.dbid, self.queryid, self.toplevel)


StatementKey = tuple[int, int, int, bool]


@dataclass(frozen=True, slots=True)
class StatementText:
    dbid: int
    queryid: int
    query: str


@dataclass(frozen=True, slots=True)
class StatementsInfo:
    dealloc: int
    stats_reset: datetime | None


@dataclass(frozen=True, slots=True)
class StatementsSnapshot:
    taken_at: datetime
    rows: tuple[StatementStat, ...]
    info: StatementsInfo | None  # None before 14
    new_texts: int  # how many texts this poll fetched (only those of new queryids)


# --- tables and indexes --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableStat:
    database: str
    relid: int
    schema: str
    relation: str
    relkind: str
    reltuples: float
    size_bytes: int | None
    total_size_bytes: int | None
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    idx_tup_fetch: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    n_tup_hot_upd: int
    n_live_tup: int
    n_dead_tup: int
    n_mod_since_analyze: int
    n_ins_since_vacuum: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    vacuum_count: int
    analyze_count: int
    last_seq_scan: datetime | None
    xid_age: int | None
    reloptions: list[str]
    column_count: int = 0  # live columns (select_star: is the table wide?)

    @property
    def last_analyzed(self) -> datetime | None:
        times = [t for t in (self.last_analyze, self.last_autoanalyze) if t is not None]
        return max(times) if times else None

    @property
    def last_vacuumed(self) -> datetime | None:
        times = [t for t in (self.last_vacuum, self.last_autovacuum) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class IndexStat:
    database: str
    indexrelid: int
    relid: int
    schema: str
    relation: str
    index: str
    idx_scan: int
    idx_tup_read: int
    idx_tup_fetch: int
    size_bytes: int | None
    definition: str
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    key_count: int
    columns: list[str | None]  # None where the key is an expression
    predicate: str | None
    expressions: str | None
    constraint_type: str | None  # 'p', 'u' or 'x' when the index backs a constraint
    last_idx_scan: datetime | None


class PerDatabase(Protocol):
    """A snapshot gathered database by database, some of which may have failed."""

    failed_databases: tuple[str, ...]

    def rows(self) -> tuple[Any, ...]: ...

    def with_rows(self, rows: tuple[Any, ...]) -> PerDatabase: ...


def carry_over(previous: PerDatabase | None, current: PerDatabase) -> PerDatabase:
    """``current`` with the previous rows of the databases that failed this time.

    A database that times out once (a lock held by DDL, a restart) should not
    make its tables vanish from the metrics and the classifiers for a cycle.
    """
    if previous is None or not current.failed_databases:
        return current
    kept = tuple(r for r in previous.rows() if r.database in current.failed_databases)
    return current.with_rows(current.rows() + kept)


@dataclass(frozen=True, slots=True)
class TablesSnapshot:
    taken_at: datetime
    tables: tuple[TableStat, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[TableStat, ...]:
        return self.tables

    def with_rows(self, rows: tuple[Any, ...]) -> TablesSnapshot:
        return replace(self, tables=rows)


@dataclass(frozen=True, slots=True)
class IndexesSnapshot:
    taken_at: datetime
    indexes: tuple[IndexStat, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[IndexStat, ...]:
        return self.indexes

    def with_rows(self, rows: tuple[Any, ...]) -> IndexesSnapshot:
        return replace(self, indexes=rows)


# --- database, activity, settings ----------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseStat:
    database: str
    numbackends: int
    xact_commit: int
    xact_rollback: int
    blks_read: int
    blks_hit: int
    tup_returned: int
    tup_fetched: int
    tup_inserted: int
    tup_updated: int
    tup_deleted: int
    conflicts: int
    temp_files: int
    temp_bytes: int
    deadlocks: int
    blk_read_ms: float
    blk_write_ms: float
    stats_reset: datetime | None
    size_bytes: int
    xid_age: int
    mxid_age: int


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    taken_at: datetime
    databases: tuple[DatabaseStat, ...]


@dataclass(frozen=True, slots=True)
class ActivityGroup:
    database: str
    state: str
    wait_event_type: str
    sessions: int
    oldest_xact_seconds: float
    longest_query_seconds: float
    longest_idle_in_xact_seconds: float


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    taken_at: datetime
    groups: tuple[ActivityGroup, ...]

    @property
    def total_sessions(self) -> int:
        return sum(g.sessions for g in self.groups)


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings in base units (bytes, seconds), as classification needs them."""

    max_connections: int
    reserved_connections: int  # superuser_reserved_connections + reserved_connections (16+)
    work_mem_bytes: int
    track_io_timing: bool
    autovacuum: bool
    autovacuum_vacuum_threshold: int
    autovacuum_vacuum_scale_factor: float
    autovacuum_analyze_threshold: int
    autovacuum_analyze_scale_factor: float
    autovacuum_freeze_max_age: int
    pgss_max: int | None
    idle_in_transaction_session_timeout_s: float
    raw: tuple[tuple[str, str, str], ...]  # (name, setting, unit) as read
    block_size: int = 8192  # bytes per block: pg_stat_statements counts blocks


@dataclass(frozen=True, slots=True)
class SettingsSnapshot:
    taken_at: datetime
    settings: Settings


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    taken_at: datetime
    databases: tuple[str, ...]  # discovered and selected for per-database collectors
