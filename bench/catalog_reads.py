"""What the catalog reads of a poll cost the database: full reads against stamps plus reads of what changed.

    python bench/catalog_reads.py                      # PostgreSQL 13 and 18, one database of 650 tables
    python bench/catalog_reads.py --majors 18 --tables 200 --rounds 10
    python bench/catalog_reads.py --majors 18 --before main   # adds the indexes and tables polls as main had them
    python bench/catalog_reads.py --what sizes         # one family of cases (indexes, sizes, foreign_keys)
    python bench/catalog_reads.py --what foreign_keys  # the same tables with foreign keys between them
    python bench/catalog_reads.py --what tables --before 76d2a1c  # the tables poll, and as 76d2a1c had it

For each server it builds one database of the bench catalog (``bench/catalog.py``,
about 3 indexes per table; with ``--what foreign_keys`` also two foreign keys,
``NOT VALID``, per table and one partitioned table of 4 partitions per schema
with one, which the other families then see too), then runs each case of the
families ``--what`` names (indexes and sizes unless told) in alternating order
over ``--rounds`` rounds so that the machine's load falls on all alike, each
time on a fresh connection (``cold``: the backend builds a relation cache entry
for every relation a size function opens) and once more on it (``warm``):

- indexes ``full``: indexes/indexes, every index with its definition and size;
- indexes ``steady``: indexes/counters, what a poll runs when no definition or size changed;
- indexes ``first``: indexes/counters, then indexes/definitions and indexes/sizes of every index;
- indexes ``one changed``: indexes/counters, then the definition and size of one index;
- indexes ``steady (REV)``, with ``--before REV``: indexes/counters as REV had it;
- sizes ``full``: sizes/tables, pg_table_size of every table (what every sizes poll ran before);
- sizes ``steady``: sizes/table_stamps, what a sizes poll runs when no size may have changed;
- sizes ``first``: sizes/table_stamps, then sizes/table_sizes of every table;
- sizes ``one changed``: sizes/table_stamps, then sizes/table_sizes of one table;
- foreign_keys ``full``: foreign_keys/foreign_keys, every key with its definition (what every poll ran before);
- foreign_keys ``steady``: foreign_keys/counters, what a poll runs when no definition changed;
- foreign_keys ``first``: foreign_keys/counters, then foreign_keys/definitions of every key;
- foreign_keys ``one changed``: foreign_keys/counters, then foreign_keys/definitions of one key;
- tables ``steady``: tables/tables, the counters of every table (what every tables poll runs);
- tables ``steady (REV)``, with ``--before REV``: tables/tables as REV had it.

It prints the median wall time of each as the client sees it, cold and warm,
and the server's execution time per call from pg_stat_statements, with the
load average.
"""

from __future__ import annotations

import argparse
import itertools
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


def query_at(rev: str, collector: str, name: str, major: int) -> str:
    """``collector/name`` as revision ``rev`` had it for this major (the highest variant not above it)."""
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:agent/collect/sql/{collector}"],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
    ).stdout.decode()
    since = max(
        int(n.split(".")[1]) for n in listing.split() if n.startswith(f"{name}.") and int(n.split(".")[1]) <= major
    )
    return subprocess.run(
        ["git", "show", f"{rev}:agent/collect/sql/{collector}/{name}.{since}.sql"],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
    ).stdout.decode()


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


# The families of cases --what chooses from; the first two run unless told.
FAMILIES = ("indexes", "sizes", "foreign_keys", "tables")
DEFAULT_WHAT = "indexes,sizes"

# A case is the statements one poll sends, in order, with their parameters.
Case = list[tuple[str, dict[str, list[int]] | None]]


def cases_for(major: int, what: list[str], before: str | None, oids: dict[str, list[int]]) -> dict[str, Case]:
    """The cases of the families in ``what``; ``oids`` holds each family's objects (as its counters list them)."""
    from pgradar.agent.collect import queries

    def q(collector: str, name: str) -> str:
        return tagged(queries.resolve(collector, name, major).text, f"{collector}/{name}")

    cases: dict[str, Case] = {}
    if "indexes" in what:
        full, counters, definitions, index_sizes = (
            q("indexes", n) for n in ("indexes", "counters", "definitions", "sizes")
        )
        every, one = {"indexrelids": oids["indexes"]}, {"indexrelids": oids["indexes"][:1]}
        cases |= {
            "indexes full": [(full, None)],
            "indexes steady": [(counters, None)],
            "indexes first": [(counters, None), (definitions, every), (index_sizes, every)],
            "indexes one changed": [(counters, None), (definitions, one), (index_sizes, one)],
        }
    if "sizes" in what:
        tables, stamps, table_sizes = (q("sizes", n) for n in ("tables", "table_stamps", "table_sizes"))
        cases |= {
            "sizes full": [(tables, None)],
            "sizes steady": [(stamps, None)],
            "sizes first": [(stamps, None), (table_sizes, {"relids": oids["sizes"]})],
            "sizes one changed": [(stamps, None), (table_sizes, {"relids": oids["sizes"][:1]})],
        }
    if "foreign_keys" in what:
        full, counters, definitions = (q("foreign_keys", n) for n in ("foreign_keys", "counters", "definitions"))
        keys = oids["foreign_keys"]
        cases |= {
            "foreign_keys full": [(full, None)],
            "foreign_keys steady": [(counters, None)],
            "foreign_keys first": [(counters, None), (definitions, {"constraint_oids": keys})],
            "foreign_keys one changed": [(counters, None), (definitions, {"constraint_oids": keys[:1]})],
        }
    if "tables" in what:
        cases["tables steady"] = [(q("tables", "tables"), None)]
    if before and "indexes" in what:
        at = query_at(before, "indexes", "counters", major)
        cases[f"indexes steady ({before})"] = [(tagged(at, f"indexes/counters@{before}"), None)]
    if before and "tables" in what:
        at = query_at(before, "tables", "tables", major)
        cases[f"tables steady ({before})"] = [(tagged(at, f"tables/tables@{before}"), None)]
    return cases


# Where each family's counters query lists its objects: (collector, query); the oid is the second column.
LISTS = {
    "indexes": ("indexes", "counters"),
    "sizes": ("sizes", "table_stamps"),
    "foreign_keys": ("foreign_keys", "counters"),
    "tables": ("tables", "tables"),
}


def measure_server(
    dsn: str, major: int, rounds: int, what: list[str], before: str | None
) -> tuple[dict[str, int], dict[str, tuple[float, float]], dict[str, tuple[float, int]]]:
    """(objects per family, median (cold, warm) seconds per case, server (total ms, calls) per query)."""
    import psycopg

    from pgradar.agent.collect import queries

    with psycopg.connect(dsn, autocommit=True) as conn:
        oids = {
            family: [r[1] for r in conn.execute(queries.resolve(*LISTS[family], major).text).fetchall()]
            for family in what
        }
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    cases = cases_for(major, what, before, oids)
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
    return {family: len(v) for family, v in oids.items()}, medians, server


def add_foreign_keys(dsn: str, size: catalog.Size, database: str) -> int:
    """Builds ``foreign_keys_script`` in one transaction, then ANALYZE; returns the foreign keys added."""
    import psycopg

    script, count = foreign_keys_script(size, database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(script)
        conn.execute("ANALYZE")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/catalog_reads.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--majors", default="13,18")
    parser.add_argument("--tables", type=int, default=650, help="tables in the database (about 3 indexes each)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", help="a git revision: also time indexes/counters and tables/tables as it had them")
    parser.add_argument(
        "--what",
        default=DEFAULT_WHAT,
        help=f"the families of cases, comma-separated, of {', '.join(FAMILIES)} (default {DEFAULT_WHAT}); "
        "foreign_keys first adds foreign keys to the tables",
    )
    args = parser.parse_args(argv)
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    if not what or set(what) - set(FAMILIES):
        parser.error(f"--what: a comma-separated list of {', '.join(FAMILIES)}, not {args.what!r}")
    if args.before and not {"indexes", "tables"} & set(what):
        parser.error("--before times the indexes and tables polls as REV had them: name indexes or tables in --what")

    from pgradar.commands.embedded import Sandbox, find_installations

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
            if "foreign_keys" in what:
                add_foreign_keys(cluster.dsn(database), size, database)
            results.append((major, *measure_server(cluster.dsn(database), major, args.rounds, what, args.before)))
    load_after = os.getloadavg()
    print(
        f"\n## catalog reads, {args.rounds} rounds alternating, each on a fresh connection (cold) and again (warm); "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)\n"
    )
    print("| server | case | objects | cold | warm |")
    print("|---|---|---|---|---|")
    for major, counts, med, _ in results:
        for name, (cold, warm) in med.items():
            n = counts[name.split()[0]]
            print(f"| PostgreSQL {major} | {name} | {n:,} | {cold * 1000:.1f} ms | {warm * 1000:.1f} ms |")
    print("\nserver execution time per call (pg_stat_statements; cold and warm calls together):")
    for major, _, _, server in results:
        for name, (ms, calls) in server.items():
            print(f"  PostgreSQL {major}: {name:<28} {ms / max(calls, 1):8.1f} ms over {calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
