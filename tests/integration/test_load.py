"""Database load on real servers: what each planted workload looks like in the samples.

Ground truth on the oldest and newest servers: a lock convoy is Lock load with
its blocker named, a PL/pgSQL loop is CPU, a session idle in a transaction is
no load at all, a parallel query's workers count for their leader's statement,
and pgradar's own sessions are never counted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from support import monitor_dsn, superuser, wait_for, watch

from pgradar.agent.model.load import CPU, LoadSample
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.commands.embedded import Cluster

BURN = """
CREATE OR REPLACE FUNCTION burn(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE x bigint := 0;
BEGIN
  FOR i IN 1..n LOOP x := x + i; END LOOP;
  RETURN x;
END $$"""


@contextmanager
def running(dsn: str, *statements: str) -> Iterator[list[BaseException]]:
    """Run statements in a thread of their own connection while the block lasts; errors are kept."""
    errors: list[BaseException] = []
    conn = psycopg.connect(dsn, autocommit=True)

    def run() -> None:
        try:
            for statement in statements:
                conn.execute(statement)
        except psycopg.Error as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        conn.cancel_safe() if hasattr(conn, "cancel_safe") else conn.cancel()
        thread.join(30)
        conn.close()


def sample(rt: TargetRunner) -> LoadSample:
    rt.run_collector("load")
    status = rt.state.collector("load")
    assert status.last_error is None, status.last_error
    latest: LoadSample = rt.state.latest("load")
    return latest


def test_one_sample_sees_cpu_sleep_locks_and_not_idle_transactions(heavy_pg: Cluster) -> None:
    with superuser(heavy_pg, "app") as admin:
        admin.execute(BURN)
        admin.execute("CREATE TABLE IF NOT EXISTS convoy (id int PRIMARY KEY, v int)")
        admin.execute("INSERT INTO convoy VALUES (1, 0) ON CONFLICT DO NOTHING")
    with (
        watch(("main", monitor_dsn(heavy_pg))) as agent,
        superuser(heavy_pg, "app") as admin,
        superuser(heavy_pg, "app") as holder,
        superuser(heavy_pg, "app") as idle,
    ):
        rt = agent.runtimes["main"]
        rt.run_collector("server")
        holder.execute("BEGIN")
        holder.execute("UPDATE convoy SET v = v + 1 WHERE id = 1")  # then idle in transaction, holding the row
        holder_pid = holder.info.backend_pid
        idle.execute("BEGIN")
        idle.execute("SELECT 1")  # idle in transaction, holding nothing: no load
        with (
            running(heavy_pg.dsn("app"), "SELECT burn(2000000000)"),
            running(heavy_pg.dsn("app"), "SELECT pg_sleep(60)"),
            running(heavy_pg.dsn("app"), "UPDATE convoy SET v = v + 10 WHERE id = 1"),
        ):
            wait_for(
                lambda: (
                    admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = 'app'"
                        " AND (query LIKE 'SELECT burn%' OR query LIKE 'SELECT pg_sleep%' OR wait_event_type = 'Lock')"
                    ).fetchone()[0]
                    == 3
                ),
                10,
                what="the three statements running",
            )
            got = sample(rt)
            holder.execute("ROLLBACK")
        idle.execute("ROLLBACK")
    active = {(r.wait_event_type, r.wait_event) for r in got.active if r.database == "app"}
    assert {(CPU, CPU), ("Timeout", "PgSleep"), ("Lock", "transactionid")} <= active, got
    assert len([r for r in got.active if r.database == "app"]) == 3, got  # idle in transaction: not load
    waiter = next(r for r in got.active if r.wait_event_type == "Lock")
    assert waiter.blocked_by == (holder_pid,)
    blocker = next(r for r in got.rows if r.pid == holder_pid)
    assert not blocker.active and blocker.state == "idle in transaction"
    assert all(r.application != "pgradar" for r in got.rows)
    if heavy_pg.major >= 14:
        assert all(r.queryid is not None for r in got.active if r.database == "app")
    else:
        assert all(r.queryid is None for r in got.rows)
    totals = agent.state.target("main").load.totals
    assert totals.samples == 1 and totals.waits[("app", "Lock", "transactionid")] == 1.0


def test_parallel_workers_count_for_their_leader(heavy_pg: Cluster) -> None:
    with superuser(heavy_pg, "app") as admin:
        admin.execute(
            "CREATE TABLE IF NOT EXISTS wide AS SELECT i, md5(i::text) AS t FROM generate_series(1, 400000) i"
        )
        admin.execute("ANALYZE wide")
    statement = (
        "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
        " SET min_parallel_table_scan_size = 0; SELECT count(*) FROM wide WHERE burn(3000) > 0"
    )
    with watch(("main", monitor_dsn(heavy_pg))) as agent, superuser(heavy_pg, "app") as admin:
        admin.execute(BURN)
        admin.execute("ALTER FUNCTION burn(int) PARALLEL SAFE")
        rt = agent.runtimes["main"]
        rt.run_collector("server")
        with running(heavy_pg.dsn("app"), statement) as errors:
            wait_for(
                lambda: (
                    errors
                    or admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'"
                    ).fetchone()[0]
                    > 0
                ),
                20,
                what="parallel workers",
            )
            assert not errors
            got = sample(rt)
            leader = admin.execute(
                "SELECT DISTINCT leader_pid FROM pg_stat_activity WHERE backend_type = 'parallel worker'"
            ).fetchone()[0]
    mine = [r for r in got.active if r.database == "app"]
    assert len(mine) >= 2, got  # the leader and at least one worker
    leaders = [r for r in mine if r.pid == leader]
    assert leaders, got
    if heavy_pg.major >= 14:
        assert {r.queryid for r in mine} == {leaders[0].queryid} and leaders[0].queryid is not None
