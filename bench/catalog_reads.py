"""What an indexes poll costs the database: a full read against counters plus definitions of what changed.

    python bench/catalog_reads.py                      # PostgreSQL 13 and 18, one database of 650 tables
    python bench/catalog_reads.py --majors 18 --tables 200 --rounds 10

For each server it builds one database of the bench catalog (``bench/catalog.py``,
about 3 indexes per table), then runs, in alternating order over ``--rounds``
rounds so that the machine's load falls on all alike:

- ``full``: indexes/indexes, every index with its definition (what every poll ran before);
- ``steady``: indexes/counters, what a poll runs when no definition changed;
- ``first``: indexes/counters then indexes/definitions for every index (the first poll);
- ``one changed``: indexes/counters then indexes/definitions for one index (after a DDL).

It prints the median wall time of each as the client sees it, and the server's
execution time per call from pg_stat_statements, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402


def measure_server(conn, major: int, rounds: int) -> tuple[int, dict[str, float], dict[str, tuple[float, int]]]:
    """(indexes, median seconds per case, server (total ms, calls) per query) on one database."""
    from pgradar.agent import queries

    full = queries.resolve("indexes", "indexes", major).text
    counters = queries.resolve("indexes", "counters", major).text
    definitions = queries.resolve("indexes", "definitions", major).text
    oids = [r[1] for r in conn.execute(counters).fetchall()]

    def run_full() -> None:
        conn.execute(full).fetchall()

    def run_steady() -> None:
        conn.execute(counters).fetchall()

    def run_first() -> None:
        rows = conn.execute(counters).fetchall()
        conn.execute(definitions, {"indexrelids": [r[1] for r in rows]}).fetchall()

    def run_one() -> None:
        conn.execute(counters).fetchall()
        conn.execute(definitions, {"indexrelids": oids[:1]}).fetchall()

    cases = {"full": run_full, "steady": run_steady, "first": run_first, "one changed": run_one}
    times: dict[str, list[float]] = {k: [] for k in cases}
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.execute("SELECT pg_stat_statements_reset()")
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            t0 = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - t0)
    marks = {
        "indexes/indexes": "pg_get_indexdef(s.indexrelid)",
        "indexes/counters": "AS stamp",
        "indexes/definitions": "pg_get_indexdef(i.indexrelid)",
    }
    server = {}
    for name, mark in marks.items():
        ms, calls = conn.execute(
            "SELECT coalesce(sum(total_exec_time), 0)::float8, coalesce(sum(calls), 0)::int8 "
            "FROM pg_stat_statements WHERE strpos(query, %s) > 0",
            [mark],
        ).fetchone()
        server[name] = (ms, calls)
    return len(oids), {k: statistics.median(v) for k, v in times.items()}, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/catalog_reads.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--majors", default="13,18")
    parser.add_argument("--tables", type=int, default=650, help="tables in the database (about 3 indexes each)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    import psycopg

    from pgradar.agent.embedded import Sandbox, find_installations

    found = find_installations()
    size = catalog.Size(
        "reads",
        databases=1,
        schemas_per_db=10,
        tables_per_schema=max(1, args.tables // 10),
        rows_per_table=50,
        statements=10,
        extra_calls=0,
        big_tables=0,
        big_rows=0,
        window_s=0,
    )
    load_before = os.getloadavg()
    results = []
    with Sandbox() as sandbox:
        for major in [int(m) for m in args.majors.split(",") if int(m) in found]:
            cluster = sandbox.cluster(found[major], f"pg{major}", settings={"max_locks_per_transaction": "512"})
            catalog.build(lambda db, c=cluster: c.dsn(db), size, lambda m: None)
            database = catalog.database_names(size)[0]
            with psycopg.connect(cluster.dsn(database), autocommit=True) as conn:
                results.append((major, *measure_server(conn, major, args.rounds)))
    load_after = os.getloadavg()
    print(
        f"\n## indexes poll, {args.rounds} rounds alternating; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    print(
        "| server | indexes | full (before) | steady (counters) | first (counters + all definitions) "
        "| one changed | steady / full |"
    )
    print("|---|---|---|---|---|---|---|")
    for major, n, med, _ in results:
        print(
            f"| PostgreSQL {major} | {n:,} | {med['full'] * 1000:.1f} ms | {med['steady'] * 1000:.1f} ms | "
            f"{med['first'] * 1000:.1f} ms | {med['one changed'] * 1000:.1f} ms | "
            f"{med['steady'] / med['full']:.0%} |"
        )
    print("\nserver execution time per call (pg_stat_statements):")
    for major, _, _, server in results:
        for name, (ms, calls) in server.items():
            print(f"  PostgreSQL {major}: {name:<20} {ms / max(calls, 1):8.1f} ms over {calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
