"""A tables poll keeps an idle table's row object, and never a stale row.

Between polls the test writes, scans, vacuums, analyzes, truncates, renames,
resets counters and drops; after each tables poll the rows it holds (with the
xid age computed from the poll's base) must equal a fresh read of the same
moment (tables/tables, every row built anew) and the server's own age(relfrozenxid), and
a table the step did not touch must keep the last poll's object, even though
every transaction in the cluster moved its xid age.

Counters reach the statistics when the acting session reports
(``support.run_reported`` waits for that).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support import monitor_dsn, run_reported, superuser

from pgradar.agent.collect import queries
from pgradar.agent.model.catalog import TablesSnapshot, TableStat
from pgradar.agent.runtime.runner import JobRun, TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, DatabaseFilter, TargetConfig
from pgradar.commands.embedded import Cluster

DB = "table_changes"

# No autovacuum: it would move counters between the tracked poll and the full read.
OFF = "WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
SETUP = f"""
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, status text, total int) {OFF};
CREATE INDEX orders_status ON shop.orders (status);
INSERT INTO shop.orders SELECT g, 'open', g FROM generate_series(1, 3000) g;
CREATE TABLE shop.idle (id int PRIMARY KEY) {OFF};
INSERT INTO shop.idle SELECT g FROM generate_series(1, 100) g;
CREATE TABLE shop.events (id int, kind text) {OFF};
CREATE TABLE shop.log (at int) PARTITION BY RANGE (at);
CREATE TABLE shop.log_1 PARTITION OF shop.log FOR VALUES FROM (0) TO (1000) {OFF};
"""


def _aged(snapshot: TablesSnapshot) -> dict[int, tuple[TableStat, int | None]]:
    return {t.relid: (t, snapshot.xid_age(t)) for t in snapshot.tables}


def _read_in_full(rt: TargetRunner) -> TablesSnapshot:
    """tables/tables of every database with every row built anew; its last column is the base of the xid ages."""
    assert rt.state.server is not None
    ctx = JobRun(rt, rt.state.server, datetime.now(UTC))
    query = queries.resolve("tables", "tables", rt.state.server.major)
    rows, bases = [], {}
    for database in ctx.databases:
        for raw in ctx.session(database).tuples(query):
            rows.append(TableStat(*raw[:-1]))
            bases[database] = raw[-1]
    return TablesSnapshot(ctx.now, tuple(rows), (), bases)


def _poll(
    rt: TargetRunner, cluster: Cluster
) -> tuple[TablesSnapshot, dict[int, tuple[TableStat, int | None]], dict[int, int | None]]:
    """The tracked snapshot, a full read right after it, and the server's age(relfrozenxid) of each table."""
    rt.run_collector("tables")
    assert rt.state.collector("tables").last_error is None, rt.state.collector("tables").last_error
    assert rt.state.server is not None
    full = _read_in_full(rt)
    with superuser(cluster, DB) as conn:
        ages = {
            int(r[0]): (None if r[1] is None else int(r[1]))
            for r in conn.execute(
                "SELECT relid, CASE WHEN c.relfrozenxid <> '0'::xid THEN age(c.relfrozenxid) END "
                "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
            ).fetchall()
        }
    return rt.state.current().tables, _aged(full), ages


@pytest.fixture
def db(heavy_pg: Cluster) -> Iterator[Cluster]:
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    run_reported(heavy_pg, DB, (SETUP, "VACUUM ANALYZE shop.orders", "VACUUM ANALYZE shop.idle"))
    yield heavy_pg
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")


# (what, statements, the tables it may change: every other table must keep its object)
STEPS: list[tuple[str, tuple[str, ...], set[str]]] = [
    ("insert", ("INSERT INTO shop.events SELECT g, 'click' FROM generate_series(1, 500) g",), {"events"}),
    ("hot update", ("UPDATE shop.orders SET total = total + 1 WHERE id <= 100",), {"orders"}),
    ("update of an indexed column", ("UPDATE shop.orders SET status = 'done' WHERE id % 7 = 0",), {"orders"}),
    ("delete", ("DELETE FROM shop.events WHERE id > 400",), {"events"}),
    ("sequential scan", ("SELECT count(*) FROM shop.events",), {"events"}),
    (
        "index scan that finds nothing",
        ("SET enable_seqscan = off", "SET enable_bitmapscan = off", "SELECT * FROM shop.orders WHERE id = -1"),
        {"orders"},
    ),
    (
        "index-only scan",
        ("SET enable_seqscan = off", "SET enable_bitmapscan = off", "SELECT id FROM shop.orders WHERE id < 50"),
        {"orders"},
    ),
    (
        "bitmap scan",
        ("SET enable_seqscan = off", "SET enable_indexscan = off", "SELECT * FROM shop.orders WHERE status = 'x'"),
        {"orders"},
    ),
    (
        "rolled-back insert",
        ("BEGIN", "INSERT INTO shop.events SELECT g, 'x' FROM generate_series(1, 300) g", "ROLLBACK"),
        {"events"},
    ),
    ("transactions elsewhere move every xid age", tuple(f"SELECT txid_current() -- {i}" for i in range(5)), set()),
    ("analyze", ("ANALYZE shop.events",), {"events"}),
    ("vacuum", ("VACUUM shop.events",), {"events"}),
    ("vacuum freeze", ("VACUUM (FREEZE) shop.orders",), {"orders"}),
    ("create index (reltuples)", ("CREATE INDEX events_kind ON shop.events (kind)",), {"events"}),
    ("reloptions", ("ALTER TABLE shop.events SET (fillfactor = 80)",), {"events"}),
    ("truncate", ("TRUNCATE shop.events",), {"events"}),
    ("rename a table", ("ALTER TABLE shop.events RENAME TO happenings",), {"events"}),
    ("rename the schema", ("ALTER SCHEMA shop RENAME TO store",), {"orders", "idle", "events", "log", "log_1"}),
    (
        "reset one table's counters",
        ("SELECT pg_stat_reset_single_table_counters('store.orders'::regclass)",),
        {"orders"},
    ),
    ("insert into a partition", ("INSERT INTO store.log SELECT g FROM generate_series(1, 50) g",), {"log_1"}),
    ("drop a table", ("DROP TABLE store.happenings",), {"events"}),
]


def test_tracked_tables_equal_a_full_read_and_keep_idle_rows(db: Cluster) -> None:
    target = TargetConfig("t", monitor_dsn(db), databases=DatabaseFilter(include=(DB,)))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    with superuser(db, DB) as conn:
        names = {
            str(r[0]): int(r[1])
            for r in conn.execute(
                "SELECT relname, oid::int8 FROM pg_class "
                "WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('r', 'p')"
            ).fetchall()
        }
    relid_name = {oid: name for name, oid in names.items()}
    try:
        snapshot, full, ages = _poll(rt, db)
        assert _aged(snapshot) == full
        assert {"orders", "idle", "events", "log_1"} <= {relid_name[r] for r in full}
        assert {r: a for r, (_, a) in full.items()} == ages
        if names["log"] in full:  # 15+ lists partitioned tables too
            assert full[names["log"]][1] is None  # no storage, no relfrozenxid

        for what, statements, touched in STEPS:
            before = {t.relid: t for t in snapshot.tables}
            run_reported(db, DB, statements)
            snapshot, full, ages = _poll(rt, db)
            assert _aged(snapshot) == full, what
            assert {r: a for r, (_, a) in full.items()} == ages, what
            for table in snapshot.tables:  # an idle table is the last poll's object
                if table.relid in before and relid_name[table.relid] not in touched:
                    assert table is before[table.relid], (what, relid_name[table.relid])
        assert names["events"] not in {t.relid for t in snapshot.tables}
        assert rt.state.catalog[("tables", DB)].keys() == {t.relid for t in snapshot.tables}
    finally:
        rt.close()
