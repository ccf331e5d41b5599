"""What a server is doing: databases, sessions, settings, the databases selected.

Row types are frozen and slotted; their field names are the column names of
the SQL in ``agent/collect/sql`` (the driver builds them directly from the rows), so
renaming a field means renaming the column in every variant, which the
per-version integration test catches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    size_bytes: int | None  # filled from the sizes collector (fill_sizes)
    xid_age: int
    mxid_age: int
    # a start estimated for one pass (``check`` without a window): the deadlocks counter is taken
    # from zero since then, the database's stats_reset or the server start (not read from the server)
    deadlocks_since: datetime | None = None


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
    max_wal_size_bytes: int | None = None  # WAL kept between checkpoints: an inactive slot holding more is a warning
    parallel_leader_participation: bool = True  # the leader runs a share of a parallel plan's scan


@dataclass(frozen=True, slots=True)
class SettingsSnapshot:
    taken_at: datetime
    settings: Settings


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    taken_at: datetime
    databases: tuple[str, ...]  # discovered and selected for per-database collectors


@dataclass(frozen=True, slots=True)
class ConnectionGroup:
    database: str
    username: str
    application: str
    state: str
    connections: int


@dataclass(frozen=True, slots=True)
class SessionStat:
    """One session worth naming; its statement is known by queryid, never by text."""

    pid: int
    dbid: int
    database: str
    username: str
    application: str
    client_addr: str
    state: str
    wait_event_type: str
    wait_event: str
    xact_seconds: float | None
    query_seconds: float | None
    state_seconds: float | None
    queryid: int | None  # 14+, with compute_query_id on
    blocked_by: list[int]
    lock_relid: int | None  # the relation a blocked session waits on, where known

    @property
    def idle_in_transaction(self) -> bool:
        return self.state.startswith("idle in transaction")

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)


@dataclass(frozen=True, slots=True)
class RelationName:
    dbid: int
    relid: int
    schema: str
    relation: str


@dataclass(frozen=True, slots=True)
class SessionsSnapshot:
    taken_at: datetime
    connections: tuple[ConnectionGroup, ...]
    sessions: tuple[SessionStat, ...]
    relations: tuple[RelationName, ...] = ()  # names of the relations in lock_relid

    @property
    def total_connections(self) -> int:
        return sum(c.connections for c in self.connections)

    def relation(self, dbid: int, relid: int | None) -> RelationName | None:
        return next((r for r in self.relations if r.dbid == dbid and r.relid == relid), None)
