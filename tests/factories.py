"""Builders of snapshots for unit tests (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pgradar.agent.observation import Observation
from pgradar.agent.server import ServerInfo
from pgradar.agent.snapshots import (
    DatabaseSnapshot,
    DatabaseStat,
    ForeignKey,
    ForeignKeysSnapshot,
    IndexesSnapshot,
    IndexStat,
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


# --- tables, indexes, foreign keys (classifier unit tests) ---------------------------------


def table(relation: str = "orders", rows: float = 100_000, schema: str = "public", **kw: object) -> TableStat:
    values: dict[str, object] = dict(
        database="app", relid=1000 + len(relation), schema=schema, relation=relation, relkind="r", reltuples=rows,
        size_bytes=int(rows * 100), total_size_bytes=int(rows * 150), seq_scan=0, seq_tup_read=0, idx_scan=1000,
        idx_tup_fetch=1000, n_tup_ins=int(rows), n_tup_upd=0, n_tup_del=0, n_tup_hot_upd=0, n_live_tup=int(rows),
        n_dead_tup=0, n_mod_since_analyze=0, n_ins_since_vacuum=0, last_vacuum=None, last_autovacuum=None,
        last_analyze=T0 - timedelta(hours=1), last_autoanalyze=None, vacuum_count=1, analyze_count=1,
        last_seq_scan=None, xid_age=1000, reloptions=[])
    values.update(kw)
    return TableStat(**values)  # type: ignore[arg-type]


def index(name: str, columns: list[str | None], relation: str = "orders", **kw: object) -> IndexStat:
    cols = ", ".join(c or "lower(email)" for c in columns)
    unique = bool(kw.get("is_unique", False))
    values: dict[str, object] = dict(
        database="app", indexrelid=5000 + sum(map(ord, name)), relid=1000 + len(relation), schema="public",
        relation=relation, index=name, idx_scan=0, idx_tup_read=0, idx_tup_fetch=0, size_bytes=50 * 1024 * 1024,
        definition=f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON public.{relation} USING btree ({cols})",
        method="btree", is_unique=unique, is_primary=False, is_valid=True, key_count=len(columns), columns=columns,
        predicate=None, expressions=None, constraint_type=None, last_idx_scan=None)
    values.update(kw)
    return IndexStat(**values)  # type: ignore[arg-type]


def foreign_key(columns: list[str], index_keys: list[str], rows: float = 100_000, **kw: object) -> ForeignKey:
    values: dict[str, object] = dict(
        database="app", constraint_oid=7000, schema="public", relation="order_lines", relkind="r",
        constraint_name="order_lines_order_id_fkey", columns=columns, referenced_schema="public",
        referenced_relation="orders", reltuples=rows, size_bytes=int(rows * 100), index_keys=index_keys)
    values.update(kw)
    return ForeignKey(**values)  # type: ignore[arg-type]


def server(started_days_ago: float = 30, standby: bool = False) -> ServerInfo:
    return ServerInfo(170000, standby, started_at=T0 - timedelta(days=started_days_ago))


def observation(*, tables: tuple[TableStat, ...] = (), indexes: tuple[IndexStat, ...] = (),
                foreign_keys: tuple[ForeignKey, ...] = (), databases: tuple[DatabaseStat, ...] = (),
                settings: Settings | None = None, server_info: ServerInfo | None = None,
                extra: dict[str, object] | None = None, target: str = "primary") -> Observation:
    snaps: dict[str, object] = {"tables": TablesSnapshot(T0, tables), "indexes": IndexesSnapshot(T0, indexes),
                                "foreign_keys": ForeignKeysSnapshot(T0, foreign_keys),
                                "database": DatabaseSnapshot(T0, databases)}
    if settings is not None:
        snaps["settings"] = SettingsSnapshot(T0, settings)
    snaps.update(extra or {})
    return Observation(target, T0, server_info or server(), snaps,
                       {k: (v,) for k, v in snaps.items()})


def database(name: str = "app", xid_age: int = 1000, stats_reset: datetime | None = None) -> DatabaseStat:
    return DatabaseStat(name, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, stats_reset, 1 << 30,
                        xid_age, 10)
