"""Vacuum on real servers: each holder of the xmin horizon planted, named with its fix, gone after the fix.

A cluster of its own per version (logical WAL and prepared transactions on,
which the shared clusters do not have). Each holder is planted alone, rows are
updated and vacuumed behind it, and the finding must name that holder; the
fix it prints is run as printed and the next pass must be clean.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from support import (
    HEAVY,
    VERSIONS,
    installation,
    monitor_dsn,
    of_kind,
    pgradar,
    poll,
    prepare,
    run_reported,
    superuser,
    wait_for,
    watch,
)

from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.runtime.agent import Agent
from pgradar.commands.embedded import Cluster, Installation, Sandbox

T = replace(DEFAULT, xmin_horizon_warning_s=1, xmin_horizon_critical_s=3600)
COLLECTORS = ("settings", "tables", "replication", "sessions", "vacuum")


# The oldest and newest, and 15: the first with pg_ls_replslotdir (a slot's time held before 17's inactive_since).
VACUUM_VERSIONS = tuple(v for v in VERSIONS if v in (*HEAVY, 15))


@pytest.fixture(params=VACUUM_VERSIONS, ids=lambda v: f"pg{v}", scope="module")
def vacuum_pg(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    settings = {"wal_level": "logical", "max_prepared_transactions": "5", "wal_receiver_status_interval": "1s"}
    cluster = sandbox.cluster(installation(installations, request.param), f"vacuum{request.param}", settings)
    prepare(cluster)
    with superuser(cluster, "app") as conn:
        conn.execute("CREATE TABLE churn (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO churn SELECT g, 0 FROM generate_series(1, 2000) g")
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def churn(cluster: Cluster) -> None:
    """Dead rows behind the horizon: every row updated, then vacuumed (which must leave them)."""
    run_reported(cluster, "app", ("UPDATE churn SET v = v + 1", "VACUUM churn"))


def held(agent: Agent) -> list[Finding]:
    return of_kind(poll(agent, *COLLECTORS), "xmin_horizon_held")


def only_holder(findings: list[Finding], kind: str, name: str) -> tuple[Finding, dict[str, object]]:
    assert len(findings) == 1, findings
    holders = findings[0].evidence["holders"]
    assert [(h["holder"], h["name"]) for h in holders] == [(kind, name)], holders
    return findings[0], holders[0]


def test_idle_snapshot_and_long_read_are_named_and_ended(vacuum_pg: Cluster) -> None:
    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=T) as agent, superuser(vacuum_pg, "app") as admin:
        assert held(agent) == []  # nothing holds it yet

        # An idle transaction that took a snapshot.
        idle = psycopg.connect(vacuum_pg.dsn("app"), application_name="idle-holder")
        idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        idle.execute("SELECT count(*) FROM churn")
        pid = idle.info.backend_pid
        churn(vacuum_pg)
        time.sleep(1.2)
        finding, holder = only_holder(held(agent), "backend", str(pid))
        assert finding.database == "app" and finding.evidence["dead_rows"] >= 2000
        assert holder["application"] == "idle-holder" and holder["state"] == "idle in transaction"
        assert holder["held_seconds_from"] == "server" and holder["held_seconds"] >= 1
        assert finding.recommendation.startswith(f"SELECT pg_terminate_backend({pid});")
        admin.execute(finding.recommendation)
        idle.close()
        assert held(agent) == []

        # A long REPEATABLE READ read, still running.
        def long_read() -> None:
            conn = psycopg.connect(vacuum_pg.dsn("app"), application_name="long-read", autocommit=True)
            try:
                with contextlib.suppress(psycopg.Error):  # ended by the fix
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    conn.execute("SELECT count(*), pg_sleep(60) FROM churn WHERE id = 1")
            finally:
                conn.close()

        reader = threading.Thread(target=long_read, daemon=True)
        reader.start()
        reader_pid = wait_for(
            lambda: admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'long-read' AND backend_xmin IS NOT NULL"
            ).fetchone(),
            10,
            what="the long read",
        )[0]
        churn(vacuum_pg)
        time.sleep(1.2)
        finding, holder = only_holder(held(agent), "backend", str(reader_pid))
        assert holder["state"] == "active" and holder["application"] == "long-read"
        admin.execute(finding.recommendation)
        reader.join(10)
        assert held(agent) == []


def test_prepared_transaction_is_named_and_finished(vacuum_pg: Cluster) -> None:
    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=T) as agent, superuser(vacuum_pg, "app") as admin:
        with psycopg.connect(vacuum_pg.dsn("app"), autocommit=True) as writer:
            writer.execute("BEGIN")
            writer.execute("CREATE TABLE IF NOT EXISTS side (id int)")
            writer.execute("INSERT INTO side VALUES (1)")  # a write elsewhere: churn's rows stay unlocked
            writer.execute("PREPARE TRANSACTION 'forgotten-1'")
        churn(vacuum_pg)
        time.sleep(1.2)
        finding, holder = only_holder(held(agent), "prepared", "forgotten-1")
        assert finding.database == "app" and holder["user"] == "postgres"
        assert finding.recommendation.startswith("ROLLBACK PREPARED 'forgotten-1';")
        admin.execute(finding.recommendation)
        assert admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)
        assert held(agent) == []


def test_logical_slot_without_consumer_is_named_once(vacuum_pg: Cluster) -> None:
    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=T) as agent, superuser(vacuum_pg, "app") as admin:
        admin.execute("SELECT pg_create_logical_replication_slot('no_consumer', 'pgoutput')")
        admin.execute("CREATE TABLE slot_churn (id int)")  # catalog rows die behind the catalog_xmin
        admin.execute("DROP TABLE slot_churn")
        held(agent)  # before 15 the slot's time is counted from pgradar's first sight of it
        time.sleep(1.2)
        found = poll(agent, *COLLECTORS)
        findings = of_kind(found, "xmin_horizon_held")
        finding, holder = only_holder(findings, "slot", "no_consumer")
        assert finding.database == "app" and holder["catalog_only"] is True
        expected_from = "server" if vacuum_pg.major >= 15 else "seen by pgradar"
        assert holder["held_seconds_from"] == expected_from
        # One cause, one fix: the slot's inactive finding drops it, the horizon's points there.
        assert "pg_drop_replication_slot" not in finding.recommendation
        assert "replication_slot_inactive" in finding.recommendation
        (inactive,) = [f for f in of_kind(found, "replication_slot_inactive") if f.slot == "no_consumer"]
        admin.execute(inactive.recommendation)
        assert held(agent) == []


def test_standby_feedback_is_named_with_its_long_query(
    vacuum_pg: Cluster, installations: dict[int, Installation], sandbox: Sandbox
) -> None:
    tools = next(i for _, i in sorted(installations.items(), reverse=True) if i.tool("pg_basebackup"))
    standby = sandbox.standby(vacuum_pg, f"vacuum{vacuum_pg.major}-standby", basebackup_from=tools)
    try:
        with superuser(standby) as conn:
            conn.execute("ALTER SYSTEM SET hot_standby_feedback = on")
            conn.execute("SELECT pg_reload_conf()")
        with (
            watch(("main", monitor_dsn(vacuum_pg)), ("replica", monitor_dsn(standby, "app")), thresholds=T) as agent,
            superuser(standby) as standby_admin,
            superuser(vacuum_pg) as admin,
        ):
            reader = superuser(standby, "app")  # ended by the fix: closed, never left by a with block
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            reader.execute("SELECT count(*) FROM churn")
            reader_pid = reader.info.backend_pid
            wait_for(
                lambda: admin.execute("SELECT backend_xmin IS NOT NULL FROM pg_stat_replication").fetchone()[0],
                20,
                what="the standby's feedback xmin",
            )
            churn(vacuum_pg)
            time.sleep(1.2)
            finding, holder = only_holder(held(agent), "standby", f"vacuum{vacuum_pg.major}-standby")
            assert finding.database is None and holder["held_seconds_from"] == "standby target replica"
            statement = f"SELECT pg_terminate_backend({reader_pid});"
            assert statement in finding.recommendation
            standby_admin.execute(statement)
            wait_for(
                lambda: admin.execute(
                    "SELECT backend_xmin::text <> %s FROM pg_stat_replication", (str(holder["xmin"]),)
                ).fetchone()[0],
                20,
                what="the feedback xmin to move on",
            )
            assert held(agent) == []
            reader.close()
    finally:
        standby.stop("immediate")
        sandbox.clusters.remove(standby)


# --- bloat ----------------------------------------------------------------------------------

BLOAT_T = replace(DEFAULT, bloat_min_bytes=1024 * 1024, bloat_ratio=0.3)
# (table, definition, load, bloat): narrow rows, wide rows, TOASTed documents; then one freshly loaded.
BLOAT_CASES = (
    (
        "bloat_narrow",
        "id int, v int); CREATE INDEX bloat_narrow_id ON bloat_narrow (id",
        "INSERT INTO bloat_narrow SELECT g, g FROM generate_series(1, 300000) g",
        "DELETE FROM bloat_narrow WHERE id % 5 < 3",
    ),
    (
        "bloat_wide",
        "id int, note text, at timestamptz); CREATE INDEX bloat_wide_note ON bloat_wide (note",
        "INSERT INTO bloat_wide SELECT g, repeat(md5(g::text), 6), now() FROM generate_series(1, 60000) g",
        "UPDATE bloat_wide SET at = at + interval '1 s'; UPDATE bloat_wide SET at = at + interval '1 s'",
    ),
    (
        "bloat_toast",
        "id int, doc text",
        "INSERT INTO bloat_toast SELECT g.g, (SELECT string_agg(md5(random()::text || g.g || p), '') "
        "FROM generate_series(1, 200) p) FROM generate_series(1, 3000) g",
        "DELETE FROM bloat_toast WHERE id % 2 = 0",
    ),
)
FRESH = (
    "bloat_fresh",
    "id int, v text",
    "INSERT INTO bloat_fresh SELECT g, md5(g::text) FROM generate_series(1, 200000) g; "
    "CREATE INDEX bloat_fresh_v ON bloat_fresh (v)",
)
BLOATED_INDEXES = ("bloat_narrow_id", "bloat_wide_note")


def bloat_findings(agent: Agent) -> dict[str, Finding]:
    """The table_bloat findings by table, and the index_bloat ones by index."""
    found = poll(agent, "tables", "bloat")
    return {
        **{f.relation or "": f for f in of_kind(found, "table_bloat")},
        **{f.index or "": f for f in of_kind(found, "index_bloat")},
    }


def test_bloat_estimate_against_pgstattuple(heavy_pg: Cluster) -> None:
    names = [c[0] for c in BLOAT_CASES] + [FRESH[0]]
    with superuser(heavy_pg, "app") as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        for name, columns, load, *_ in (*BLOAT_CASES, FRESH):
            admin.execute(f"DROP TABLE IF EXISTS {name}")
            admin.execute(f"CREATE TABLE {name} ({columns})")
            admin.execute(load)
        for _, _, _, churn_statement in BLOAT_CASES:
            admin.execute(churn_statement)
        for name in names:
            admin.execute(f"VACUUM ANALYZE {name}")
        # pg_stats shows a column's statistics only to a role that may read it
        admin.execute(f"GRANT SELECT ON {', '.join(names)} TO pgradar_mon")
    try:
        with watch(("main", monitor_dsn(heavy_pg)), thresholds=BLOAT_T) as agent, superuser(heavy_pg, "app") as admin:
            found = bloat_findings(agent)
            snapshot = agent.state.target("main").current().bloat
            assert snapshot is not None
            rows = {b.estimate.relation: b for b in snapshot.tables if b.estimate.database == "app"}
            errors = {}
            for name, *_ in BLOAT_CASES:
                b = rows[name]
                assert b.measured is not None and b.estimate.wasted_bytes is not None, b
                error = (b.estimate.wasted_bytes - b.measured.wasted_bytes) / b.measured.wasted_bytes
                errors[name] = (b.estimate.wasted_bytes, b.measured.wasted_bytes, b.measured.size_bytes, error)
                assert abs(error) <= 0.3, (name, errors[name])
                assert found[name].evidence["basis"] == "pgstattuple"
                assert found[name].evidence["estimated_wasted_bytes"] == b.estimate.wasted_bytes
            indexes = {b.estimate.index: b for b in snapshot.indexes if b.estimate.database == "app"}
            for name in BLOATED_INDEXES:
                b = indexes[name]
                assert b.measured is not None and b.estimate.wasted_bytes is not None, b
                error = (b.estimate.wasted_bytes - b.measured.wasted_bytes) / b.measured.wasted_bytes
                errors[name] = (b.estimate.wasted_bytes, b.measured.wasted_bytes, b.measured.size_bytes, error)
                assert abs(error) <= 0.3, (name, errors[name])
                assert name in found and found[name].evidence["basis"] == "pgstattuple", errors
            fresh = rows[FRESH[0]]
            (measured_fresh,) = admin.execute(
                "SELECT approx_free_space + dead_tuple_len FROM pgstattuple_approx('bloat_fresh'::regclass)"
            ).fetchone()
            errors[FRESH[0]] = (fresh.estimate.wasted_bytes, measured_fresh, fresh.estimate.size_bytes, None)
            fresh_index = indexes["bloat_fresh_v"]
            (density,) = admin.execute("SELECT avg_leaf_density FROM pgstatindex('bloat_fresh_v')").fetchone()
            errors["bloat_fresh_v"] = (
                fresh_index.estimate.wasted_bytes,
                density,
                fresh_index.estimate.size_bytes,
                None,
            )
            print("\nbloat estimate vs pgstattuple (estimated, measured, size, error):")
            for name, figures in errors.items():
                print(f"  PostgreSQL {heavy_pg.major} {name}: {figures}")
            assert fresh.estimate.wasted_bytes is not None and fresh_index.estimate.wasted_bytes is not None
            assert fresh.estimate.wasted_bytes < 0.1 * fresh.estimate.size_bytes
            assert fresh_index.estimate.wasted_bytes < 0.1 * fresh_index.estimate.size_bytes
            assert sorted(found) == sorted([c[0] for c in BLOAT_CASES] + list(BLOATED_INDEXES))

            # The fixes as printed return the space; the next pass is clean.
            for name in BLOATED_INDEXES:
                assert found[name].recommendation.startswith(f"REINDEX INDEX CONCURRENTLY public.{name};")
                admin.execute(found[name].recommendation)
            assert sorted(bloat_findings(agent)) == sorted(c[0] for c in BLOAT_CASES)
            for name, *_ in BLOAT_CASES:
                assert found[name].recommendation.startswith(f"VACUUM FULL public.{name};")
                admin.execute(found[name].recommendation)
            assert bloat_findings(agent) == {}
    finally:
        with superuser(heavy_pg, "app") as admin:
            for name in names:
                admin.execute(f"DROP TABLE IF EXISTS {name}")


# --- autovacuum_lagging -----------------------------------------------------------------------

LAG_T = replace(T, dead_tuples_min_rows=1000, autovacuum_lag_s=3600)


def flushed(cluster: Cluster) -> None:
    """Wait until the statistics a VACUUM or a write just sent can be read (13-14: up to 0.5 s late)."""
    time.sleep(0.1 if cluster.major >= 15 else 1.2)


def lagging(agent: Agent) -> dict[str, Finding]:
    """This test's tables lagging (the other tests' tables keep their dead rows: not this test's business)."""
    found = of_kind(poll(agent, *COLLECTORS), "autovacuum_lagging")
    return {f.relation or "": f for f in found if (f.relation or "").startswith("lag_")}


def test_autovacuum_lagging_behind_the_horizon_and_turned_off(vacuum_pg: Cluster) -> None:
    with superuser(vacuum_pg, "app") as admin:
        for name, options in (("lag_held", ""), ("lag_quiet", ""), ("lag_off", " WITH (autovacuum_enabled = false)")):
            admin.execute(f"DROP TABLE IF EXISTS {name}")
            admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int){options}")
            admin.execute(f"INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 20000) g")
            admin.execute(f"VACUUM ANALYZE {name}")
    holder = psycopg.connect(vacuum_pg.dsn("app"), autocommit=True)
    try:
        with watch(("main", monitor_dsn(vacuum_pg)), thresholds=LAG_T) as agent:
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT count(*) FROM lag_held")
            time.sleep(1.2)
            run_reported(
                vacuum_pg,
                "app",
                (
                    "UPDATE lag_held SET v = 1",  # 20,000 dead rows, the trigger is 4,050
                    "UPDATE lag_quiet SET v = 1 WHERE id <= 3000",  # a look-alike below its trigger
                    "VACUUM lag_held",  # leaves them: the horizon is held
                ),
            )
            flushed(vacuum_pg)
            found = lagging(agent)
            assert sorted(found) == ["lag_held"], found
            lag = found["lag_held"]
            assert lag.evidence["n_dead_tup"] >= 20000 and lag.evidence["trigger_rows"] == 4050
            assert "xmin horizon is held (backend)" in lag.evidence["reasons"][0]
            assert lag.recommendation.startswith("-- first release the horizon: the xmin_horizon_held finding")
            (horizon,) = of_kind(poll(agent, *COLLECTORS), "xmin_horizon_held")
            assert lag.evidence["horizon_finding"] == horizon.id
            with superuser(vacuum_pg, "app") as admin:
                admin.execute(horizon.recommendation)
                wait_for(
                    lambda: admin.execute(
                        "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (holder.info.backend_pid,)
                    ).fetchone()[0],
                    10,
                    what="the holder to end",
                )
                admin.execute(lag.recommendation)
            flushed(vacuum_pg)
            assert lagging(agent) == {}
    finally:
        holder.close()

    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=LAG_T) as agent:
        run_reported(vacuum_pg, "app", ("UPDATE lag_off SET v = 2",))
        found = lagging(agent)  # at once: with autovacuum off for it, no run will come
        assert sorted(found) == ["lag_off"], found
        off = found["lag_off"]
        assert off.evidence["reasons"] == ["autovacuum is off for this table"]
        assert off.recommendation.splitlines() == [
            "ALTER TABLE public.lag_off RESET (autovacuum_enabled);",
            "VACUUM (VERBOSE) public.lag_off;",
        ]
        with superuser(vacuum_pg, "app") as admin:
            for line in off.recommendation.splitlines():  # one statement a line, sent one by one as psql does
                admin.execute(line)
        flushed(vacuum_pg)
        assert lagging(agent) == {}


# --- hot_updates_lost --------------------------------------------------------------------------

HOT_T = replace(DEFAULT, hot_min_updates=1000, hot_min_share=0.5)


def test_hot_updates_lost_names_the_index_an_update_sets(vacuum_pg: Cluster) -> None:
    with superuser(vacuum_pg, "app") as admin:
        for name in ("hot_lost", "hot_kept"):
            admin.execute(f"DROP TABLE IF EXISTS {name}")
            admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, status text, note text)")
            admin.execute(f"CREATE INDEX {name}_status ON {name} (status)")
            admin.execute(f"INSERT INTO {name} SELECT g, 'new', '' FROM generate_series(1, 500) g")
        with admin.cursor() as cur:
            cur.executemany(
                "UPDATE hot_lost SET status = %s WHERE id = %s", [(f"s{i % 7}", i % 500 + 1) for i in range(2000)]
            )
            # the look-alike: as many updates, of a column no index holds
            cur.executemany(
                "UPDATE hot_kept SET note = %s WHERE id = %s", [(f"n{i}", i % 500 + 1) for i in range(2000)]
            )
    run_reported(vacuum_pg, "app", ("SELECT 1",))
    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=HOT_T) as agent:
        found = of_kind(poll(agent, "statements", "tables", "indexes"), "hot_updates_lost")
        assert [f.relation for f in found] == ["hot_lost"], found
        (f,) = found
        assert f.evidence["hot_share"] < 0.5 and f.evidence["updates"] >= 2000
        assert f.evidence["indexes_written_per_update"] == 2
        assert [i["index"] for i in f.evidence["indexes"]] == ["hot_lost_status"]
        assert any(s["columns"] == ["status"] for s in f.evidence["statements"])
        assert f.recommendation.startswith("DROP INDEX CONCURRENTLY public.hot_lost_status;")
        with superuser(vacuum_pg, "app") as admin:
            admin.execute(f.recommendation)
        assert of_kind(poll(agent, "statements", "tables", "indexes"), "hot_updates_lost") == []


# --- one pass of check ---------------------------------------------------------------------------


def test_check_names_a_prepared_holder_and_a_held_session_in_one_pass(vacuum_pg: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "pgradar.yml"
    config.write_text(
        f"targets:\n  - name: main\n    dsn: {monitor_dsn(vacuum_pg)}\nthresholds:\n  xmin_horizon_warning_s: 1\n"
    )
    holder = psycopg.connect(vacuum_pg.dsn("app"), application_name="check-holder")
    try:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM churn")
        with psycopg.connect(vacuum_pg.dsn("app"), autocommit=True) as writer:
            writer.execute("BEGIN")
            writer.execute("CREATE TABLE IF NOT EXISTS side (id int)")
            writer.execute("INSERT INTO side VALUES (2)")
            writer.execute("PREPARE TRANSACTION 'check-1'")
        churn(vacuum_pg)
        time.sleep(1.2)
        proc = pgradar(
            "check", "--config", str(config), "--format", "json", "--kinds", "xmin_horizon_held", "--fail-on", "warning"
        )
        assert proc.returncode == 1, proc.stderr
        (problem,) = json.loads(proc.stdout)["problems"]
        holders = {(h["holder"], h["name"]) for h in problem["evidence"]["holders"]}
        assert holders == {("backend", str(holder.info.backend_pid)), ("prepared", "check-1")}, problem
        assert problem["database"] == "app"
        assert f"SELECT pg_terminate_backend({holder.info.backend_pid});" in problem["recommendation"]
        assert "ROLLBACK PREPARED 'check-1';" in problem["recommendation"]
    finally:
        holder.close()
        with superuser(vacuum_pg, "app") as admin:
            if admin.execute("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'check-1'").fetchone()[0]:
                admin.execute("ROLLBACK PREPARED 'check-1'")


# --- multixact_wraparound ------------------------------------------------------------------------


def test_multixact_age_is_judged_and_a_database_freeze_clears_it(vacuum_pg: Cluster) -> None:
    with superuser(vacuum_pg, "app") as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS shared_locks (id int PRIMARY KEY)")
        admin.execute("INSERT INTO shared_locks VALUES (1) ON CONFLICT DO NOTHING")
    # Two transactions share a row lock: a multixact.
    first, second = (psycopg.connect(vacuum_pg.dsn("app")) for _ in range(2))
    try:
        for conn in (first, second):
            conn.execute("SELECT * FROM shared_locks WHERE id = 1 FOR SHARE")
    finally:
        first.close()
        second.close()
    thresholds = replace(DEFAULT, mxid_age_warning=1, mxid_age_critical=10**9)
    with watch(("main", monitor_dsn(vacuum_pg)), thresholds=thresholds) as agent:
        found = {f.database: f for f in of_kind(poll(agent, "database", "bloat"), "multixact_wraparound")}
        app = found["app"]
        assert app.evidence["mxid_age"] >= 1 and app.severity == "warning"
        assert app.relation is None  # every table of a young database is as old: the database is frozen
        assert app.recommendation == "-- in database app:\nVACUUM (FREEZE, VERBOSE);"
        with superuser(vacuum_pg, "app") as admin:
            admin.execute("VACUUM (FREEZE, VERBOSE);")
        after = {f.database for f in of_kind(poll(agent, "database", "bloat"), "multixact_wraparound")}
        assert "app" not in after
