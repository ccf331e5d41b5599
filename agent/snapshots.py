"""Typed, timestamped snapshots: what one collector saw at one moment.

Row types are frozen and slotted; their field names are the column names of
the SQL in ``agent/sql`` (the driver builds them directly from the rows), so
renaming a field means renaming the column in every variant, which the
per-version integration test catches.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

# --- statements ---------------------------------------------------------------


R = TypeVar("R")


_SCOPE: ContextVar[str] = ContextVar("pgradar_snapshot_scope", default="")
# Entries kept per function and target: a statements frame is derived from the latest snapshot and
# the one before (2); the rankings and groups from the latest (1). Each entry keeps its snapshots
# and its result (a pandas frame) alive, for every target (docs/fleet.md).
PER_SCOPE = 2


@contextmanager
def snapshot_scope(target: str) -> Iterator[None]:
    """Derivations inside run in ``target``'s own cache slots (see ``per_snapshot``).

    One process watches many targets: with one small cache shared by all,
    the targets evicted each other's entries and with more than four of them
    nothing was ever reused (the fleet benchmark, docs/fleet.md). The
    runtime, the classification and the exporter enter the scope of the
    target whose snapshots they derive from.
    """
    token = _SCOPE.set(target)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def per_snapshot(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` of snapshots' rows, computed once per combination of snapshots.

    Snapshots are frozen and replaced, never changed, so a rows tuple's
    identity is its version: classification runs every 15 s and /metrics is
    rendered after every job, over tables and indexes polled every minute or
    five, and deriving 8,000 indexes' groups or ranking 2,600 tables each
    time was most of their cost. Each target (``snapshot_scope``) has its own
    last few arguments (kept alive, which keeps their ids unique), so the
    memory held is bounded by the targets' own history, and one target's
    polls never evict another's. ``derivations`` counts the calls of ``fn``.
    """
    caches: dict[str, dict[tuple[int, ...], tuple[tuple[Any, ...], R]]] = {}
    lock = threading.Lock()

    @functools.wraps(fn)
    def cached(*rows: Any) -> R:
        key = tuple(id(r) for r in rows)
        scope = _SCOPE.get()
        with lock:
            cache = caches.setdefault(scope, {})
            hit = cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], rows, strict=True)):
            return hit[1]
        result = fn(*rows)
        with lock:
            cached.derivations += 1  # type: ignore[attr-defined]
            if len(cache) >= PER_SCOPE:
                cache.pop(next(iter(cache)))
            cache[key] = (rows, result)
        return result

    cached.derivations = 0  # type: ignore[attr-defined]
    return cached


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
    column_count: int = 0  # live columns (select_star: is the table wide?), from the sizes collector

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
    # For an index of a partition attached to a partitioned index: the
    # partitioned index and table at the top of the tree (one index to the user).
    root_schema: str | None = None
    root_relation: str | None = None
    root_index: str | None = None
    # format_type() of each entry of ``columns`` (None for an expression):
    # which casts of a column are no-ops, what type a rewritten predicate takes
    column_types: tuple[str | None, ...] | list[str | None] = ()

    @property
    def keys(self) -> tuple[str | None, ...]:
        """The key columns (None for an expression), without INCLUDE columns."""
        return tuple(self.columns[: self.key_count])


@dataclass(frozen=True, slots=True)
class IndexCounters:
    """What an index poll reads every time (indexes/counters), with the stamp of its catalog rows."""

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
    last_idx_scan: datetime | None
    stamp: str


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """The catalog side of an index (indexes/definitions), read again only when its stamp changes."""

    indexrelid: int
    definition: str
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    key_count: int
    columns: list[str | None]
    predicate: str | None
    expressions: str | None
    constraint_type: str | None
    root_schema: str | None
    root_relation: str | None
    root_index: str | None
    column_types: tuple[str | None, ...] | list[str | None]


def index_stat(c: IndexCounters, d: IndexDefinition) -> IndexStat:
    """One index's row from this poll's counters and its (possibly earlier) definition."""
    return IndexStat(
        c.database,
        c.indexrelid,
        c.relid,
        c.schema,
        c.relation,
        c.index,
        c.idx_scan,
        c.idx_tup_read,
        c.idx_tup_fetch,
        c.size_bytes,
        d.definition,
        d.method,
        d.is_unique,
        d.is_primary,
        d.is_valid,
        d.key_count,
        d.columns,
        d.predicate,
        d.expressions,
        d.constraint_type,
        c.last_idx_scan,
        d.root_schema,
        d.root_relation,
        d.root_index,
        d.column_types,
    )


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
class TableSize:
    database: str
    relid: int
    size_bytes: int | None
    column_count: int


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    database: str
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class SizesSnapshot:
    """On-disk sizes, collected apart from the counters and less often (each is a file-system call)."""

    taken_at: datetime
    tables: tuple[TableSize, ...]
    databases: tuple[DatabaseSize, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[TableSize, ...]:
        return self.tables

    def with_rows(self, rows: tuple[Any, ...]) -> SizesSnapshot:
        return replace(self, tables=rows)


def fill_sizes(snapshot: Any, sizes: SizesSnapshot | None) -> Any:
    """A tables or database snapshot with the sizes (and column counts) of the latest sizes snapshot filled in."""
    if sizes is None:
        return snapshot
    if isinstance(snapshot, TablesSnapshot):
        by_table = {(z.database, z.relid): z for z in sizes.tables}
        return replace(
            snapshot,
            tables=tuple(
                replace(t, size_bytes=z.size_bytes, column_count=z.column_count)
                if (z := by_table.get((t.database, t.relid))) is not None
                else t
                for t in snapshot.tables
            ),
        )
    if isinstance(snapshot, DatabaseSnapshot):
        by_name = {z.database: z.size_bytes for z in sizes.databases}
        return replace(
            snapshot,
            databases=tuple(replace(d, size_bytes=by_name.get(d.database, d.size_bytes)) for d in snapshot.databases),
        )
    return snapshot


@dataclass(frozen=True, slots=True)
class IndexesSnapshot:
    taken_at: datetime
    indexes: tuple[IndexStat, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[IndexStat, ...]:
        return self.indexes

    def with_rows(self, rows: tuple[Any, ...]) -> IndexesSnapshot:
        return replace(self, indexes=rows)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    database: str
    constraint_oid: int
    schema: str
    relation: str
    relkind: str  # 'p' for a partitioned table
    constraint_name: str
    columns: list[str]
    referenced_schema: str
    referenced_relation: str
    reltuples: float  # of the referencing table (summed over partitions)
    size_bytes: int
    index_keys: list[str]  # each non-partial index's key columns, comma-joined ('' for an expression)


@dataclass(frozen=True, slots=True)
class ForeignKeysSnapshot:
    taken_at: datetime
    foreign_keys: tuple[ForeignKey, ...]
    failed_databases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IndexFirstSeen:
    """When the agent first saw each index; None for those present at its first look.

    PostgreSQL keeps no creation time for an index, so an index that appears
    while the agent watches is dated by the agent; one there from the start
    is as old as the statistics window at least.
    """

    taken_at: datetime
    first_seen: tuple[tuple[tuple[str, int], datetime | None], ...]  # ((database, indexrelid), when)
    source: str = "index first seen by pgradar"  # what the times are (check --baseline: the baseline's)

    def of(self, database: str, indexrelid: int) -> datetime | None:
        return _first_seen_by_index(self.first_seen).get((database, indexrelid))


@per_snapshot  # asked once per index by the unused_index rule: a dict per call made that quadratic
def _first_seen_by_index(
    first_seen: tuple[tuple[tuple[str, int], datetime | None], ...],
) -> dict[tuple[str, int], datetime | None]:
    return dict(first_seen)


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
    size_bytes: int | None  # filled from the sizes collector (fill_sizes)
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


# --- replication ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StandbyStat:
    """One row of pg_stat_replication: a standby as its sender sees it."""

    pid: int
    standby: str  # application_name (the standby's name), else its address
    client_addr: str
    state: str
    sync_state: str
    write_lag_seconds: float | None
    flush_lag_seconds: float | None
    replay_lag_seconds: float | None
    sent_behind_bytes: float | None
    write_behind_bytes: float | None
    flush_behind_bytes: float | None
    replay_behind_bytes: float | None
    replay_wal_bytes: float | None
    reply_time: datetime | None


@dataclass(frozen=True, slots=True)
class SlotStat:
    slot: str
    slot_type: str
    database: str
    temporary: bool
    active: bool
    active_pid: int | None
    retained_bytes: float | None  # None when the slot never reserved WAL
    wal_status: str  # reserved, extended, unreserved, lost ('' when no WAL reserved)
    safe_wal_size_bytes: float | None
    inactive_since: datetime | None  # 17+
    invalidation_reason: str | None  # 17+


@dataclass(frozen=True, slots=True)
class ReceiverStat:
    """A standby's own view: WAL received, replayed, and whether replay is paused."""

    standby_name: str  # the application_name its WAL receiver gives the primary
    receiver_status: str  # '' when no WAL receiver runs
    slot_name: str
    sender_host: str
    sender_port: int | None
    receive_wal_bytes: float | None
    replay_wal_bytes: float | None
    primary_wal_bytes: float | None  # the sender's WAL end at its last message
    last_msg_receipt_time: datetime | None
    last_replay_at: datetime | None
    pause_state: str  # 'not paused', 'pause requested' (14+) or 'paused'

    @property
    def paused(self) -> bool:
        return self.pause_state != "not paused"

    @property
    def replay_behind_bytes(self) -> float:
        """WAL received but not replayed yet."""
        if self.receive_wal_bytes is None or self.replay_wal_bytes is None:
            return 0.0
        return max(0.0, self.receive_wal_bytes - self.replay_wal_bytes)


@dataclass(frozen=True, slots=True)
class ReplicationSnapshot:
    taken_at: datetime
    in_recovery: bool
    wal_bytes: float  # this server's WAL position (a standby: the last received)
    standbys: tuple[StandbyStat, ...]
    slots: tuple[SlotStat, ...]
    receiver: ReceiverStat | None  # only on a standby


# --- sessions -----------------------------------------------------------------------


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


# --- pgbouncer ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolStat:
    """SHOW POOLS: one pool (database, user) of a pgbouncer."""

    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_tested: int
    sv_login: int
    maxwait_seconds: float
    pool_mode: str

    @property
    def name(self) -> str:
        return f"{self.database}/{self.user}"

    @property
    def servers(self) -> int:
        return self.sv_active + self.sv_idle + self.sv_used + self.sv_tested + self.sv_login


@dataclass(frozen=True, slots=True)
class BouncerDatabase:
    """SHOW DATABASES: the pool limits of one pgbouncer database entry."""

    name: str
    host: str
    port: int | None
    database: str  # the server's database it points at
    pool_size: int
    reserve_pool: int
    pool_mode: str
    max_connections: int  # max_db_connections for this entry; 0 is unlimited
    current_connections: int
    paused: bool
    disabled: bool


@dataclass(frozen=True, slots=True)
class BouncerStat:
    """SHOW STATS: totals per database since pgbouncer started."""

    database: str
    transactions: int
    queries: int
    received_bytes: int
    sent_bytes: int
    xact_seconds: float
    query_seconds: float
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class BouncerSnapshot:
    taken_at: datetime
    pools: tuple[PoolStat, ...]
    databases: tuple[BouncerDatabase, ...]
    stats: tuple[BouncerStat, ...]
    config: tuple[tuple[str, str], ...]  # SHOW CONFIG (key, value)

    def setting(self, key: str) -> str | None:
        return next((v for k, v in self.config if k == key), None)

    def database(self, name: str) -> BouncerDatabase | None:
        return next((d for d in self.databases if d.name == name), None)
