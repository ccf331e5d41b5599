"""What a catalog poll (indexes or foreign keys) costs the database: a full read against counters plus definitions.

    python bench/catalog_reads.py                      # indexes; PostgreSQL 13 and 18, one database of 650 tables
    python bench/catalog_reads.py --majors 18 --tables 200 --rounds 10
    python bench/catalog_reads.py --what foreign_keys  # the same tables with foreign keys between them

For each server it builds one database of the bench catalog (``bench/catalog.py``,
about 3 indexes per table; with ``--what foreign_keys`` also two foreign keys
per table and one partitioned table of 4 partitions per schema with one), then
runs, in alternating order over ``--rounds`` rounds so that the machine's load
falls on all alike:

- ``full``: indexes/indexes or foreign_keys/foreign_keys, every row with its
  definition (what every poll ran before);
- ``steady``: the counters query, what a poll runs when no definition changed;
- ``first``: the counters then the definitions of every row (the first poll);
- ``one changed``: the counters then the definitions of one row (after a DDL).

It prints the median wall time of each as the client sees it, and the server's
execution time per call from pg_stat_statements, with the load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402

# what each mode reads: the full query, the counters and definitions queries, the definitions'
# parameter, and the text that tells each query's pg_stat_statements entry apart (a substring it has,
# and one it has not)
READS = {
    "indexes": {
        "full": ("indexes", "indexes"),
        "counters": ("indexes", "counters"),
        "definitions": ("indexes", "definitions"),
        "parameter": "indexrelids",
        "marks": {
            "indexes/indexes": ("pg_get_indexdef(s.indexrelid)", None),
            "indexes/counters": ("AS stamp", None),
            "indexes/definitions": ("pg_get_indexdef(i.indexrelid)", None),
        },
    },
    "foreign_keys": {
        "full": ("foreign_keys", "foreign_keys"),
        "counters": ("foreign_keys", "counters"),
        "definitions": ("foreign_keys", "definitions"),
        "parameter": "constraint_oids",
        "marks": {
            "foreign_keys/foreign_keys": ("AS index_keys", "= ANY"),
            "foreign_keys/counters": ("AS stamp", None),
            "foreign_keys/definitions": ("AS index_keys", "AS size_bytes"),
        },
    },
}


def foreign_keys_script(size: catalog.Size, database: str) -> tuple[str, int]:
    """Foreign keys between one database's bench tables; returns (script, foreign keys).

    Each table references the one before it in its schema (a) and the
    schema's first table (b), and each schema gets a partitioned table of 4
    partitions referencing its first table, so the counters' per-table work
    and the partition sums are both exercised. NOT VALID: the bench rows do
    not satisfy the keys, and validation is not what is measured.
    """
    parts = ["SET LOCAL synchronous_commit = off;"]
    count = 0
    by_schema: dict[str, list[str]] = {}
    for db, schema, table in catalog.tables_of(size):
        if db == database:
            by_schema.setdefault(schema, []).append(f"{schema}.{table}")
    for schema, tables in by_schema.items():
        head = tables[0]
        for before, table in itertools.pairwise(tables):
            parts.append(f"ALTER TABLE {table} ADD FOREIGN KEY (a) REFERENCES {before} NOT VALID;")
            parts.append(f"ALTER TABLE {table} ADD FOREIGN KEY (b) REFERENCES {head} NOT VALID;")
            count += 2
        parts.append(
            f"CREATE TABLE {schema}.events (id bigint, at date NOT NULL, t_id bigint REFERENCES {head}) "
            "PARTITION BY RANGE (at);"
        )
        for year in range(2024, 2028):
            parts.append(
                f"CREATE TABLE {schema}.events_{year} PARTITION OF {schema}.events "
                f"FOR VALUES FROM ('{year}-01-01') TO ('{year + 1}-01-01');"
            )
        parts.append(f"CREATE INDEX ON {schema}.events (t_id);")
        count += 1
    return "\n".join(parts), count


def measure_server(
    conn, major: int, rounds: int, what: str = "indexes"
) -> tuple[int, dict[str, float], dict[str, tuple[float, int]]]:
    """(rows, median seconds per case, server (total ms, calls) per query) on one database."""
    from pgradar.agent import queries

    reads = READS[what]
    full = queries.resolve(*reads["full"], major).text
    counters = queries.resolve(*reads["counters"], major).text
    definitions = queries.resolve(*reads["definitions"], major).text
    parameter = reads["parameter"]
    oids = [r[1] for r in conn.execute(counters).fetchall()]

    def run_full() -> None:
        conn.execute(full).fetchall()

    def run_steady() -> None:
        conn.execute(counters).fetchall()

    def run_first() -> None:
        rows = conn.execute(counters).fetchall()
        conn.execute(definitions, {parameter: [r[1] for r in rows]}).fetchall()

    def run_one() -> None:
        conn.execute(counters).fetchall()
        conn.execute(definitions, {parameter: oids[:1]}).fetchall()

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
    server = {}
    for name, (mark, unless) in reads["marks"].items():
        ms, calls = conn.execute(
            "SELECT coalesce(sum(total_exec_time), 0)::float8, coalesce(sum(calls), 0)::int8 "
            "FROM pg_stat_statements WHERE strpos(query, %s) > 0 AND (%s::text IS NULL OR strpos(query, %s) = 0)",
            [mark, unless, unless],
        ).fetchone()
        server[name] = (ms, calls)
    return len(oids), {k: statistics.median(v) for k, v in times.items()}, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/catalog_reads.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--majors", default="13,18")
    parser.add_argument("--tables", type=int, default=650, help="tables in the database (about 3 indexes each)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--what", choices=sorted(READS), default="indexes", help="which catalog read to measure")
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
                if args.what == "foreign_keys":
                    script, _ = foreign_keys_script(size, database)
                    with conn.transaction():
                        conn.execute(script)
                    conn.execute("ANALYZE")
                results.append((major, *measure_server(conn, major, args.rounds, args.what)))
    load_after = os.getloadavg()
    print(
        f"\n## {args.what} poll, {args.rounds} rounds alternating; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    print(
        f"| server | {args.what} | full (before) | steady (counters) | first (counters + all definitions) "
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
            print(f"  PostgreSQL {major}: {name:<26} {ms / max(calls, 1):8.1f} ms over {calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
