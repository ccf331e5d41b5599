"""What one run of each collector costs the server, per 1,000 tables: the price of a shorter interval.

    python bench/intervals.py                        # PostgreSQL 18, one database of 1,000 tables
    python bench/intervals.py --majors 13,18 --tables 1000 --runs 20

For each server it builds one database of the bench catalog (``bench/catalog.py``:
about 3 indexes per table, and a workload of 4 statements per table in
pg_stat_statements), then has pgradar's own collectors read it as a
``pg_monitor`` role, the database filter set to that one database. Each
collector runs once cold (its first run reads definitions and sizes once), then
``--runs`` times, with 20 of the workload's statements run before each run so
that every poll finds counters and statements that changed, as a steady
poll does. It prints, per collector and run, the server's execution time
(pg_stat_statements) and the CPU of pgradar's backends (``/proc``), both per
1,000 tables, and what a minute costs at the default interval and at a
shorter one: the figures behind the README's "Shortening an interval".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
from run import CLUSTER_SETTINGS, cpu_seconds  # noqa: E402

ROLE, PASSWORD = "pgradar_intervals", "bench-S3cret-pw"
# Every collector of a PostgreSQL target, with an interval a user might shorten it to. The first ones
# read a row per table, index or statement (their cost follows the catalog: PER_OBJECT); the others
# read a handful of rows, or one per session.
MEASURED = {
    "tables": 60,
    "indexes": 60,
    "sizes": 60,
    "foreign_keys": 60,
    "statements": 15,
    "plans": 15,
    "bloat": 300,
    "settings": 60,
    "database": 15,
    "server": 5,
    "activity": 5,
    "sessions": 5,
    "replication": 5,
    "vacuum": 5,
    "load": 1,
}
PER_OBJECT = ("tables", "indexes", "sizes", "foreign_keys", "statements", "plans", "bloat")


def backend_cpu_ms(pids: list[int]) -> float:
    """CPU of these backends, in ms (10 ms ticks: many runs make it exact enough); a gone one counts 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total * 1000.0


def measure(major: int, tables: int, runs: int) -> list[tuple[str, float, float, float]]:
    """(collector, default interval, exec ms per run, backend CPU ms per run) on one server."""
    import psycopg

    from pgradar.agent.model.jobs import COLLECTOR_INTERVALS
    from pgradar.agent.runtime.agent import Agent
    from pgradar.agent.settings import config as configuration
    from pgradar.commands.embedded import Sandbox, find_installations

    size = catalog.Size(
        "intervals",
        databases=1,
        schemas_per_db=10,
        tables_per_schema=max(1, tables // 10),
        rows_per_table=50,
        statements=tables * 4,
        extra_calls=tables * 4,
        big_tables=0,
        big_rows=0,
        window_s=0,
    )
    out = []
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(find_installations()[major], f"pg{major}", settings=CLUSTER_SETTINGS)
        catalog.build(cluster.dsn, size, lambda m: None)
        catalog.run_workload(cluster.dsn, size, lambda m: None)
        database = catalog.database_names(size)[0]
        statements = [s for db, s in catalog.statements_of(size) if db == database]
        with psycopg.connect(cluster.dsn(database), autocommit=True) as su:
            su.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            su.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
        cfg = configuration.build(
            {
                "targets": [
                    {"name": "bench", "dsn": cluster.dsn(database, user=ROLE, password=PASSWORD)},
                ],
                "databases": {"include": [database]},
            }
        )
        agent = Agent(cfg)
        runtime = agent.runtimes["bench"]
        rng = random.Random(7)
        try:
            with psycopg.connect(cluster.dsn(database), autocommit=True) as work:
                runtime.run_collector("server")
                for name in MEASURED:
                    runtime.run_collector(name)  # cold: the one-time reads, and every session opened
                for name, _ in MEASURED.items():
                    pids = [
                        r[0]
                        for r in work.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", [ROLE]).fetchall()
                    ]
                    exec_before = _exec_ms(work)
                    cpu_before = backend_cpu_ms(pids)
                    for _ in range(runs):
                        for text in rng.sample(statements, 20):
                            work.execute(text.replace("{v}", str(rng.randint(1, 100))).encode())
                        runtime.run_collector(name)
                    exec_ms = (_exec_ms(work) - exec_before) / runs
                    cpu_ms = (backend_cpu_ms(pids) - cpu_before) / runs
                    status = runtime.state.collector(name)
                    if status.errors:
                        raise SystemExit(f"bench: the {name} collector failed: {status.last_error}")
                    out.append((name, COLLECTOR_INTERVALS[name], exec_ms, cpu_ms))
        finally:
            agent.stop()
    return out


def _exec_ms(conn: object) -> float:
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements s "
        "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s",
        [ROLE],
    ).fetchone()
    return float(row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/intervals.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--majors", default="18")
    parser.add_argument("--tables", type=int, default=1000, help="tables in the database (about 3 indexes each)")
    parser.add_argument("--runs", type=int, default=20, help="runs of each collector after its cold one")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = {int(m): measure(int(m), args.tables, args.runs) for m in args.majors.split(",")}
    per = 1000.0 / args.tables
    print(
        f"\n## one run of each collector on {args.tables:,} tables ({args.runs} runs each, after a cold one); "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    print(
        "| server | collector | exec ms per run | backend CPU ms per run | default interval | "
        "backend CPU ms a minute at the default | per 1,000 tables | per 1,000 tables at a shorter interval |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for major, rows in results.items():
        total = 0.0
        for name, interval, exec_ms, cpu_ms in rows:
            shorter = min(MEASURED[name], interval)
            a_minute = cpu_ms * 60 / interval
            total += a_minute
            scaled = f"{a_minute * per:.1f} | {cpu_ms * per * 60 / shorter:.1f} at {shorter:g} s |"
            print(
                f"| {major} | {name} | {exec_ms:.2f} | {cpu_ms:.2f} | {interval:g} s | {a_minute:.1f} | "
                + (scaled if name in PER_OBJECT else "- | - |")
            )
        print(f"| {major} | all | | | | {total:.1f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
