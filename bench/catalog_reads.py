"""What the catalog reads of a poll cost the database: full reads against stamps plus reads of what changed.

    python bench/catalog_reads.py                      # PostgreSQL 13 and 18, one database of 650 tables
    python bench/catalog_reads.py --majors 18 --tables 200 --rounds 10
    python bench/catalog_reads.py --majors 18 --before main   # adds the indexes poll as REV had it

For each server it builds one database of the bench catalog (``bench/catalog.py``,
about 3 indexes per table), then runs each case in alternating order over
``--rounds`` rounds so that the machine's load falls on all alike, each time on
a fresh connection (``cold``: the backend builds a relation cache entry for
every relation a size function opens) and once more on it (``warm``):

- indexes ``full``: indexes/indexes, every index with its definition and size;
- indexes ``steady``: indexes/counters, what a poll runs when no definition or size changed;
- indexes ``first``: indexes/counters, then indexes/definitions and indexes/sizes of every index;
- indexes ``one changed``: indexes/counters, then the definition and size of one index;
- indexes ``steady (REV)``, with ``--before REV``: indexes/counters as REV had it (sizes read every poll);
- sizes ``full``: sizes/tables, pg_table_size of every table (what every sizes poll ran before);
- sizes ``steady``: sizes/table_stamps, what a sizes poll runs when no size may have changed;
- sizes ``first``: sizes/table_stamps, then sizes/table_sizes of every table;
- sizes ``one changed``: sizes/table_stamps, then sizes/table_sizes of one table.

It prints the median wall time of each as the client sees it, cold and warm,
and the server's execution time per call from pg_stat_statements, with the
load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402


def tagged(text: str, name: str) -> str:
    """``text`` with a trailing comment naming it: pg_stat_statements keeps it (a leading one is lost on 18)."""
    return f"{text.rstrip().rstrip(';')}\n/* bench:{name} */"


def counters_at(rev: str, major: int) -> str:
    """indexes/counters as revision ``rev`` had it for this major (the highest variant not above it)."""
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:agent/sql/indexes"], cwd=HERE.parent, check=True, capture_output=True
    ).stdout.decode()
    since = max(
        int(n.split(".")[1]) for n in listing.split() if n.startswith("counters.") and int(n.split(".")[1]) <= major
    )
    return subprocess.run(
        ["git", "show", f"{rev}:agent/sql/indexes/counters.{since}.sql"],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
    ).stdout.decode()


# A case is the statements one poll sends, in order, with their parameters.
Case = list[tuple[str, dict[str, list[int]] | None]]


def cases_for(major: int, before: str | None, indexrelids: list[int], relids: list[int]) -> dict[str, Case]:
    from pgradar.agent import queries

    def q(collector: str, name: str) -> str:
        return tagged(queries.resolve(collector, name, major).text, f"{collector}/{name}")

    full, counters, definitions, index_sizes = (
        q("indexes", n) for n in ("indexes", "counters", "definitions", "sizes")
    )
    tables, stamps, table_sizes = (q("sizes", n) for n in ("tables", "table_stamps", "table_sizes"))
    one_index, one_table = {"indexrelids": indexrelids[:1]}, {"relids": relids[:1]}
    cases: dict[str, Case] = {
        "indexes full": [(full, None)],
        "indexes steady": [(counters, None)],
        "indexes first": [
            (counters, None),
            (definitions, {"indexrelids": indexrelids}),
            (index_sizes, {"indexrelids": indexrelids}),
        ],
        "indexes one changed": [(counters, None), (definitions, one_index), (index_sizes, one_index)],
        "sizes full": [(tables, None)],
        "sizes steady": [(stamps, None)],
        "sizes first": [(stamps, None), (table_sizes, {"relids": relids})],
        "sizes one changed": [(stamps, None), (table_sizes, one_table)],
    }
    if before:
        cases[f"indexes steady ({before})"] = [(tagged(counters_at(before, major), f"indexes/counters@{before}"), None)]
    return cases


def measure_server(
    dsn: str, major: int, rounds: int, before: str | None
) -> tuple[int, int, dict[str, tuple[float, float]], dict[str, tuple[float, int]]]:
    """(indexes, tables, median (cold, warm) seconds per case, server (total ms, calls) per query) on one database."""
    import psycopg

    from pgradar.agent import queries

    with psycopg.connect(dsn, autocommit=True) as conn:
        indexrelids = [r[1] for r in conn.execute(queries.resolve("indexes", "counters", major).text).fetchall()]
        relids = [r[1] for r in conn.execute(queries.resolve("sizes", "table_stamps", major).text).fetchall()]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    cases = cases_for(major, before, indexrelids, relids)
    cold: dict[str, list[float]] = {k: [] for k in cases}
    warm: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1")
                for times in (cold, warm):
                    t0 = time.perf_counter()
                    for text, params in cases[name]:
                        conn.execute(text, params).fetchall()
                    times[name].append(time.perf_counter() - t0)
    server = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for query, ms, calls in conn.execute(
            "SELECT substring(query FROM '/\\* bench:(.*) \\*/'), sum(total_exec_time)::float8, sum(calls)::int8 "
            "FROM pg_stat_statements WHERE query LIKE '%/* bench:%' GROUP BY 1 ORDER BY 1"
        ).fetchall():
            server[query] = (ms, calls)
    medians = {k: (statistics.median(cold[k]), statistics.median(warm[k])) for k in cases}
    return len(indexrelids), len(relids), medians, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/catalog_reads.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--majors", default="13,18")
    parser.add_argument("--tables", type=int, default=650, help="tables in the database (about 3 indexes each)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", help="a git revision: also time indexes/counters as it had it")
    args = parser.parse_args(argv)

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
            results.append((major, *measure_server(cluster.dsn(database), major, args.rounds, args.before)))
    load_after = os.getloadavg()
    print(
        f"\n## catalog reads, {args.rounds} rounds alternating, each on a fresh connection (cold) and again (warm); "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    print("| server | case | relations | cold | warm |")
    print("|---|---|---|---|---|")
    for major, n_indexes, n_tables, med, _ in results:
        for name, (cold, warm) in med.items():
            n = n_indexes if name.startswith("indexes") else n_tables
            print(f"| PostgreSQL {major} | {name} | {n:,} | {cold * 1000:.1f} ms | {warm * 1000:.1f} ms |")
    print("\nserver execution time per call (pg_stat_statements; cold and warm calls together):")
    for major, _, _, _, server in results:
        for name, (ms, calls) in server.items():
            print(f"  PostgreSQL {major}: {name:<28} {ms / max(calls, 1):8.1f} ms over {calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
