"""Index and foreign-key definitions read once, then only where the catalog changed, and never stale.

Between polls the tests create, rename, reindex, attach, detach, re-type and
drop objects; after each poll the tracked snapshot must equal a full read
(indexes/indexes, foreign_keys/foreign_keys) of the same moment, and a poll
after no change must read no definition again (the cached definition objects
are the same objects).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from support import monitor_dsn, read_in_full, superuser

from pgradar.agent.model.catalog import ForeignKey, IndexStat
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, DatabaseFilter, TargetConfig
from pgradar.commands.embedded import Cluster

DB = "catalog_changes"

SETUP = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, email text);
CREATE TABLE shop.orders (id int PRIMARY KEY, customer_id int REFERENCES shop.customers, status text,
                          note text, total numeric);
CREATE INDEX orders_status ON shop.orders (status);
CREATE INDEX orders_lower_note ON shop.orders (lower(note)) WHERE status = 'open';
CREATE TABLE shop.events (id int, at date, kind text) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_kind ON shop.events (kind);
"""


def _without_counters(r: IndexStat) -> IndexStat:
    return replace(
        r,
        idx_scan=0,
        idx_tup_read=0,
        idx_tup_fetch=0,
        last_idx_scan=None,
        size_bytes=None,
        column_types=tuple(r.column_types),
        columns=list(r.columns),
    )


def _poll(rt: TargetRunner) -> tuple[list[IndexStat], list[IndexStat]]:
    """The tracked read (the collector as scheduled) and a full read right after it."""
    rt.run_collector("indexes")
    assert rt.state.collector("indexes").last_error is None, rt.state.collector("indexes").last_error
    tracked = rt.state.current().indexes.indexes
    assert rt.state.server is not None
    full = read_in_full(rt, "indexes", "indexes", IndexStat)
    key = lambda r: r.indexrelid  # noqa: E731
    return (sorted(map(_without_counters, tracked), key=key), sorted(map(_without_counters, full), key=key))


def _definitions(rt: TargetRunner) -> dict[int, object]:
    return {oid: d for oid, (_, d) in rt.state.catalog[("indexes", DB)].items()}


@pytest.fixture
def db(heavy_pg: Cluster) -> Cluster:
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with superuser(heavy_pg, DB) as conn:
        conn.execute(SETUP)
    yield heavy_pg
    with superuser(heavy_pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")


def test_tracked_index_reads_equal_a_full_read_through_ddl(db: Cluster) -> None:
    target = TargetConfig("t", monitor_dsn(db), databases=DatabaseFilter(include=(DB,)))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    try:
        tracked, full = _poll(rt)
        assert tracked == full and len(full) == 5  # 2 primary keys, 2 on orders, 1 on the partition
        first = _definitions(rt)

        tracked, full = _poll(rt)  # nothing changed: nothing read again
        assert tracked == full
        again = _definitions(rt)
        assert again.keys() == first.keys() and all(again[k] is first[k] for k in first)

        steps = [
            # renames reach the definition text, the names and the columns
            "ALTER INDEX shop.orders_status RENAME TO orders_by_status",
            "ALTER TABLE shop.orders RENAME TO purchases",
            "ALTER TABLE shop.purchases RENAME COLUMN status TO state",  # in a key and in a predicate
            "ALTER SCHEMA shop RENAME TO store",
            # a new index, and one made to back a constraint
            "CREATE UNIQUE INDEX purchases_note ON store.purchases (note)",
            "ALTER TABLE store.purchases ADD CONSTRAINT purchases_note_key UNIQUE USING INDEX purchases_note",
            # rebuilt: a new index under the old name
            "REINDEX INDEX CONCURRENTLY store.orders_by_status",
            # a partition attached (its index joins the tree), and the tree's root renamed
            "CREATE TABLE store.events_2026 (id int, at date, kind text)",
            "CREATE INDEX events_2026_kind ON store.events_2026 (kind)",
            "ALTER TABLE store.events ATTACH PARTITION store.events_2026 FOR VALUES FROM ('2026-01-01') "
            "TO ('2027-01-01')",
            "ALTER INDEX store.events_kind RENAME TO events_by_kind",
            # a column's type: its indexes are built again
            "ALTER TABLE store.purchases ALTER COLUMN total TYPE float8",
            "CREATE INDEX purchases_total ON store.purchases (total)",
            "ALTER TABLE store.purchases ALTER COLUMN total TYPE numeric",
            # dropped objects disappear at once
            "DROP INDEX store.orders_by_status",
            "DROP TABLE store.events_2025",
        ]
        for step in steps:
            with superuser(db, DB) as conn:
                conn.execute(step)
            tracked, full = _poll(rt)
            assert tracked == full, step
            if step.startswith("ALTER INDEX store.events_kind RENAME"):
                assert {r.root_index for r in tracked if r.root_relation == "events"} == {"events_by_kind"}
            if step.startswith("DROP INDEX"):
                assert "orders_by_status" not in {r.index for r in tracked}
                assert set(_definitions(rt)) == {r.indexrelid for r in tracked}
        names = {r.index for r in tracked}
        assert {"purchases_note_key", "purchases_total", "events_2026_kind"} <= names  # USING INDEX renames it
        assert next(r for r in tracked if r.index == "purchases_note_key").constraint_type == "u"
        assert next(r for r in tracked if r.index == "orders_lower_note").predicate == "(state = 'open'::text)"
    finally:
        rt.close()


FOREIGN_KEYS_SETUP = """
CREATE TABLE shop.lines (id int PRIMARY KEY, order_id int REFERENCES shop.orders, sku text);
CREATE TABLE shop.visits (id int, at date, customer_id int REFERENCES shop.customers) PARTITION BY RANGE (at);
CREATE TABLE shop.visits_2025 PARTITION OF shop.visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX visits_customer ON shop.visits (customer_id);
"""


def _poll_foreign_keys(rt: TargetRunner) -> tuple[list[ForeignKey], list[ForeignKey]]:
    """The tracked read (the collector as scheduled) and a full read right after it, counters included.

    reltuples and size_bytes are compared too: nothing writes to the test
    database between the two reads, so they must agree.
    """
    rt.run_collector("foreign_keys")
    assert rt.state.collector("foreign_keys").last_error is None, rt.state.collector("foreign_keys").last_error
    tracked = rt.state.current().foreign_keys
    assert tracked is not None and rt.state.server is not None
    full = read_in_full(rt, "foreign_keys", "foreign_keys", ForeignKey)
    key = lambda r: r.constraint_oid  # noqa: E731
    return sorted(tracked.foreign_keys, key=key), sorted(full, key=key)


def _fk_definitions(rt: TargetRunner) -> dict[int, object]:
    return {oid: d for oid, (_, d) in rt.state.catalog[("foreign_keys", DB)].items()}


def test_tracked_foreign_key_reads_equal_a_full_read_through_ddl(db: Cluster) -> None:
    with superuser(db, DB) as conn:
        conn.execute(FOREIGN_KEYS_SETUP)
    target = TargetConfig("t", monitor_dsn(db), databases=DatabaseFilter(include=(DB,)))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    try:
        tracked, full = _poll_foreign_keys(rt)
        assert tracked == full
        assert {(r.relation, r.constraint_name) for r in full} == {
            ("orders", "orders_customer_id_fkey"),
            ("lines", "lines_order_id_fkey"),
            ("visits", "visits_customer_id_fkey"),  # the partition's clone is not listed
        }
        first = _fk_definitions(rt)

        tracked, full = _poll_foreign_keys(rt)  # nothing changed: nothing read again
        assert tracked == full
        again = _fk_definitions(rt)
        assert again.keys() == first.keys() and all(again[k] is first[k] for k in first)

        # rows and ANALYZE move reltuples and size (pg_class is updated in place): counters, not definitions
        with superuser(db, DB) as conn:
            conn.execute("INSERT INTO shop.customers SELECT g, NULL FROM generate_series(1, 200) g")
            conn.execute("INSERT INTO shop.orders SELECT g, g FROM generate_series(1, 200) g")
            conn.execute("ANALYZE shop.customers, shop.orders")
        tracked, full = _poll_foreign_keys(rt)
        assert tracked == full
        assert next(r for r in tracked if r.relation == "orders").reltuples == 200
        again = _fk_definitions(rt)
        assert again.keys() == first.keys() and all(again[k] is first[k] for k in first)

        steps = [
            # a new foreign key
            "CREATE TABLE shop.returns (id int PRIMARY KEY, line_id int, reason text)",
            "ALTER TABLE shop.returns ADD CONSTRAINT returns_line FOREIGN KEY (line_id) REFERENCES shop.lines",
            # renames of the referencing and the referenced table, a key column, the schema
            "ALTER TABLE shop.lines RENAME TO order_lines",
            "ALTER TABLE shop.orders RENAME TO purchases",
            "ALTER TABLE shop.order_lines RENAME COLUMN order_id TO purchase_id",
            "ALTER SCHEMA shop RENAME TO store",
            "ALTER TABLE store.order_lines RENAME COLUMN id TO line_no",  # in an index, not in the key
            # the referenced table alone in a schema, moved and its schema renamed
            "CREATE SCHEMA crm",
            "ALTER TABLE store.customers SET SCHEMA crm",
            "ALTER SCHEMA crm RENAME TO people",
            # an index on the key column: index_keys changes; rebuilt, renamed, dropped
            "CREATE INDEX order_lines_purchase ON store.order_lines (purchase_id)",
            "REINDEX INDEX CONCURRENTLY store.order_lines_purchase",
            "ALTER INDEX store.order_lines_purchase RENAME TO lines_by_purchase",
            "DROP INDEX store.lines_by_purchase",
            # partitions: one attached (its rows join the sums), one with a key of its own that becomes
            # the parent's clone when attached and a key of its own again when detached
            "CREATE TABLE store.visits_2026 (id int, at date, customer_id int)",
            "INSERT INTO store.visits_2026 SELECT g, '2026-06-01', 1 FROM generate_series(1, 50) g",
            "ALTER TABLE store.visits ATTACH PARTITION store.visits_2026 FOR VALUES FROM ('2026-01-01') "
            "TO ('2027-01-01')",
            "CREATE TABLE store.visits_2027 (id int, at date, customer_id int REFERENCES people.customers)",
            "ALTER TABLE store.visits ATTACH PARTITION store.visits_2027 FOR VALUES FROM ('2027-01-01') "
            "TO ('2028-01-01')",
            "ALTER TABLE store.visits DETACH PARTITION store.visits_2027",
            # the constraint itself changed, renamed, dropped
            "ALTER TABLE store.order_lines ALTER CONSTRAINT lines_order_id_fkey DEFERRABLE INITIALLY DEFERRED",
            "ALTER TABLE store.order_lines RENAME CONSTRAINT lines_order_id_fkey TO order_lines_purchase_fk",
            "ALTER TABLE store.returns DROP CONSTRAINT returns_line",
            # a table dropped takes its keys with it
            "DROP TABLE store.visits",
        ]
        for step in steps:
            with superuser(db, DB) as conn:
                conn.execute(step)
            tracked, full = _poll_foreign_keys(rt)
            assert tracked == full, step
            assert set(_fk_definitions(rt)) == {r.constraint_oid for r in tracked}, step
            if step.startswith("CREATE INDEX order_lines_purchase"):
                lines = next(r for r in tracked if r.relation == "order_lines")
                assert lines.index_keys == ["line_no", "purchase_id"]
            if step.startswith("ALTER TABLE store.visits ATTACH PARTITION store.visits_2027"):
                assert "visits_2027" not in {r.relation for r in tracked}
            if step.startswith("ALTER TABLE store.visits DETACH"):
                assert "visits_2027" in {r.relation for r in tracked}
            if step.startswith("ALTER TABLE store.returns DROP CONSTRAINT"):
                assert "returns_line" not in {r.constraint_name for r in tracked}
        assert {
            (r.schema, r.relation, r.constraint_name, tuple(r.columns), r.referenced_schema, r.referenced_relation)
            for r in tracked
        } == {
            ("store", "purchases", "orders_customer_id_fkey", ("customer_id",), "people", "customers"),
            ("store", "order_lines", "order_lines_purchase_fk", ("purchase_id",), "store", "purchases"),
            ("store", "visits_2027", "visits_2027_customer_id_fkey", ("customer_id",), "people", "customers"),
        }
    finally:
        rt.close()
