"""Table and index sizes read only where they may have changed, and never stale.

Between polls the test writes, vacuums, truncates, rewrites, reindexes and
drops; after each poll of the sizes and indexes collectors the sizes they
hold must equal a full read (sizes/tables, indexes/indexes) of the same
moment, and a poll after no change must read no size again (the cached
entries are the same objects).

The stamps follow the statistics counters, which a backend publishes when it
goes idle after a transaction: the writing session forces that out
(pg_stat_force_next_flush, 15+) or waits for it (13-14 send every 0.5 s at
most), and the test waits until the counters show the step before it polls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import monitor_dsn, read_in_full, run_reported, superuser, wait_for

from pgradar.agent.model.catalog import IndexStat, TableSize
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, DatabaseFilter, TargetConfig
from pgradar.commands.embedded import Cluster

DB = "size_changes"

# No autovacuum: it would change sizes between the tracked poll and the full read.
OFF = "WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
SETUP = f"""
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, status text, note text) {OFF};
CREATE INDEX orders_status ON shop.orders (status);
INSERT INTO shop.orders SELECT g, 'open', repeat('x', 50) FROM generate_series(1, 2000) g;
CREATE TABLE shop.events (id int, kind text) {OFF};
INSERT INTO shop.events SELECT g, 'click' FROM generate_series(1, 500) g;
CREATE TABLE shop.ticks (id int, at int8) {OFF};  -- no TOAST table: VACUUM shows in its own counters only
INSERT INTO shop.ticks SELECT g, g FROM generate_series(1, 5000) g;
"""

STATS = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del + vacuum_count), 0)::int8 FROM pg_stat_user_tables"


def _counted(cluster: Cluster) -> int:
    with superuser(cluster, DB) as conn:
        row = conn.execute(STATS).fetchone()
        assert row is not None
        return int(row[0])


def _change(cluster: Cluster, statements: tuple[str, ...], counted: bool) -> None:
    """Run ``statements`` and, when they move the write or vacuum counters, wait until the counters show it."""
    before = _counted(cluster)
    run_reported(cluster, DB, statements)
    if counted:
        wait_for(lambda: _counted(cluster) != before, timeout=10, step=0.2, what="the step in pg_stat_user_tables")


def _poll(rt: TargetRunner) -> tuple[dict[int, tuple[int | None, int]], dict[int, tuple[int | None, int]]]:
    """Table sizes (with column counts) and index sizes: as tracked, then from a full read right after."""
    for name in ("sizes", "indexes"):
        rt.run_collector(name)
        assert rt.state.collector(name).last_error is None, rt.state.collector(name).last_error
    assert rt.state.server is not None
    tracked = {t.relid: (t.size_bytes, t.column_count) for t in rt.state.current().sizes.tables}
    tracked |= {i.indexrelid: (i.size_bytes, -1) for i in rt.state.current().indexes.indexes}
    full = {t.relid: (t.size_bytes, t.column_count) for t in read_in_full(rt, "sizes", "tables", TableSize)}
    full |= {i.indexrelid: (i.size_bytes, -1) for i in read_in_full(rt, "indexes", "indexes", IndexStat)}
    return tracked, full


def _cached(rt: TargetRunner) -> dict[tuple[str, int], object]:
    return {
        (kind, oid): entry
        for kind in ("table_sizes", "index_sizes")
        for oid, entry in rt.state.catalog[(kind, DB)].items()
    }


def _present(rt: TargetRunner) -> set[tuple[str, int]]:
    current = rt.state.current()
    return {("table_sizes", t.relid) for t in current.sizes.tables} | {
        ("index_sizes", i.indexrelid) for i in current.indexes.indexes
    }


def _size(rt: TargetRunner, relid: int) -> int:
    size = next(z.size_bytes for z in rt.state.current().sizes.tables if z.relid == relid)
    assert size is not None
    return size


@pytest.fixture
def db(heavy_pg: Cluster) -> Iterator[Cluster]:
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    _change(heavy_pg, (SETUP, "VACUUM shop.orders", "VACUUM shop.events", "VACUUM shop.ticks"), counted=True)
    yield heavy_pg
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")


STEPS: list[tuple[str, tuple[str, ...], bool]] = [
    # (what, statements, whether the write and vacuum counters show it)
    ("insert", ("INSERT INTO shop.orders SELECT g, 'open', 'n' FROM generate_series(2001, 6000) g",), True),
    ("delete", ("DELETE FROM shop.orders WHERE id > 2000",), True),
    ("vacuum truncates the heap", ("VACUUM shop.orders",), True),
    ("delete without TOAST", ("DELETE FROM shop.ticks WHERE id > 100",), True),
    ("vacuum truncates a heap without TOAST", ("VACUUM shop.ticks",), True),
    ("update", ("UPDATE shop.orders SET status = 'done' WHERE id % 3 = 0",), True),
    (
        "rolled-back insert",
        ("BEGIN", "INSERT INTO shop.events SELECT g, 'x' FROM generate_series(1, 3000) g", "ROLLBACK"),
        True,
    ),
    (
        "a value to TOAST",
        ("INSERT INTO shop.orders SELECT 7001, 'open', string_agg(md5(g::text), '') FROM generate_series(1, 400) g",),
        True,
    ),
    ("truncate", ("TRUNCATE shop.events",), False),
    ("refill", ("INSERT INTO shop.events SELECT g, 'view' FROM generate_series(1, 800) g",), True),
    ("delete for a rewrite", ("DELETE FROM shop.events WHERE id > 100",), True),
    ("vacuum full", ("VACUUM FULL shop.events",), False),
    ("update for a cluster", ("UPDATE shop.orders SET note = 'y' WHERE id <= 500",), True),
    ("cluster", ("CLUSTER shop.orders USING orders_pkey",), False),
    ("update for a reindex", ("UPDATE shop.orders SET status = 'shipped' WHERE id <= 800",), True),
    ("reindex", ("REINDEX INDEX shop.orders_status",), False),
    ("update for a concurrent reindex", ("UPDATE shop.orders SET status = 'open' WHERE id <= 800",), True),
    ("reindex concurrently", ("REINDEX INDEX CONCURRENTLY shop.orders_status",), False),
    ("delete the TOAST value", ("DELETE FROM shop.orders WHERE id = 7001",), True),
    ("reindex the table and its TOAST index", ("REINDEX TABLE shop.orders",), False),
    ("add column", ("ALTER TABLE shop.orders ADD COLUMN total numeric",), False),
    ("drop column", ("ALTER TABLE shop.orders DROP COLUMN note",), False),
    ("create index", ("CREATE INDEX events_kind ON shop.events (kind)",), False),
    ("create index concurrently", ("CREATE INDEX CONCURRENTLY events_id ON shop.events (id)",), False),
    ("drop index", ("DROP INDEX shop.orders_status",), False),
    ("drop table", ("DROP TABLE shop.events",), False),
]


def test_tracked_sizes_equal_a_full_read_through_writes_and_ddl(db: Cluster) -> None:
    target = TargetConfig("t", monitor_dsn(db), databases=DatabaseFilter(include=(DB,)))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    with superuser(db, DB) as conn:
        row = conn.execute("SELECT 'shop.orders'::regclass::oid::int8, 'shop.ticks'::regclass::oid::int8").fetchone()
        assert row is not None
        orders, ticks = int(row[0]), int(row[1])
    try:
        tracked, full = _poll(rt)
        assert tracked == full and len(full) == 5  # 3 tables, 2 indexes
        first = _cached(rt)

        tracked, full = _poll(rt)  # nothing changed: no size read again
        assert tracked == full
        again = _cached(rt)
        assert again.keys() == first.keys() and all(again[k] is first[k] for k in first)

        sizes: dict[str, int] = {}
        for what, statements, counted in STEPS:
            _change(db, statements, counted)
            tracked, full = _poll(rt)
            assert tracked == full, what
            assert set(_cached(rt)) == _present(rt), what  # a dropped relation leaves the caches at once
            sizes[what] = _size(rt, orders)
            sizes[f"{what}, ticks"] = _size(rt, ticks)
        # the steps changed what they were meant to, and the tracked sizes followed
        assert sizes["insert"] > sizes["vacuum truncates the heap"]
        assert sizes["delete without TOAST, ticks"] > sizes["vacuum truncates a heap without TOAST, ticks"]
        assert sizes["a value to TOAST"] > sizes["rolled-back insert"]
        assert len({k for k in _present(rt) if k[0] == "table_sizes"}) == 2  # events dropped

        before = _cached(rt)
        tracked, full = _poll(rt)  # nothing changed since the last step
        assert tracked == full
        after = _cached(rt)
        assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    finally:
        rt.close()


def test_a_standby_reads_every_size(db: Cluster, heavy_standby: Cluster) -> None:
    """Replayed writes move no counter on a standby: its stamps are NULL, every size is read, none is stale."""

    def replayed() -> None:
        with superuser(db) as primary:
            row = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        with superuser(heavy_standby) as standby:
            wait_for(
                lambda: standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()[0],
                timeout=30,
                step=0.2,
                what="the standby to replay the primary's writes",
            )

    replayed()
    target = TargetConfig("s", monitor_dsn(heavy_standby), databases=DatabaseFilter(include=(DB,)))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("s"))
    with superuser(db, DB) as conn:
        row = conn.execute("SELECT 'shop.orders'::regclass::oid::int8").fetchone()
        assert row is not None
        orders = int(row[0])
    try:
        tracked, full = _poll(rt)
        assert tracked == full and len(full) == 5
        assert rt.state.server is not None and rt.state.server.in_recovery
        before = _size(rt, orders)

        _change(db, ("INSERT INTO shop.orders SELECT g, 'open', 'n' FROM generate_series(2001, 6000) g",), True)
        replayed()
        tracked, full = _poll(rt)
        assert tracked == full
        assert _size(rt, orders) > before
        assert all(stamp is None for stamp, _ in rt.state.catalog[("table_sizes", DB)].values())
        assert all(stamp is None for stamp, _ in rt.state.catalog[("index_sizes", DB)].values())
    finally:
        rt.close()
