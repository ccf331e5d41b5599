"""Collectors: one function per statistics source, each returning a snapshot.

A collector reads; it keeps no state and decides nothing. It receives a
context that hands out sessions (one per database) and the server's
capabilities, and it picks its SQL through ``collect.queries``. A missing
extension or privilege raises ``CollectorUnavailable`` with the fix in its
message; the runtime switches that collector off and keeps the others going.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import DatabaseError, QueryFailed, Session
from pgradar.agent.model.activity import (
    ActivityGroup,
    ActivitySnapshot,
    ConnectionGroup,
    DatabaseSnapshot,
    DatabaseStat,
    RelationName,
    ServerSnapshot,
    SessionsSnapshot,
    SessionStat,
    Settings,
    SettingsSnapshot,
)
from pgradar.agent.model.catalog import (
    DatabaseSize,
    ForeignKey,
    ForeignKeyCounters,
    ForeignKeyDefinition,
    ForeignKeysSnapshot,
    IndexBytes,
    IndexCounters,
    IndexDefinition,
    IndexesSnapshot,
    IndexStat,
    SizesSnapshot,
    TableBytes,
    TableSize,
    TableSizeStamp,
    TablesSnapshot,
    TableStat,
    foreign_key,
    index_stat,
)
from pgradar.agent.model.replication import ReceiverStat, ReplicationSnapshot, SlotStat, StandbyStat
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import (
    StatementKey,
    StatementsInfo,
    StatementsSnapshot,
    StatementStat,
    StatementText,
)


class CollectorUnavailable(Exception):
    """The collector cannot run on this server as configured.

    ``reason`` says what is missing and ``fix`` what to run or change: ``check``
    lists both per target (``targets[i].disabled``), ``run`` logs them once.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(f"{reason}: {fix}" if fix else reason)
        self.reason = reason
        self.fix = fix


class CollectContext(Protocol):
    server: ServerInfo
    databases: tuple[str, ...]
    now: datetime
    statement_texts: Mapping[tuple[int, int], str]

    def session(self, database: str | None = None) -> Session: ...

    def database_failed(self, database: str, error: Exception) -> None: ...

    def catalog_cache(self, collector: str, database: str) -> dict[Any, Any]:
        """What ``collector`` read of ``database``'s catalog last time; the collector keeps it current."""
        ...


def _q(collector: str, name: str, server: ServerInfo) -> queries.Query:
    return queries.resolve(collector, name, server.major)


# --- statements ----------------------------------------------------------------


def pgss_unavailable(server: ServerInfo, database: str) -> tuple[str, str] | None:
    """Why pg_stat_statements cannot be read and the fix, apart; None when it can."""
    if not server.pgss_preloaded:
        return (
            "pg_stat_statements is not in shared_preload_libraries",
            "add it to shared_preload_libraries (restart needed), then run CREATE EXTENSION "
            f"pg_stat_statements; in database {database}",
        )
    if server.pgss_schema is None:
        return (
            f"pg_stat_statements is loaded but the extension is not created in database {database}",
            "CREATE EXTENSION pg_stat_statements;",
        )
    return None


def collect_statements(ctx: CollectContext) -> StatementsSnapshot:
    session = ctx.session()
    unavailable = pgss_unavailable(ctx.server, session.dbname)
    if unavailable:
        raise CollectorUnavailable(*unavailable)
    schema = str(ctx.server.pgss_schema)
    known: dict[StatementKey, StatementStat] = ctx.catalog_cache("statements", session.dbname)
    try:
        if known:
            rows = _read_changed_statements(ctx, session, schema, known)
        else:
            every = {"queryids": None}
            rows = session.rows(_q("statements", "pgss", ctx.server), StatementStat, every, binary=True, pgss=schema)
    except QueryFailed as exc:
        if exc.denied:
            raise CollectorUnavailable(
                f"cannot read pg_stat_statements ({exc})", f"GRANT pg_monitor TO {session.user};"
            ) from None
        raise
    known.clear()
    known.update((_STATEMENT_KEY(r), r) for r in rows)
    info = None
    if ctx.server.has_pgss_toplevel:
        info = session.rows(_q("statements", "info", ctx.server), StatementsInfo, pgss=schema)[0]
    return StatementsSnapshot(ctx.now, tuple(rows), info, new_texts=0)


_STATEMENT_KEY = attrgetter("userid", "dbid", "queryid", "toplevel")
_STAMP = attrgetter("calls", "total_exec_ms", "total_plan_ms")  # statements/stamps' columns after the key


def changed_queryids(stamps: Sequence[tuple[Any, ...]], known: Mapping[StatementKey, StatementStat]) -> list[int]:
    """The queryids of the entries that are new, or ran or were planned, since ``known`` was read."""
    return sorted({s[2] for s in stamps if (row := known.get(s[:4])) is None or _STAMP(row) != s[4:]})


def _read_changed_statements(
    ctx: CollectContext, session: Session, schema: str, known: Mapping[StatementKey, StatementStat]
) -> list[StatementStat]:
    """Every entry of pg_stat_statements, the full row read only where its stamp changed.

    An unchanged entry is the row held from the last poll; one that changed
    but is gone by the second read (evicted in between) is left out, as a full
    read a moment later would have; one that appeared in between is taken.
    """
    stamps = session.tuples(_q("statements", "stamps", ctx.server), binary=True, pgss=schema)
    queryids = changed_queryids(stamps, known)
    if not queryids:
        return [known[s[:4]] for s in stamps]  # nothing ran: every entry is the one held
    # binary, as the stamps: a float compared between the two reads is the same bits whatever extra_float_digits says
    query = _q("statements", "pgss", ctx.server)
    found = session.rows(query, StatementStat, {"queryids": queryids}, binary=True, pgss=schema)
    fresh = {_STATEMENT_KEY(r): r for r in found}
    changed = set(queryids)
    rows = []
    for stamp in stamps:
        key = stamp[:4]
        row = fresh.pop(key, None)
        if (
            row is None
            and (held := known.get(key)) is not None
            and (stamp[2] not in changed or _STAMP(held) == stamp[4:])
        ):
            row = held
        if row is not None:
            rows.append(row)
    rows.extend(fresh.values())
    return rows


def fetch_new_texts(ctx: CollectContext, present: Iterable[tuple[int, int]]) -> list[StatementText]:
    """Texts of the (dbid, queryid) pairs in ``present`` not seen before; known ones never cross the wire again."""
    known = ctx.statement_texts
    wanted = sorted(pair for pair in present if pair not in known)
    if not wanted:
        return []
    dbids, queryids = zip(*wanted, strict=True)
    return ctx.session().rows(
        _q("statements", "texts", ctx.server),
        StatementText,
        {"dbids": list(dbids), "queryids": list(queryids)},
        pgss=str(ctx.server.pgss_schema),
    )


# --- per-database: tables and indexes ---------------------------------------------


def each_database(ctx: CollectContext, fetch: Callable[[Session], list[Any]]) -> tuple[list[Any], list[str]]:
    """Run ``fetch`` in every selected database; one failing database skips only itself."""
    found: list[Any] = []
    failed: list[str] = []
    for database in ctx.databases:
        try:
            found.extend(fetch(ctx.session(database)))
        except DatabaseError as exc:  # a dropped, locked or refusing database must not hide the others
            failed.append(database)
            ctx.database_failed(database, exc)
    if failed and len(failed) == len(ctx.databases):
        raise QueryFailed(f"every database failed: {', '.join(failed)}")
    return found, failed


V = TypeVar("V")


def to_read_again(stamps: Mapping[int, str | None], known: Mapping[int, tuple[str | None, Any]]) -> list[int]:
    """The objects whose catalog side may have changed since it was read: new ones, a new stamp, or no stamp.

    A None stamp is the server saying it cannot vouch for the value (a size
    on a standby, where replayed writes move no counter; track_counts off):
    read every time.
    """
    return [oid for oid, stamp in stamps.items() if stamp is None or (k := known.get(oid)) is None or k[0] != stamp]


def following_change(
    known: dict[int, tuple[str | None, V]],
    stamps: Mapping[int, str | None],
    read: Callable[[list[int]], Iterable[tuple[int, V]]],
) -> dict[int, V]:
    """The value (a definition, a size) of every object in ``stamps``: read where it may have changed, else kept.

    Each value is stored with the stamp read before it, so a change that lands
    between the two reads makes the next stamp differ and the value is read
    again: a value is never kept past a change the stamp shows. An object
    dropped between the reads is not returned; it keeps no value (or its old
    one with its old stamp) and is asked again next time. ``known`` (the
    target's cache) forgets objects no longer in ``stamps`` at once.
    """
    wanted = to_read_again(stamps, known)
    if wanted:
        for oid, value in read(wanted):
            known[oid] = (stamps[oid], value)
    for gone in [oid for oid in known if oid not in stamps]:
        del known[gone]
    return {oid: k[1] for oid in stamps if (k := known.get(oid)) is not None}


def collect_tables(ctx: CollectContext) -> TablesSnapshot:
    """pg_stat_user_tables of every database; a table whose row is as it was keeps the last poll's object.

    Most tables are idle between two polls. Their raw rows are compared
    before any is built, as the statements poll does: an idle table costs a
    tuple comparison, keeps its object (and its sized copy, ``fill_sizes``)
    and is held once however many polls the history keeps. The row's last
    column, the transaction id its xid age counts from, moves with every
    transaction in the cluster and is kept per database instead.
    """
    return _read_tables(ctx, lambda database: ctx.catalog_cache("tables", database))


def _read_tables(
    ctx: CollectContext, held_in: Callable[[str], dict[int, tuple[tuple[Any, ...], TableStat]]]
) -> TablesSnapshot:
    """The tables of every database; ``held_in(database)`` holds the last rows by relid, raw and built."""
    query = _q("tables", "tables", ctx.server)
    next_xid: dict[str, int] = {}

    def fetch(session: Session) -> list[TableStat]:
        held = held_in(session.dbname)
        rows, now_held = [], {}
        for raw in session.tuples(query):
            values, base = raw[:-1], raw[-1]
            kept = held.get(values[1])
            row = kept[1] if kept is not None and kept[0] == values else TableStat(*values)
            rows.append(row)
            now_held[row.relid] = (values, row)
            next_xid[row.database] = base
        held.clear()
        held.update(now_held)
        return rows

    rows, failed = each_database(ctx, fetch)
    return TablesSnapshot(ctx.now, tuple(rows), tuple(failed), next_xid)


def collect_indexes(ctx: CollectContext) -> IndexesSnapshot:
    """Every user index: counters each poll, definitions and sizes only for indexes new or changed since the last.

    The definitions (pg_get_indexdef, key columns and their types, the
    constraint, the partition root) were most of the poll's database time
    and change rarely; indexes/counters reads a stamp of the catalog rows
    they come from, and indexes/definitions is asked only for the indexes
    whose stamp is new. The size is a file-system call per index, and on a
    backend's first poll a relation cache entry built per index: the counters
    read a stamp of what can change it (see indexes/counters), and
    indexes/sizes is asked only where that is new. An index dropped is gone
    from the counters, and so from the snapshot and the caches, at once.
    tests/integration/test_catalog_changes.py and test_size_changes.py check
    the result against a full read (indexes/indexes) through DDL and writes.
    """
    counters_query = _q("indexes", "counters", ctx.server)
    definitions_query = _q("indexes", "definitions", ctx.server)
    sizes_query = _q("indexes", "sizes", ctx.server)

    def fetch(session: Session) -> list[IndexStat]:
        counters = session.rows(counters_query, IndexCounters)

        def read_definitions(oids: list[int]) -> Iterable[tuple[int, IndexDefinition]]:
            return ((d.indexrelid, d) for d in session.rows(definitions_query, IndexDefinition, {"indexrelids": oids}))

        def read_sizes(oids: list[int]) -> Iterable[tuple[int, int | None]]:
            return ((z.indexrelid, z.size_bytes) for z in session.rows(sizes_query, IndexBytes, {"indexrelids": oids}))

        definitions = following_change(
            ctx.catalog_cache("indexes", session.dbname), {c.indexrelid: c.stamp for c in counters}, read_definitions
        )
        sizes = following_change(
            ctx.catalog_cache("index_sizes", session.dbname), {c.indexrelid: c.size_stamp for c in counters}, read_sizes
        )
        return [
            index_stat(c, d, sizes.get(c.indexrelid))
            for c in counters
            if (d := definitions.get(c.indexrelid)) is not None
        ]

    rows, failed = each_database(ctx, fetch)
    return IndexesSnapshot(ctx.now, tuple(rows), tuple(failed))


def collect_foreign_keys(ctx: CollectContext) -> ForeignKeysSnapshot:
    """Every foreign key: table counters each poll, definitions only for keys new or changed since the last.

    The definitions (names, key columns, the key columns of every index on
    the referencing table) change rarely but were read in full in every
    database every poll; foreign_keys/counters reads reltuples and size,
    which move, with a stamp of the catalog rows the definition comes from,
    and foreign_keys/definitions is asked only for the keys whose stamp is
    new. A key dropped (or its table) is gone from the counters, and so from
    the snapshot and the cache, at once. tests/integration/test_catalog_changes.py
    checks the result against a full read (foreign_keys/foreign_keys) through DDL.
    """
    counters_query = _q("foreign_keys", "counters", ctx.server)
    definitions_query = _q("foreign_keys", "definitions", ctx.server)

    def fetch(session: Session) -> list[ForeignKey]:
        counters = session.rows(counters_query, ForeignKeyCounters)

        def read_definitions(oids: list[int]) -> Iterable[tuple[int, ForeignKeyDefinition]]:
            rows = session.rows(definitions_query, ForeignKeyDefinition, {"constraint_oids": oids})
            return ((d.constraint_oid, d) for d in rows)

        definitions = following_change(
            ctx.catalog_cache("foreign_keys", session.dbname),
            {c.constraint_oid: c.stamp for c in counters},
            read_definitions,
        )
        return [foreign_key(c, d) for c in counters if (d := definitions.get(c.constraint_oid)) is not None]

    rows, failed = each_database(ctx, fetch)
    return ForeignKeysSnapshot(ctx.now, tuple(rows), tuple(failed))


# --- server-wide ------------------------------------------------------------------


def collect_sizes(ctx: CollectContext) -> SizesSnapshot:
    """Table sizes read only where they may have changed; database sizes once an hour.

    pg_table_size opens the table, its TOAST table and TOAST index (a
    relation cache entry each on a backend's first poll) and asks the file
    system per fork: sizes/table_stamps reads, without opening anything, a
    stamp of what can change those files (sizes/table_stamps says what and
    why), and sizes/table_sizes reads the size of the tables whose stamp is
    new. tests/integration/test_size_changes.py checks the result against a
    full read (sizes/tables) through writes and DDL.
    """
    stamps_query = _q("sizes", "table_stamps", ctx.server)
    sizes_query = _q("sizes", "table_sizes", ctx.server)

    def fetch(session: Session) -> list[TableSize]:
        stamps = session.rows(stamps_query, TableSizeStamp)

        def read_sizes(relids: list[int]) -> Iterable[tuple[int, int | None]]:
            return ((z.relid, z.size_bytes) for z in session.rows(sizes_query, TableBytes, {"relids": relids}))

        sizes = following_change(
            ctx.catalog_cache("table_sizes", session.dbname), {s.relid: s.stamp for s in stamps}, read_sizes
        )
        return [TableSize(s.database, s.relid, sizes.get(s.relid), s.column_count) for s in stamps]

    tables, failed = each_database(ctx, fetch)
    return SizesSnapshot(ctx.now, tuple(tables), database_sizes(ctx), tuple(failed))


# A database's size is read again once the one kept is this old: it moves slowly, and
# pg_database_size stats every file of the database.
DATABASE_SIZE_EVERY = timedelta(hours=1)
SERVER_WIDE = ""  # catalog_cache's database for what is kept of the server as a whole


def database_sizes(ctx: CollectContext) -> tuple[DatabaseSize, ...]:
    """Every database's size: read where the kept one is older than DATABASE_SIZE_EVERY, else the kept one."""
    kept: dict[str, tuple[datetime, int | None]] = ctx.catalog_cache("database_sizes", SERVER_WIDE)
    fresh = sorted(name for name, (read_at, _) in kept.items() if ctx.now - read_at < DATABASE_SIZE_EVERY)
    rows = ctx.session().rows(_q("sizes", "databases", ctx.server), DatabaseSize, {"fresh": fresh})
    out = []
    for row in rows:
        if row.database in fresh:
            out.append(DatabaseSize(row.database, kept[row.database][1]))
        else:
            kept[row.database] = (ctx.now, row.size_bytes)
            out.append(row)
    for gone in set(kept) - {r.database for r in rows}:
        del kept[gone]
    return tuple(out)


def collect_database(ctx: CollectContext) -> DatabaseSnapshot:
    rows = ctx.session().rows(_q("database", "database", ctx.server), DatabaseStat)
    return DatabaseSnapshot(ctx.now, tuple(rows))


def collect_activity(ctx: CollectContext) -> ActivitySnapshot:
    rows = ctx.session().rows(_q("activity", "summary", ctx.server), ActivityGroup)
    return ActivitySnapshot(ctx.now, tuple(rows))


_UNIT_FACTORS = {
    "": 1.0,
    "B": 1.0,
    "kB": 1024.0,
    "8kB": 8192.0,
    "MB": 1024.0**2,
    "GB": 1024.0**3,
    "ms": 0.001,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def setting_in_base_units(setting: str, unit: str) -> float:
    """pg_settings values in bytes or seconds ('4096' with unit '8kB' is 32 MiB)."""
    return float(setting) * _UNIT_FACTORS[unit]


def parse_settings(raw: list[tuple[str, str, str]]) -> Settings:
    values = {name: (setting, unit) for name, setting, unit in raw}

    def num(name: str, default: float = 0.0) -> float:
        if name not in values:
            return default
        return setting_in_base_units(*values[name])

    return Settings(
        max_connections=int(num("max_connections")),
        reserved_connections=int(num("superuser_reserved_connections") + num("reserved_connections")),
        work_mem_bytes=int(num("work_mem")),
        track_io_timing=values.get("track_io_timing", ("off", ""))[0] == "on",
        autovacuum=values.get("autovacuum", ("on", ""))[0] == "on",
        autovacuum_vacuum_threshold=int(num("autovacuum_vacuum_threshold", 50)),
        autovacuum_vacuum_scale_factor=num("autovacuum_vacuum_scale_factor", 0.2),
        autovacuum_analyze_threshold=int(num("autovacuum_analyze_threshold", 50)),
        autovacuum_analyze_scale_factor=num("autovacuum_analyze_scale_factor", 0.1),
        autovacuum_freeze_max_age=int(num("autovacuum_freeze_max_age", 200_000_000)),
        pgss_max=int(num("pg_stat_statements.max")) if "pg_stat_statements.max" in values else None,
        idle_in_transaction_session_timeout_s=num("idle_in_transaction_session_timeout"),
        raw=tuple(sorted(raw)),
        block_size=int(num("block_size", 8192)),
        max_wal_size_bytes=int(num("max_wal_size")) if "max_wal_size" in values else None,
        parallel_leader_participation=values.get("parallel_leader_participation", ("on", ""))[0] == "on",
    )


def collect_settings(ctx: CollectContext) -> SettingsSnapshot:
    rows = ctx.session().dicts(_q("settings", "settings", ctx.server))
    return SettingsSnapshot(ctx.now, parse_settings([(r["name"], r["setting"], r["unit"]) for r in rows]))


def collect_server(ctx: CollectContext) -> ServerSnapshot:
    """Placeholder snapshot: the runtime refreshes ServerInfo and databases itself."""
    return ServerSnapshot(ctx.now, ctx.databases)


# --- replication ------------------------------------------------------------------


def collect_replication(ctx: CollectContext) -> ReplicationSnapshot:
    """Both ends: the standbys streaming from here, the slots, and (in recovery) this standby's own view."""
    session = ctx.session()
    position = session.one(_q("replication", "position", ctx.server))
    standbys = session.rows(_q("replication", "senders", ctx.server), StandbyStat)
    slots = session.rows(_q("replication", "slots", ctx.server), SlotStat)
    receiver = None
    if position["in_recovery"]:  # asked of the server now: a promotion may not be in ServerInfo yet
        receiver = session.rows(_q("replication", "receiver", ctx.server), ReceiverStat)[0]
    return ReplicationSnapshot(
        ctx.now,
        bool(position["in_recovery"]),
        float(position["wal_bytes"] or 0.0),
        tuple(standbys),
        tuple(slots),
        receiver,
    )


# --- sessions -----------------------------------------------------------------------


def collect_sessions(ctx: CollectContext) -> SessionsSnapshot:
    """Connections by who and where, and the sessions that hold transactions, run long or block."""
    session = ctx.session()
    groups = session.rows(_q("sessions", "connections", ctx.server), ConnectionGroup)
    rows = session.rows(_q("sessions", "sessions", ctx.server), SessionStat)
    return SessionsSnapshot(ctx.now, tuple(groups), tuple(rows), tuple(_lock_relations(ctx, rows)))


def _lock_relations(ctx: CollectContext, rows: list[SessionStat]) -> list[RelationName]:
    """Names of the relations blocked sessions wait on, asked in each one's database.

    pg_class is per database, so a relation oid means something only there. A
    database that cannot be reached leaves its relations unnamed (the oid is
    still in the evidence) and does not fail the collector.
    """
    wanted: dict[tuple[str, int], set[int]] = {}
    for r in rows:
        if r.lock_relid is not None and r.database in ctx.databases:
            wanted.setdefault((r.database, r.dbid), set()).add(r.lock_relid)
    query = _q("sessions", "relations", ctx.server)
    names: list[RelationName] = []
    for (database, dbid), relids in sorted(wanted.items()):
        try:
            found = ctx.session(database).dicts(query, {"relids": sorted(relids)})
        except DatabaseError as exc:
            ctx.database_failed(database, exc)
            continue
        names += [RelationName(dbid, int(f["relid"]), f["schema"], f["relation"]) for f in found]
    return names
