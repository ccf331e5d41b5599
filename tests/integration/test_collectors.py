"""Every collector's SQL variant runs on every server version, as a pg_monitor role.

The test output names the version of each run (pg13 ... pg18).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import MONITOR_ROLE, monitor_dsn, superuser, wait_for

from pgradar.agent.collect import counters
from pgradar.agent.model import jobs
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot, TableStat
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

SCHEMA_SQL = """
DROP SCHEMA IF EXISTS "Sales Data" CASCADE;
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Orders" (id bigint PRIMARY KEY, customer_id int NOT NULL, status text,
                                    email text, created_at timestamptz DEFAULT now());
CREATE UNIQUE INDEX orders_email_key ON "Sales Data"."Orders" (lower(email));
CREATE INDEX orders_status_open ON "Sales Data"."Orders" (status) WHERE status = 'open';
INSERT INTO "Sales Data"."Orders" (id, customer_id, status, email)
SELECT g, g % 100, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, 'u' || g || '@example.com'
  FROM generate_series(1, 2000) g;
ANALYZE "Sales Data"."Orders";
"""


def runtime_for(cluster: Cluster) -> TargetRunner:
    config = Config(targets=(TargetConfig("t", monitor_dsn(cluster)),))
    return TargetRunner(config.targets[0], config, TargetState("t"))


@pytest.fixture
def app(pg: Cluster) -> Cluster:
    with superuser(pg, "app") as conn:
        conn.execute(SCHEMA_SQL)
        for i in range(3):
            conn.execute('SELECT count(*) FROM "Sales Data"."Orders" WHERE customer_id = %s', (i,))
    return pg


def test_every_collector_runs(app: Cluster) -> None:
    rt = runtime_for(app)
    for name in jobs.COLLECTOR_NAMES:
        rt.run_collector(name)
        status = rt.state.collector(name)
        assert status.last_error is None and status.enabled, (name, status)
        assert rt.state.latest(name) is not None, name
    assert rt.state.up
    server = rt.state.server
    assert server is not None and server.major == app.major and server.role == "primary"
    assert not server.is_superuser and server.has_pg_monitor
    assert {"app", "postgres"} <= set(rt.state.databases)
    rt.close()


def test_the_gate_reads_whose_counters_and_since_when(app: Cluster) -> None:
    """``check``'s own reads: the identity a baseline is checked against, the oldest statement entry (17+)."""
    rt = runtime_for(app)
    rt.run_collector("server")
    server = rt.state.server
    assert server is not None
    identity = counters.server_identity(rt.session())
    assert identity.system_identifier.isdigit() and identity.started_at == server.started_at
    oldest = counters.oldest_statement_entry(rt.session(), server)
    if app.major >= 17:
        assert oldest is not None and oldest <= datetime.now(UTC), oldest
    else:
        assert oldest is None
    rt.close()


def test_tables_and_indexes_from_every_database(app: Cluster) -> None:
    rt = runtime_for(app)
    rt.run_collector("server")
    rt.run_collector("sizes")

    def analyzed() -> TableStat | None:
        """Orders once its ANALYZE shows (13 and 14 publish table statistics every half second)."""
        rt.run_collector("tables")  # the latest sizes are filled into each new tables snapshot
        tables: TablesSnapshot = rt.state.current().tables
        orders = next(t for t in tables.tables if t.relation == "Orders")
        return orders if orders.last_analyzed is not None else None

    orders = wait_for(analyzed, timeout=10, what="the ANALYZE of Orders in pg_stat_user_tables")
    rt.run_collector("indexes")
    assert (orders.database, orders.schema) == ("app", "Sales Data")
    assert orders.reltuples == 2000 and orders.size_bytes and orders.size_bytes > 0
    assert orders.column_count == 5
    indexes: IndexesSnapshot = rt.state.current().indexes
    by_name = {i.index: i for i in indexes.indexes if i.relation == "Orders"}
    assert by_name["Orders_pkey"].constraint_type == "p" and by_name["Orders_pkey"].columns == ["id"]
    email = by_name["orders_email_key"]
    assert email.is_unique and email.constraint_type is None and email.columns == [None]
    assert email.expressions == "lower(email)"
    assert by_name["orders_status_open"].predicate == "(status = 'open'::text)"
    assert all(i.is_valid for i in by_name.values())
    rt.close()


def test_statements_texts_only_for_new_queryids(app: Cluster) -> None:
    rt = runtime_for(app)
    with superuser(app) as conn:  # known in postgres before the first poll, new in app after it: one queryid
        conn.execute("SELECT 1 AS same_text_in_two_databases")
    rt.run_collector("server")
    rt.run_collector("statements")
    first: StatementsSnapshot = rt.state.current().statements
    assert first.new_texts > 0
    mine = [r for r in first.rows if r.username == "postgres" and r.database == "app"]
    assert any("customer_id = $1" in rt.state.statement_texts[(r.dbid, r.queryid)] for r in mine)
    known_texts = set(rt.state.statement_texts)
    with superuser(app, "app") as conn:
        conn.execute('SELECT count(*) FROM "Sales Data"."Orders" WHERE customer_id = 1')
        conn.execute('SELECT max(id) FROM "Sales Data"."Orders" WHERE status = %s', ("open",))
        conn.execute("SELECT 1 AS same_text_in_two_databases")
    rt.run_collector("statements")
    second: StatementsSnapshot = rt.state.current().statements
    new_keys = {(r.dbid, r.queryid) for r in second.rows} - {(r.dbid, r.queryid) for r in first.rows}
    # Only new statements' texts were fetched: the new SELECT max(...) and the
    # agent's own statements seen for the first time (its texts are kept, its
    # rows left out of the snapshot), never the known ones.
    fetched = set(rt.state.statement_texts) - known_texts
    assert second.new_texts == len(fetched) and new_keys <= fetched
    assert fetched - new_keys <= rt.state.own_statements
    assert any("max(id)" in rt.state.statement_texts[k] for k in new_keys)
    # the text new in app was fetched for app alone, not again for postgres, where it was known
    twice = [k for k, text in rt.state.statement_texts.items() if "same_text_in_two_databases" in text]
    assert len(twice) == 2 and len({q for _, q in twice}) == 1 and len(set(twice) & fetched) == 1
    interval = rt.state.statement_intervals[-1]
    count_stmt = next(
        d
        for d in interval.deltas
        if "customer_id = $1" in rt.state.statement_texts.get((d.dbid, d.queryid), "") and d.username == "postgres"
    )
    assert count_stmt.calls == 1
    assert all(r.username == MONITOR_ROLE or r.username for r in second.rows)
    rt.close()


def test_rows_by_position_and_by_keyword_agree(app: Cluster) -> None:
    """Collector queries list their columns in the dataclass's field order, so rows are built by position;
    a query in another order falls back to keywords, with the same rows."""
    import dataclasses

    from pgradar.agent.collect.db import SessionSettings, connect
    from pgradar.agent.collect.queries import Query
    from pgradar.agent.model.catalog import TableSize

    in_order = Query(
        "test",
        "sizes",
        13,
        "SELECT 'app'::text AS database, 1::int8 AS relid, 2::int8 AS size_bytes, 3 AS column_count",
    )
    shuffled = Query(
        "test",
        "sizes",
        13,
        "SELECT 3 AS column_count, 2::int8 AS size_bytes, 1::int8 AS relid, 'app'::text AS database",
    )
    session = connect(monitor_dsn(app), SessionSettings())
    try:
        assert session.rows(in_order, TableSize) == session.rows(shuffled, TableSize) == [TableSize("app", 1, 2, 3)]
        rt = runtime_for(app)  # the real indexes query: built by position (its columns are IndexStat's fields)
        rt.run_collector("indexes")
        index = rt.state.current().indexes.indexes[0]
        assert [f.name for f in dataclasses.fields(index)][:3] == ["database", "indexrelid", "relid"]
        assert isinstance(index.column_types, list) and index.database in rt.state.databases
        rt.close()
    finally:
        session.close()


def test_statements_full_rows_read_only_where_they_changed(app: Cluster) -> None:
    """A poll reads every entry's stamp and the full row only of those that ran; it equals a full read."""
    rt = runtime_for(app)
    rt.run_collector("server")
    rt.run_collector("statements")
    first: StatementsSnapshot = rt.state.current().statements
    with superuser(app, "app") as conn:
        conn.execute('SELECT count(*) FROM "Sales Data"."Orders" WHERE customer_id = %s', (2,))  # ran before
        conn.execute('SELECT min(id) FROM "Sales Data"."Orders" WHERE customer_id = 7')  # new
    rt.run_collector("statements")
    assert rt.state.collector("statements").last_error is None
    tracked: StatementsSnapshot = rt.state.current().statements

    fresh = runtime_for(app)  # nothing held: one full read, a moment later
    fresh.run_collector("server")
    fresh.run_collector("statements")
    full: StatementsSnapshot = fresh.state.current().statements
    by_key = {r.key: r for r in tracked.rows}
    assert by_key == {r.key: r for r in full.rows}

    held = {r.key: r for r in first.rows}
    reused = [r for r in tracked.rows if held.get(r.key) is r]
    read_again = [r for r in tracked.rows if r.key in held and held[r.key] is not r]
    assert len(reused) > len(read_again) >= 1  # idle entries are the same objects, the one that ran is new
    assert all(held[r.key].calls < r.calls for r in read_again)
    texts = rt.state.statement_texts
    assert any("min(id)" in texts[(r.dbid, r.queryid)] for r in tracked.rows if r.key not in held)
    rt.close()
    fresh.close()


# tables/tables reads pg_class and the pg_stat_get_* functions instead of pg_stat_user_tables;
# these are the view's columns it stands for, spelled as the view-based query had them.
VIEW_COLUMNS = """
SELECT s.relid::int8, s.schemaname::text, s.relname::text, s.seq_scan, s.seq_tup_read,
       coalesce(s.idx_scan, 0), coalesce(s.idx_tup_fetch, 0), s.n_tup_ins, s.n_tup_upd, s.n_tup_del,
       s.n_tup_hot_upd, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       s.vacuum_count + s.autovacuum_count, s.analyze_count + s.autoanalyze_count, {last_seq_scan}
  FROM pg_stat_user_tables s
"""
SHAPES_SQL = """
DROP SCHEMA IF EXISTS shapes CASCADE;
CREATE SCHEMA shapes;
CREATE TABLE shapes.no_index (a int);
INSERT INTO shapes.no_index SELECT g FROM generate_series(1, 50) g;
CREATE TABLE shapes.log (at int) PARTITION BY RANGE (at);
CREATE TABLE shapes.log_1 PARTITION OF shapes.log FOR VALUES FROM (0) TO (100);
CREATE INDEX ON shapes.log (at);
INSERT INTO shapes.log SELECT g FROM generate_series(0, 99) g;
CREATE MATERIALIZED VIEW shapes.counted AS SELECT count(*) AS n FROM shapes.no_index;
ANALYZE shapes.log;
"""


def test_a_database_size_is_read_again_once_the_kept_one_is_an_hour_old(app: Cluster) -> None:
    from datetime import timedelta

    from pgradar.agent.collect.collectors import DATABASE_SIZE_EVERY

    rt = runtime_for(app)

    def size_of_app() -> int | None:
        rt.run_collector("server")  # as the scheduler runs it between two size polls: what it keeps stays
        rt.run_collector("sizes")
        return next(d.size_bytes for d in rt.state.latest("sizes").databases if d.database == "app")

    first = size_of_app()
    with superuser(app, "app") as conn:
        conn.execute("CREATE TABLE grows AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
        conn.execute("CHECKPOINT")
    try:
        assert first is not None and size_of_app() == first  # kept: read less than an hour ago
        kept = rt.state.catalog[("database_sizes", "")]
        read_at, size = kept["app"]
        kept["app"] = (read_at - DATABASE_SIZE_EVERY - timedelta(seconds=1), size)
        assert (size_of_app() or 0) > first + 4_000_000  # read again: the 20,000 rows of 200 bytes
    finally:
        with superuser(app, "app") as conn:
            conn.execute("DROP TABLE grows")
        rt.close()


def test_tables_query_reads_what_pg_stat_user_tables_shows(app: Cluster) -> None:
    """The same rows as the view: tables with and without indexes, partitioned ones (14+), a materialized view."""
    from pgradar.agent.collect import queries

    with superuser(app, "app") as conn:
        conn.execute(SHAPES_SQL)
        conn.execute('SELECT * FROM "Sales Data"."Orders" WHERE id = 5')  # index scans and fetches
        conn.execute("SELECT * FROM shapes.no_index WHERE a = 3")
        conn.execute("SELECT * FROM shapes.log WHERE at = 3")
    query = queries.resolve("tables", "tables", app.major).text
    last_seq_scan = "s.last_seq_scan" if app.major >= 16 else "NULL::timestamptz"
    try:
        with superuser(app, "app") as conn:
            orders = conn.execute("""SELECT '"Sales Data"."Orders"'::regclass::oid::int8""").fetchone()
            assert orders is not None

            def index_scan_counted() -> bool:
                """Orders' index scan has reached the statistics, so the sums below are not all zero."""
                return any(r[0] == orders[0] and r[5] > 0 and r[6] > 0 for r in map(_as_view, conn.execute(query)))

            wait_for(index_scan_counted, timeout=10, what="Orders' index scan in tables/tables")
            with conn.transaction():
                if app.major >= 15:  # one snapshot of the statistics for both reads (13, 14: always)
                    conn.execute("SET LOCAL stats_fetch_consistency = snapshot")
                rows = [_as_view(r) for r in conn.execute(query).fetchall()]
                view = conn.execute(VIEW_COLUMNS.format(last_seq_scan=last_seq_scan)).fetchall()
        assert sorted(rows) == sorted(view)
        names = {r[2] for r in rows}
        assert {"Orders", "no_index", "log_1", "counted"} <= names
        assert ("log" in names) == (app.major >= 14)  # the view counts partitioned tables from 14 on
    finally:
        with superuser(app, "app") as conn:
            conn.execute("DROP SCHEMA shapes CASCADE")


def _as_view(row: tuple[object, ...]) -> tuple[object, ...]:
    """A tables/tables row cut to VIEW_COLUMNS: relid, schema and name, then the counters to last_seq_scan."""
    return row[1:4] + row[7:26]
