"""Findings that were false alarms or never fired, on real servers (13 and 18), planted then fixed.

- stale_stats from a plan compares like with like: a Parallel Seq Scan's
  estimate is per process; on a standby the ANALYZE runs on the primary.
- missing_fk_index sizes a plain table (its large_table_bytes rule fires).
- an inactive permanent slot is reported at any size it retains.

Each: the finding appears, its recommendation runs as printed, and the next
pass no longer has it; and the negative case gives nothing.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
from support import MONITOR_ROLE, monitor_dsn, of_kind, poll, superuser, wait_for, watch

from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.commands.embedded import Cluster

MB = 1024 * 1024
PLANNED = ("settings", "tables", "statements", "plans")


def run_fix(conn: psycopg.Connection, recommendation: str) -> None:
    """Every statement of a recommendation as printed, comment lines aside (as a DBA pastes it)."""
    statements = [line for line in recommendation.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    assert statements, recommendation
    for line in statements:
        conn.execute(line)


def caught_up(primary: psycopg.Connection, name: str) -> bool:
    """Everything inserted into the WAL replayed (the insert position: commits here are asynchronous)."""
    row = primary.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn) FROM pg_stat_replication "
        "WHERE application_name = %s",
        (name,),
    ).fetchone()
    return row is not None and row[0] <= 0


def standby_reltuples(standby: Cluster) -> float:
    with superuser(standby, "app") as conn:
        return float(conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'par_orders'").fetchone()[0])


def _stale(found: dict[str, list[Finding]], relation: str) -> list[Finding]:
    return [f for f in of_kind(found, "stale_stats") if f.relation == relation]


def test_parallel_scan_on_a_standby_stale_stats_only_when_the_table_changed(
    heavy_pg: Cluster, heavy_standby: Cluster
) -> None:
    name = f"pg{heavy_pg.major}-standby"
    count = "SELECT count(*) FROM par_orders"
    with superuser(heavy_pg, "app") as primary, superuser(heavy_pg) as root:
        primary.execute("CREATE TABLE par_orders (id int, customer_id int) WITH (autovacuum_enabled = false)")
        try:
            # Enough rows that the planner picks a Parallel Seq Scan for a count.
            primary.execute("INSERT INTO par_orders SELECT g, g % 1000 FROM generate_series(1, 600000) g")
            primary.execute(f"GRANT SELECT ON par_orders TO {MONITOR_ROLE}")
            primary.execute("ANALYZE par_orders")
            wait_for(lambda: caught_up(root, name), 60, what="the standby to catch up")

            def workload() -> None:
                with superuser(heavy_standby, "app") as standby:
                    for _ in range(3):
                        standby.execute(count)

            workload()
            with watch(("standby", monitor_dsn(heavy_standby))) as agent:
                unchanged = poll(agent, *PLANNED)
                plans = agent.state.target("standby").current().plans
            scans = [s for p in plans.plans if p.summary for s in p.summary.seq_scans if s.relation == "par_orders"]
            assert scans and scans[0].workers >= 1, scans  # a Parallel Seq Scan: its estimate is per process
            assert scans[0].reltuples == 600_000 and scans[0].plan_rows < 0.7 * 600_000
            assert _stale(unchanged, "par_orders") == []

            # Planted: the table grows by 75% and nobody analyzes it.
            primary.execute("INSERT INTO par_orders SELECT g, g % 1000 FROM generate_series(600001, 1050000) g")
            wait_for(lambda: caught_up(root, name), 60, what="the standby to catch up")
            workload()
            with watch(("standby", monitor_dsn(heavy_standby))) as agent:
                (stale,) = _stale(poll(agent, *PLANNED), "par_orders")
                assert stale.queryid is not None and stale.evidence["parallel_workers"] >= 1
                assert 900_000 <= stale.evidence["plan_rows"] <= 1_200_000, stale.evidence
                assert stale.recommendation.startswith("-- on the primary")
                assert stale.recommendation.splitlines()[-1] == "ANALYZE public.par_orders;"
                run_fix(primary, stale.recommendation)  # on the primary, as it says
                wait_for(
                    lambda: standby_reltuples(heavy_standby) > 900_000, 60, what="the standby to replay the statistics"
                )
                assert _stale(poll(agent, *PLANNED), "par_orders") == []  # the next pass, same agent
            workload()
            with watch(("standby", monitor_dsn(heavy_standby))) as fresh:
                assert _stale(poll(fresh, *PLANNED), "par_orders") == []  # and planned afresh
        finally:
            primary.execute("DROP TABLE IF EXISTS par_orders")


def test_missing_fk_index_on_a_plain_table_large_by_bytes(heavy_pg: Cluster) -> None:
    """500 rows of 20 kB: small by rows, large by bytes; sized 0 before, so never reported."""
    with superuser(heavy_pg, "app") as conn:
        conn.execute("CREATE TABLE wide_parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE wide_child (id int PRIMARY KEY, parent_id int REFERENCES wide_parent, pad text)")
        try:
            conn.execute("ALTER TABLE wide_child ALTER COLUMN pad SET STORAGE EXTERNAL")  # not compressed
            conn.execute("INSERT INTO wide_parent SELECT g FROM generate_series(1, 10) g")
            conn.execute(
                "INSERT INTO wide_child SELECT g, g % 10 + 1, repeat('x', 20000) FROM generate_series(1, 500) g"
            )
            conn.execute("ANALYZE wide_parent, wide_child")
            (size,) = conn.execute("SELECT pg_table_size('wide_child')").fetchone()
            assert size >= DEFAULT.large_table_bytes
            with watch(("main", monitor_dsn(heavy_pg))) as agent:
                (fk,) = [
                    f for f in of_kind(poll(agent, "foreign_keys"), "missing_fk_index") if f.relation == "wide_child"
                ]
                assert fk.evidence["size_bytes"] == size and fk.evidence["reltuples"] < DEFAULT.large_table_rows
                assert fk.recommendation == (
                    "CREATE INDEX CONCURRENTLY wide_child_parent_id_idx ON public.wide_child (parent_id);"
                )
                run_fix(conn, fk.recommendation)
                assert [
                    f for f in of_kind(poll(agent, "foreign_keys"), "missing_fk_index") if f.relation == "wide_child"
                ] == []
        finally:
            conn.execute("DROP TABLE IF EXISTS wide_child, wide_parent")


def write_wal(conn: psycopg.Connection, rows: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS slot_wal (id int, pad text)")
    conn.execute("INSERT INTO slot_wal SELECT g, repeat('x', 100) FROM generate_series(1, %s) g", (rows,))
    conn.execute("DROP TABLE slot_wal")


def test_inactive_slot_reported_at_any_size_then_warning_then_dropped(heavy_pg: Cluster) -> None:
    """A slot created and never used: info while small; a warning above max_wal_size or inactive long."""
    long_ago = replace(DEFAULT, slot_inactive_warning_s=2)
    with (
        watch(("main", monitor_dsn(heavy_pg))) as agent,
        watch(("main", monitor_dsn(heavy_pg)), thresholds=long_ago) as strict,
        superuser(heavy_pg, "app") as conn,
        superuser(heavy_pg) as root,
    ):
        conn.execute("SELECT pg_create_physical_replication_slot('never_used', true)")
        try:
            write_wal(conn, 20_000)
            (info,) = [
                f
                for f in of_kind(poll(agent, "settings", "replication"), "replication_slot_inactive")
                if f.slot == "never_used"
            ]
            assert info.severity == "info", info
            assert 0 < info.evidence["retained_bytes"] < info.evidence["max_wal_size_bytes"]

            # Inactive for longer than slot_inactive_warning_s (17+: inactive_since; before: the kept snapshots).
            poll(strict, "settings", "replication")
            root.execute("SELECT pg_sleep(2.5)")
            (old,) = [
                f for f in of_kind(poll(strict, "replication"), "replication_slot_inactive") if f.slot == "never_used"
            ]
            assert old.severity == "warning" and old.evidence["inactive_seconds"] >= 2, old

            # More than max_wal_size retained (32 MB, the least it may be).
            root.execute("ALTER SYSTEM SET max_wal_size = '32MB'")
            root.execute("SELECT pg_reload_conf()")
            try:
                write_wal(conn, 300_000)
                (big,) = [
                    f
                    for f in of_kind(poll(agent, "settings", "replication"), "replication_slot_inactive")
                    if f.slot == "never_used"
                ]
            finally:
                root.execute("ALTER SYSTEM RESET max_wal_size")
                root.execute("SELECT pg_reload_conf()")
            assert big.severity == "warning" and big.evidence["max_wal_size_bytes"] == 32 * MB, big
            assert big.evidence["retained_bytes"] > 32 * MB and "more than max_wal_size" in big.summary

            run_fix(root, big.recommendation)
            assert [
                f for f in of_kind(poll(agent, "replication"), "replication_slot_inactive") if f.slot == "never_used"
            ] == []
        finally:
            root.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'never_used'"
            )


def test_slot_past_max_slot_wal_keep_size_is_critical(fresh_pg: Cluster) -> None:
    """A slot whose WAL the server has stopped keeping (wal_status unreserved, then lost) is useless: critical.

    On a cluster of its own: shrinking max_wal_size and checkpointing removes WAL that the shared
    clusters' standby (which has no slot) may still need, and it then never catches up.
    """
    with (
        watch(("main", monitor_dsn(fresh_pg))) as agent,
        superuser(fresh_pg, "app") as conn,
        superuser(fresh_pg) as root,
    ):
        root.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        root.execute("ALTER SYSTEM SET max_wal_size = '32MB'")
        root.execute("SELECT pg_reload_conf()")
        conn.execute("SELECT pg_create_physical_replication_slot('outrun', true)")
        try:
            write_wal(conn, 400_000)
            root.execute("CHECKPOINT")
            (status,) = root.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'outrun'"
            ).fetchone()
            assert status in ("unreserved", "lost"), status
            (lost,) = [
                f
                for f in of_kind(poll(agent, "settings", "replication"), "replication_slot_inactive")
                if f.slot == "outrun"
            ]
            assert lost.severity == "critical" and lost.evidence["wal_status"] == status, lost
            assert ("is inactive and lost" if status == "lost" else "lost at the next checkpoint") in lost.summary
            run_fix(root, lost.recommendation)
            assert [
                f for f in of_kind(poll(agent, "replication"), "replication_slot_inactive") if f.slot == "outrun"
            ] == []
        finally:
            root.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'outrun'"
            )
            root.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            root.execute("ALTER SYSTEM RESET max_wal_size")
            root.execute("SELECT pg_reload_conf()")
