"""Query patterns and deadlocks on real servers (13 and 18): each kind planted, found, its fix applied,
gone on the next pass; a healthy look-alike beside it stays quiet."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime

import psycopg
import pytest
from support import HEAVY, MONITOR_ROLE, collect_and_classify, installation, monitor_dsn, prepare, superuser

from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT, Thresholds, with_overrides
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster, Installation, Sandbox, free_port

pytestmark = pytest.mark.heavy

BEFORE = ("server", "settings", "tables", "sizes", "database", "statements", "indexes", "auto_explain")
AFTER = ("statements", "database", "tables", "indexes", "plans", "auto_explain")


def runtime(cluster: Cluster, log: str | None = None, thresholds: Thresholds = DEFAULT) -> TargetRunner:
    target = TargetConfig("t", monitor_dsn(cluster), auto_explain_log=log, thresholds=thresholds)
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    for name in BEFORE:
        rt.run_collector(name)
    return rt


def next_pass(rt: TargetRunner, kind: str) -> list[Finding]:
    time.sleep(1.0)  # pg_stat_database lags pg_stat_statements (13-14: every 0.5 s)
    return [f for f in collect_and_classify(rt, AFTER) if f.kind == kind]


def queryid(cluster: Cluster, text_like: str) -> str:
    """The top-level statement's queryid (18 also records the statement inside pgradar's EXPLAIN, nested)."""
    with superuser(cluster) as conn:
        rows = conn.execute(
            "SELECT DISTINCT s.queryid::text, s.query FROM pg_stat_statements s JOIN pg_database d "
            "ON d.oid = s.dbid WHERE d.datname = 'app' AND s.query LIKE %s "
            "AND s.query NOT LIKE '%%pgradar%%' AND s.query NOT LIKE 'EXPLAIN%%' "
            "AND coalesce(to_jsonb(s) ->> 'toplevel', 'true') = 'true'",
            (text_like,),
        ).fetchall()
    assert len(rows) == 1, (text_like, rows)
    return str(rows[0][0])


def run_sql(cluster: Cluster, recommendation: str) -> None:
    """The recommendation's SQL lines (comments and guidance after ``--`` left out)."""
    with superuser(cluster, "app") as conn:
        for line in recommendation.splitlines():
            if line.strip() and not line.lstrip().startswith("--"):
                conn.execute(line)


# --- unbounded_result ----------------------------------------------------------------------


def test_unbounded_result_found_and_cleared_by_a_limit(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE big (id int PRIMARY KEY, region int, payload text);"
            "INSERT INTO big SELECT g, g % 20, md5(g::text) FROM generate_series(1, 12000) g; ANALYZE big"
        )
    rt = runtime(fresh_pg)
    with superuser(fresh_pg, "app") as conn:
        for _ in range(50):
            conn.execute("SELECT id, payload FROM big WHERE id > %s", (0,)).fetchall()
        for _ in range(100):  # look-alike: a report of 20 rows
            conn.execute("SELECT region, count(*) FROM big WHERE id > %s GROUP BY region", (0,)).fetchall()
    found = next_pass(rt, "unbounded_result")
    assert [f.queryid for f in found] == [queryid(fresh_pg, "SELECT id, payload FROM big WHERE id >%")], found
    f = found[0]
    assert f.database == "app" and f.evidence["rows_per_call"] == 12000 and f.evidence["calls"] == 50
    assert "LIMIT" in f.recommendation
    with superuser(fresh_pg, "app") as conn:  # the fix: a LIMIT, paged by key
        last = 0
        for _ in range(50):
            rows = conn.execute("SELECT id, payload FROM big WHERE id > %s ORDER BY id LIMIT 100", (last,)).fetchall()
            last = rows[-1][0]
    assert next_pass(rt, "unbounded_result") == []
    rt.close()


# --- offset_pagination -----------------------------------------------------------------------


def test_offset_pagination_found_and_cleared_by_keyset_and_its_index(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE events (id int PRIMARY KEY, at timestamptz NOT NULL, note text);"
            "INSERT INTO events SELECT g, now() - (g * 7919 % 60000) * interval '1 s', repeat('x', 150) "
            "FROM generate_series(1, 60000) g;"
            "CREATE TABLE lookups (id int PRIMARY KEY, label text);"
            "INSERT INTO lookups SELECT g, 'l' || g FROM generate_series(1, 200) g; ANALYZE"
        )
    rt = runtime(fresh_pg)
    with superuser(fresh_pg, "app") as conn:
        for page in range(60):
            conn.execute(
                "SELECT id, at FROM events ORDER BY at DESC LIMIT %s OFFSET %s", (20, 20000 + 20 * page)
            ).fetchall()
            conn.execute(
                "SELECT id, label FROM lookups ORDER BY id LIMIT %s OFFSET %s",  # look-alike: small table
                (20, (page % 9) * 20),
            ).fetchall()
    time.sleep(1.0)
    every = collect_and_classify(rt, AFTER)
    found = [f for f in every if f.kind == "offset_pagination"]
    assert [f.queryid for f in found] == [queryid(fresh_pg, "SELECT id, at FROM events ORDER BY at DESC%")], found
    f = found[0]
    assert (f.schema, f.relation) == ("public", "events")
    assert f.evidence["blocks_per_call"] >= 1000 and f.evidence["rows_per_call"] == 20
    assert "WHERE at < $last_at ORDER BY at DESC LIMIT $n" in f.recommendation
    # One index for one cause: created here, or by the table's seq_scan (when its counters show the scans
    # too) and pointed to here.
    index = "CREATE INDEX CONCURRENTLY events_at_idx ON public.events (at);"
    (creating,) = [g for g in every if index in g.recommendation]
    assert creating is f or f.recommendation.startswith("-- (at) is served by the index recommended for"), f
    run_sql(fresh_pg, creating.recommendation)
    with superuser(fresh_pg, "app") as conn:  # pages by key, as the recommendation says
        last = conn.execute("SELECT max(at) FROM events").fetchone()[0]
        for _ in range(60):
            rows = conn.execute(
                "SELECT id, at FROM events WHERE at < %s ORDER BY at DESC LIMIT %s", (last, 20)
            ).fetchall()
            last = rows[-1][1]
    assert next_pass(rt, "offset_pagination") == []
    rt.close()


# --- correlated_subquery ----------------------------------------------------------------------

CORRELATED = "SELECT o.id, (SELECT sum(l.qty) FROM lines l WHERE l.order_id = o.id) FROM {outer} o WHERE o.total > %s"


def test_correlated_subquery_found_and_cleared_by_its_index(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, total int);"
            "INSERT INTO orders SELECT g, g FROM generate_series(1, 6000) g;"
            "CREATE TABLE tiny (id int PRIMARY KEY, total int);"
            "INSERT INTO tiny SELECT g, g FROM generate_series(1, 10) g;"
            "CREATE TABLE lines (order_id int, qty int);"
            "INSERT INTO lines SELECT g % 6000 + 1, g % 7 FROM generate_series(1, 30000) g; ANALYZE;"
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}"
        )  # EXPLAIN needs it

    def workload() -> None:
        with superuser(fresh_pg, "app") as conn:
            for _ in range(20):
                conn.execute(CORRELATED.format(outer="orders"), (5995,)).fetchall()  # few rows run it, but
                conn.execute(CORRELATED.format(outer="tiny"), (0,)).fetchall()  # the plan expects 2,000

    rt = runtime(fresh_pg)
    workload()
    next_pass(rt, "correlated_subquery")  # the texts arrive with this poll; the plans with the next
    workload()
    time.sleep(1.0)
    every = collect_and_classify(rt, AFTER)
    found = [f for f in every if f.kind == "correlated_subquery"]
    plans = rt.state.current().plans
    assert [f.queryid for f in found] == [queryid(fresh_pg, "%FROM orders o WHERE o.total >%")], [
        (p.queryid, p.skipped, p.summary and p.summary.subplans) for p in plans.plans
    ]
    f = found[0]
    assert f.evidence["scanned_each_run"] == ["public.lines"] and f.evidence["outer_rows_estimate"] >= 1000
    # its index is the seq_scan's of the same statement (onefix): recommended there, pointed to here
    assert f.recommendation.startswith("-- (order_id) is served by the index recommended for seq_scan"), f
    # the statement's seq_scan recommends it; the table's (when its counters show the scans too) points there
    (scan,) = [
        s for s in every if s.kind == "seq_scan" and s.relation == "lines" and "CREATE INDEX" in s.recommendation
    ]
    assert "CREATE INDEX CONCURRENTLY lines_order_id_idx ON public.lines (order_id);" in scan.recommendation
    from support import pgradar  # `pgradar explain` of one statement says the same

    explained = pgradar(
        "explain",
        "--dsn",
        monitor_dsn(fresh_pg),
        "--database",
        "app",
        "--format",
        "json",
        "--query",
        CORRELATED.format(outer="orders").replace("%s", "$1"),
    )
    assert explained.returncode == 0, explained.stderr
    (said,) = [p for p in json.loads(explained.stdout)["problems"] if p["kind"] == "correlated_subquery"]
    assert said["recommendation"].startswith("-- (order_id) is served by"), said
    assert said["evidence"]["subplan"] == f.evidence["subplan"]
    run_sql(fresh_pg, scan.recommendation)
    workload()
    assert next_pass(rt, "correlated_subquery") == []  # an index changed: replanned, each run is a probe
    rt.close()


# --- deadlocks ---------------------------------------------------------------------------------


def _transfer(dsn: str, first: int, second: int, barrier: threading.Barrier, errors: list[str]) -> None:
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute("UPDATE accounts SET balance = balance - 10 WHERE id = %s", (first,))
            with contextlib.suppress(threading.BrokenBarrierError):  # in one order, the second waits at its first
                barrier.wait(3)
            conn.execute("UPDATE accounts SET balance = balance + 10 WHERE id = %s", (second,))
            conn.commit()
        except psycopg.errors.DeadlockDetected as exc:
            errors.append(str(exc))
            conn.rollback()


def transfers(cluster: Cluster, orders: tuple[tuple[int, int], tuple[int, int]]) -> list[str]:
    """Two transactions at once, each updating two accounts in the given order; the deadlock errors."""
    errors: list[str] = []
    barrier = threading.Barrier(2)
    workers = [threading.Thread(target=_transfer, args=(cluster.dsn("app"), a, b, barrier, errors)) for a, b in orders]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    return errors


def deadlock_count(cluster: Cluster, database: str) -> int:
    with superuser(cluster) as conn:
        return int(conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()[0])


def test_deadlocks_found_with_the_log_and_gone_with_one_lock_order(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg) as conn:
        conn.execute("CREATE DATABASE busy")
    for db in ("app", "busy"):
        with superuser(fresh_pg, db) as conn:
            conn.execute(
                "CREATE TABLE accounts (id int PRIMARY KEY, balance int);"
                "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g"
            )
    window = with_overrides(DEFAULT, {"deadlocks_window_s": 0})  # judge the latest interval alone
    rt = runtime(fresh_pg, log=str(fresh_pg.logfile), thresholds=window)
    with superuser(fresh_pg, "busy") as conn:  # look-alike: heavy updates, never a deadlock
        for i in range(2000):
            conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (i % 100 + 1,))
    assert len(transfers(fresh_pg, ((1, 2), (2, 1)))) == 1  # opposite orders: one is the victim
    deadline = time.monotonic() + 15  # counted when the victim's session flushes its statistics
    while deadlock_count(fresh_pg, "app") < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    found = next_pass(rt, "deadlocks")
    assert [(f.database, f.evidence["deadlocks"]) for f in found] == [("app", 1)], found
    f = found[0]
    assert f.severity == "warning" and f.evidence["relations"] == ["accounts"]
    assert set(f.evidence["statements"]) == {"UPDATE accounts SET balance = balance + ? WHERE id = ?"}
    assert "FOR UPDATE" in f.recommendation and "ORDER BY id" in f.recommendation
    # the fix: every transaction takes its locks in the same order
    assert transfers(fresh_pg, ((1, 2), (1, 2))) == []
    assert next_pass(rt, "deadlocks") == []
    assert deadlock_count(fresh_pg, "busy") == 0
    rt.close()


# --- partition_pruning_missed -------------------------------------------------------------------


def test_partition_pruning_missed_found_and_cleared_by_a_key_predicate(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE events (id int, account_id int, at date NOT NULL) PARTITION BY RANGE (at);"
            "CREATE TABLE events_q1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-04-01');"
            "CREATE TABLE events_q2 PARTITION OF events FOR VALUES FROM ('2026-04-01') TO ('2026-07-01');"
            "CREATE TABLE events_q3 PARTITION OF events FOR VALUES FROM ('2026-07-01') TO ('2026-10-01');"
            "CREATE TABLE events_q4 PARTITION OF events FOR VALUES FROM ('2026-10-01') TO ('2027-01-01');"
            "INSERT INTO events SELECT g, g % 500, date '2026-01-01' + g % 365 "
            "FROM generate_series(1, 40000) g; ANALYZE events;"
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}"
        )

    def workload(by_account: str, by_month: str) -> None:
        with superuser(fresh_pg, "app") as conn:
            for i in range(100):
                conn.execute(
                    by_account, (i,) if by_account.count("%s") == 1 else (i, date(2026, 5, 1), date(2026, 6, 1))
                ).fetchall()
                conn.execute(
                    by_month,
                    (datetime(2026, i % 12 + 1, 1),)
                    if by_month.count("%s") == 1
                    else (date(2026, 5, 1), date(2026, 6, 1)),
                ).fetchall()
                conn.execute(
                    "SELECT count(*) FROM events WHERE at >= %s AND at < %s",  # look-alike: prunes
                    (date(2026, 2, 1), date(2026, 3, 1)),
                ).fetchall()

    rt = runtime(fresh_pg)
    missed = "SELECT count(*) FROM events WHERE account_id = %s"
    wrapped = "SELECT count(*) FROM events WHERE date_trunc('month', at) = %s"  # the key inside a function
    workload(missed, wrapped)
    next_pass(rt, "partition_pruning_missed")  # the texts arrive with this poll; the plans with the next
    workload(missed, wrapped)
    found = sorted(next_pass(rt, "partition_pruning_missed"), key=lambda f: f.evidence["key_in_function"])
    assert [f.queryid for f in found] == [
        queryid(fresh_pg, "SELECT count(*) FROM events WHERE account_id =%"),
        queryid(fresh_pg, "SELECT count(*) FROM events WHERE date_trunc(%"),
    ], [(p.queryid, p.skipped, p.partitioned) for p in rt.state.current().plans.plans]
    assert "inside a function" in found[1].summary and found[1].evidence["partitions_scanned"] == 4
    f = found[0]
    assert (f.schema, f.relation) == ("public", "events")
    assert (f.evidence["partitions_scanned"], f.evidence["partitions"]) == (4, 4)
    assert f.evidence["partition_key"] == "RANGE (at)" and f.evidence["filter"] == "account_id = $1"
    assert "at >= $from AND at < $to" in f.recommendation
    fixed = "SELECT count(*) FROM events WHERE account_id = %s AND at >= %s AND at < %s"
    by_range = "SELECT count(*) FROM events WHERE at >= %s AND at < %s AND account_id > 0"
    workload(fixed, by_range)  # the rewrites: the key column compared with values
    assert next_pass(rt, "partition_pruning_missed") == []
    workload(fixed, by_range)  # and once their plans are made: still quiet
    assert next_pass(rt, "partition_pruning_missed") == []
    rt.close()


# --- judged by `pgradar run` (/problems, /metrics) and `pgradar check --window` ---------------------


def test_run_and_check_report_unbounded_results_and_deadlocks(fresh_pg: Cluster) -> None:
    from support import pgradar, sample, scrape, wait_for

    with superuser(fresh_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE big (id int PRIMARY KEY, payload text);"
            "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 12000) g;"
            "CREATE TABLE accounts (id int PRIMARY KEY, balance int);"
            "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 10) g; ANALYZE"
        )
    stop = threading.Event()

    def work() -> None:  # both problems all along, so that every window has them
        while not stop.is_set():
            with superuser(fresh_pg, "app") as conn:
                for _ in range(60):
                    conn.execute("SELECT id, payload FROM big WHERE id > %s", (0,)).fetchall()
            transfers(fresh_pg, ((1, 2), (2, 1)))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        target = f"main={monitor_dsn(fresh_pg)}"
        port = free_port()
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgradar.commands.cli",
                "run",
                "--listen",
                f"127.0.0.1:{port}",
                "--dsn",
                target,
                "--interval",
                "statements=2",
                "--interval",
                "database=2",
                "--interval",
                "classify=2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def kinds() -> set[str] | None:
                try:
                    found = {p["kind"] for p in json.loads(scrape(port, "/problems"))["problems"]}
                except OSError:
                    return None
                return found if {"unbounded_result", "deadlocks"} <= found else None

            wait_for(kinds, 90, what="unbounded_result and deadlocks on /problems")
            metrics = scrape(port)
        finally:
            run.terminate()
            run.communicate(timeout=30)
        assert sample(metrics, "pgradar_problem", kind="deadlocks", database="app") == 1.0
        assert sample(metrics, "pgradar_problem", kind="unbounded_result", database="app") == 1.0
        checked = pgradar("check", "--dsn", target, "--format", "json", "--fail-on", "never", "--window", "6")
    finally:
        stop.set()
        worker.join(30)
    assert checked.returncode == 0, checked.stderr
    problems = json.loads(checked.stdout)["problems"]
    assert {"unbounded_result", "deadlocks"} <= {p["kind"] for p in problems}, problems
    (dead,) = [p for p in problems if p["kind"] == "deadlocks"]
    assert dead["database"] == "app" and dead["evidence"]["deadlocks"] >= 1


@pytest.fixture(params=tuple(v for v in HEAVY if v >= 15) or (18,), ids=lambda v: f"pg{v}")
def jsonlog_pg(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    """A cluster whose logging collector writes jsonlog (15+) to log/postgresql.json."""
    cluster = sandbox.cluster(
        installation(installations, request.param),
        f"dljson{request.param}",
        settings={
            "logging_collector": "on",
            "log_destination": "'jsonlog'",
            "log_filename": "'postgresql.log'",
            "log_file_mode": "0644",
        },
    )
    prepare(cluster)
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def test_deadlock_reports_from_jsonlog_name_their_database(jsonlog_pg: Cluster) -> None:
    log = jsonlog_pg.datadir / "log" / "postgresql.json"
    with superuser(jsonlog_pg, "app") as conn:
        conn.execute(
            "CREATE TABLE accounts (id int PRIMARY KEY, balance int);"
            "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 10) g"
        )
    rt = runtime(jsonlog_pg, log=str(log), thresholds=with_overrides(DEFAULT, {"deadlocks_window_s": 0}))
    assert len(transfers(jsonlog_pg, ((1, 2), (2, 1)))) == 1
    wait_until = time.monotonic() + 15
    while deadlock_count(jsonlog_pg, "app") < 1 and time.monotonic() < wait_until:
        time.sleep(0.5)
    (f,) = next_pass(rt, "deadlocks")
    (report,) = f.evidence["reports"]
    assert report["database"] == "app" and report["relations"] == ["accounts"]
    assert report["statements"] == ["UPDATE accounts SET balance = balance + ? WHERE id = ?"] * 2
    assert len(report["waits"]) == 2 and f.evidence["evidence_from"].endswith("and the server log")
    rt.close()
