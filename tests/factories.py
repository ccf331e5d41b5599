"""Builders of snapshots for unit tests (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pgradar.agent.model.activity import (
    ConnectionGroup,
    DatabaseSnapshot,
    DatabaseStat,
    RelationName,
    SessionsSnapshot,
    SessionStat,
    Settings,
    SettingsSnapshot,
)
from pgradar.agent.model.bouncer import BouncerDatabase, BouncerSnapshot, PoolStat
from pgradar.agent.model.catalog import (
    ForeignKey,
    ForeignKeysSnapshot,
    IndexesSnapshot,
    IndexStat,
    TablesSnapshot,
    TableStat,
)
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.replication import ReceiverStat, ReplicationSnapshot, SlotStat, StandbyStat
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.snapshots import SnapshotHistory, Snapshots
from pgradar.agent.model.statements import (
    StatementDelta,
    StatementInterval,
    StatementsInfo,
    StatementsSnapshot,
    StatementStat,
)

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def text_cases(fixture: Path) -> list[tuple[str, list[str]]]:
    """Cases as data: blocks separated by a blank line, an input line then its expected lines; ``#`` lines
    are comments."""
    lines = [x for x in fixture.read_text().splitlines() if not x.startswith("#")]
    blocks = "\n".join(lines).strip().split("\n\n")
    return [(b.splitlines()[0], b.splitlines()[1:]) for b in blocks]


def stat(queryid: int, calls: int, exec_ms: float, rows: int = 0, userid: int = 10) -> StatementStat:
    return StatementStat(
        userid=userid,
        dbid=5,
        queryid=queryid,
        toplevel=True,
        database="app",
        username="u",
        calls=calls,
        total_exec_ms=exec_ms,
        total_plan_ms=0.0,
        max_exec_ms=1.0,
        rows=rows,
        shared_blks_hit=calls * 10,
        shared_blks_read=0,
        shared_blks_dirtied=0,
        shared_blks_written=0,
        temp_blks_read=0,
        temp_blks_written=0,
        blk_read_ms=0.0,
        blk_write_ms=0.0,
        wal_bytes=0.0,
    )


def snap(minutes: int, *rows: StatementStat, reset: datetime | None = None) -> StatementsSnapshot:
    info = StatementsInfo(0, reset) if reset is not None else None
    return StatementsSnapshot(T0 + timedelta(minutes=minutes), rows, info, 0)


# --- tables, indexes, foreign keys (classifier unit tests) ---------------------------------


def table(relation: str = "orders", rows: float = 100_000, schema: str = "public", **kw: object) -> TableStat:
    values: dict[str, object] = dict(
        database="app",
        relid=1000 + len(relation),
        schema=schema,
        relation=relation,
        relkind="r",
        reltuples=rows,
        size_bytes=int(rows * 100),
        seq_scan=0,
        seq_tup_read=0,
        idx_scan=1000,
        idx_tup_fetch=1000,
        n_tup_ins=int(rows),
        n_tup_upd=0,
        n_tup_del=0,
        n_tup_hot_upd=0,
        n_live_tup=int(rows),
        n_dead_tup=0,
        n_mod_since_analyze=0,
        n_ins_since_vacuum=0,
        last_vacuum=None,
        last_autovacuum=None,
        last_analyze=T0 - timedelta(hours=1),
        last_autoanalyze=None,
        vacuum_count=1,
        analyze_count=1,
        last_seq_scan=None,
        relfrozenxid=NEXT_XID - 1000,
        reloptions=[],
    )
    age = kw.pop("xid_age", None)
    if age is not None:  # relfrozenxid that far behind NEXT_XID, the base tables_snapshot gives every database
        assert isinstance(age, int)
        values["relfrozenxid"] = (NEXT_XID - age) % 2**32
    values.update(kw)
    return TableStat(**values)  # type: ignore[arg-type]


# The next transaction id of every database in tables_snapshot: a table's age counts from it.
NEXT_XID = 3_000_000_000


def tables_snapshot(rows: tuple[TableStat, ...], taken_at: datetime = T0) -> TablesSnapshot:
    """A tables snapshot whose databases all count xid ages from NEXT_XID."""
    return TablesSnapshot(taken_at, rows, next_xid=dict.fromkeys({r.database for r in rows}, NEXT_XID))


def index(name: str, columns: list[str | None], relation: str = "orders", **kw: object) -> IndexStat:
    cols = ", ".join(c or "lower(email)" for c in columns)
    unique = bool(kw.get("is_unique", False))
    values: dict[str, object] = dict(
        database="app",
        indexrelid=5000 + sum(map(ord, name)),
        relid=1000 + len(relation),
        schema="public",
        relation=relation,
        index=name,
        idx_scan=0,
        idx_tup_read=0,
        idx_tup_fetch=0,
        size_bytes=50 * 1024 * 1024,
        definition=f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON public.{relation} USING btree ({cols})",
        method="btree",
        is_unique=unique,
        is_primary=False,
        is_valid=True,
        key_count=len(columns),
        columns=columns,
        predicate=None,
        expressions=None,
        constraint_type=None,
        last_idx_scan=None,
    )
    values.update(kw)
    return IndexStat(**values)  # type: ignore[arg-type]


def foreign_key(columns: list[str], index_keys: list[str], rows: float = 100_000, **kw: object) -> ForeignKey:
    values: dict[str, object] = dict(
        database="app",
        constraint_oid=7000,
        schema="public",
        relation="order_lines",
        relkind="r",
        constraint_name="order_lines_order_id_fkey",
        columns=columns,
        referenced_schema="public",
        referenced_relation="orders",
        reltuples=rows,
        size_bytes=int(rows * 100),
        index_keys=index_keys,
    )
    values.update(kw)
    return ForeignKey(**values)  # type: ignore[arg-type]


def server(started_days_ago: float = 30, standby: bool = False) -> ServerInfo:
    return ServerInfo(170000, standby, started_at=T0 - timedelta(days=started_days_ago))


def database(name: str = "app", xid_age: int = 1000, stats_reset: datetime | None = None) -> DatabaseStat:
    return DatabaseStat(name, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, stats_reset, 1 << 30, xid_age, 10)


# --- replication, sessions, pools ---------------------------------------------------

MB = 1024.0 * 1024.0


def standby_row(
    name: str = "replica1", behind: float = 0.0, replay_lag: float | None = 0.01, write_behind: float = 0.0
) -> StandbyStat:
    return StandbyStat(
        pid=4242,
        standby=name,
        client_addr="10.0.0.2",
        state="streaming",
        sync_state="async",
        write_lag_seconds=0.001,
        flush_lag_seconds=0.002,
        replay_lag_seconds=replay_lag,
        sent_behind_bytes=0.0,
        write_behind_bytes=write_behind,
        flush_behind_bytes=write_behind,
        replay_behind_bytes=behind,
        replay_wal_bytes=1000 * MB - behind,
        reply_time=T0,
    )


def slot(
    name: str = "old_slot",
    active: bool = False,
    retained: float | None = 2048 * MB,
    wal_status: str = "extended",
    temporary: bool = False,
) -> SlotStat:
    return SlotStat(
        slot=name,
        slot_type="physical",
        database="",
        temporary=temporary,
        active=active,
        active_pid=None,
        retained_bytes=retained,
        wal_status=wal_status,
        safe_wal_size_bytes=None,
        inactive_since=None,
        invalidation_reason=None,
    )


def receiver(
    name: str = "replica1",
    received: float = 1000 * MB,
    replayed: float = 1000 * MB,
    primary: float | None = None,
    last_replay_ago: float | None = 5.0,
    pause_state: str = "not paused",
    status: str = "streaming",
) -> ReceiverStat:
    return ReceiverStat(
        standby_name=name,
        receiver_status=status,
        slot_name="",
        sender_host="db-0",
        sender_port=5432,
        receive_wal_bytes=received,
        replay_wal_bytes=replayed,
        primary_wal_bytes=received if primary is None else primary,
        last_msg_receipt_time=T0,
        last_replay_at=None if last_replay_ago is None else T0 - timedelta(seconds=last_replay_ago),
        pause_state=pause_state,
    )


def replication(
    *standbys: StandbyStat, slots: tuple[SlotStat, ...] = (), receiver_stat: ReceiverStat | None = None
) -> ReplicationSnapshot:
    return ReplicationSnapshot(T0, receiver_stat is not None, 1000 * MB, standbys, slots, receiver_stat)


def session(
    pid: int,
    state: str = "active",
    database: str = "app",
    query_s: float = 1.0,
    state_s: float | None = None,
    queryid: int | None = 77,
    blocked_by: tuple[int, ...] = (),
    lock_relid: int | None = None,
    user: str = "app_user",
) -> SessionStat:
    return SessionStat(
        pid=pid,
        dbid=5,
        database=database,
        username=user,
        application="shop",
        client_addr="10.0.0.9",
        state=state,
        wait_event_type="Lock" if blocked_by else "",
        wait_event="transactionid" if blocked_by else "",
        xact_seconds=query_s,
        query_seconds=query_s,
        state_seconds=query_s if state_s is None else state_s,
        queryid=queryid,
        blocked_by=list(blocked_by),
        lock_relid=lock_relid,
    )


def sessions(
    *rows: SessionStat, connections: tuple[ConnectionGroup, ...] = (), relations: tuple[RelationName, ...] = ()
) -> SessionsSnapshot:
    return SessionsSnapshot(T0, connections, rows, relations)


def settings(
    max_connections: int = 100,
    reserved: int = 3,
    idle_timeout_s: float = 0.0,
    max_wal_size: int | None = None,
    work_mem: int = 4 << 20,
    block_size: int = 8192,
) -> SettingsSnapshot:
    return SettingsSnapshot(
        T0,
        Settings(
            max_connections=max_connections,
            reserved_connections=reserved,
            work_mem_bytes=work_mem,
            track_io_timing=True,
            autovacuum=True,
            autovacuum_vacuum_threshold=50,
            autovacuum_vacuum_scale_factor=0.2,
            autovacuum_analyze_threshold=50,
            autovacuum_analyze_scale_factor=0.1,
            autovacuum_freeze_max_age=200_000_000,
            pgss_max=5000,
            idle_in_transaction_session_timeout_s=idle_timeout_s,
            raw=(),
            block_size=block_size,
            max_wal_size_bytes=max_wal_size,
        ),
    )


def pool(
    waiting: int = 0, maxwait: float = 0.0, database: str = "app", user: str = "shop", mode: str = "transaction"
) -> PoolStat:
    return PoolStat(
        database=database,
        user=user,
        cl_active=2,
        cl_waiting=waiting,
        sv_active=2,
        sv_idle=0,
        sv_used=0,
        sv_tested=0,
        sv_login=0,
        maxwait_seconds=maxwait,
        pool_mode=mode,
    )


def bouncer(*pools: PoolStat, pool_size: int = 2) -> BouncerSnapshot:
    entry = BouncerDatabase(
        name="app",
        host="127.0.0.1",
        port=5432,
        database="app",
        pool_size=pool_size,
        reserve_pool=0,
        pool_mode="transaction",
        max_connections=0,
        current_connections=2,
        paused=False,
        disabled=False,
    )
    return BouncerSnapshot(T0, pools, (entry,), (), (("default_pool_size", "20"), ("max_client_conn", "100")))


# --- statement classifiers: deltas, intervals and observations ----------------------


def delta(
    queryid: int,
    calls: int,
    exec_ms: float = 1.0,
    rows: int = 0,
    hit: int = 0,
    read: int = 0,
    temp_written: int = 0,
    database: str = "app",
    username: str = "u",
    dbid: int = 5,
    toplevel: bool = True,
) -> StatementDelta:
    return StatementDelta(
        userid=10,
        dbid=dbid,
        queryid=queryid,
        toplevel=toplevel,
        database=database,
        username=username,
        calls=calls,
        total_exec_ms=exec_ms,
        total_plan_ms=0.0,
        rows=rows,
        shared_blks_hit=hit,
        shared_blks_read=read,
        shared_blks_dirtied=0,
        shared_blks_written=0,
        temp_blks_read=temp_written,
        temp_blks_written=temp_written,
        blk_read_ms=0.0,
        blk_write_ms=0.0,
        wal_bytes=0.0,
    )


def interval(*deltas: StatementDelta, seconds: float = 60, start: datetime = T0) -> StatementInterval:
    return StatementInterval(start, start + timedelta(seconds=seconds), deltas, False)


def commits(seconds: float, **per_database: int) -> DatabaseSnapshot:
    """pg_stat_database at T0 + seconds, with xact_commit per database."""
    return DatabaseSnapshot(
        T0 + timedelta(seconds=seconds),
        tuple(
            DatabaseStat(
                database=name,
                numbackends=1,
                xact_commit=n,
                xact_rollback=0,
                blks_read=0,
                blks_hit=0,
                tup_returned=0,
                tup_fetched=0,
                tup_inserted=0,
                tup_updated=0,
                tup_deleted=0,
                conflicts=0,
                temp_files=0,
                temp_bytes=0,
                deadlocks=0,
                blk_read_ms=0.0,
                blk_write_ms=0.0,
                stats_reset=None,
                size_bytes=0,
                xid_age=0,
                mxid_age=0,
            )
            for name, n in per_database.items()
        ),
    )


# --- observations -------------------------------------------------------------------

PRIMARY = server()


def observation(
    *intervals: StatementInterval,
    target: str = "primary",
    now: datetime = T0,
    server_info: ServerInfo | None = PRIMARY,
    texts: dict[tuple[int, int], str] | None = None,
    peers: dict[str, Observation] | None = None,
    history: dict[str, tuple[Any, ...]] | None = None,
    tables: tuple[TableStat, ...] | None = None,
    indexes: tuple[IndexStat, ...] | None = None,
    foreign_keys: tuple[ForeignKey, ...] | None = None,
    databases: tuple[DatabaseStat, ...] | None = None,
    **snapshots: Any,
) -> Observation:
    """What a classifier sees at ``now``: the given snapshots, and no others.

    ``tables``, ``indexes``, ``foreign_keys`` and ``databases`` are rows, taken
    at T0; other snapshots go by collector name (``plans=``, ``settings=``).
    ``history`` holds every kept snapshot of a collector, oldest first; its
    last is the latest unless that is given too (then it goes after them).
    """
    rows = {
        "tables": None if tables is None else tables_snapshot(tables),
        "indexes": None if indexes is None else IndexesSnapshot(T0, indexes),
        "foreign_keys": None if foreign_keys is None else ForeignKeysSnapshot(T0, foreign_keys),
        "database": None if databases is None else DatabaseSnapshot(T0, databases),
    }
    latest = {name: snap for name, snap in {**rows, **snapshots}.items() if snap is not None}
    kept = {name: (*(history or {}).get(name, ()), snap) for name, snap in latest.items()}
    for name, earlier in (history or {}).items():
        if name not in latest and earlier:
            kept[name], latest[name] = earlier, earlier[-1]
    return Observation(
        target,
        now,
        server_info,
        Snapshots(**latest),
        SnapshotHistory(**kept),
        intervals,
        texts or {},
        peers or {},
    )
