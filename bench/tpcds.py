"""Index advice efficacy on TPC-DS: a public workload whose 99 queries nobody here wrote.

The data and the queries come from DuckDB's ``tpcds`` extension, installed
as a PyPI package (``duckdb-extension-tpcds``): nothing is downloaded at run
time. The tables are loaded into a PostgreSQL of the sandbox with primary
keys only; every query runs twice (the first warms the cache; the second is
timed, the median of ``--repeat`` runs, with a timeout each; one that
cannot finish is listed, not hidden);
one ``pgradar check`` plans them all (every statement counts:
``statement_min_calls`` 1, ``explain_top_statements`` 200); every CREATE
INDEX it recommends runs as printed; the queries run again; a second
``check`` says whether anything is left to merge. Tables with pandas (the
benchmark's, not the agent's). PostgreSQL 15 or later (the load flushes its
counters before ANALYZE).

    .venv/bin/pip install duckdb==1.5.5 duckdb-extension-tpcds==1.5.5 pandas
    .venv/bin/python bench/tpcds.py [--sf 0.1] [--major 18] [--timeout 20]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FACT_KEYS = {
    "store_sales": ("ss_item_sk", "ss_ticket_number"),
    "store_returns": ("sr_item_sk", "sr_ticket_number"),
    "catalog_sales": ("cs_item_sk", "cs_order_number"),
    "catalog_returns": ("cr_item_sk", "cr_order_number"),
    "web_sales": ("ws_item_sk", "ws_order_number"),
    "web_returns": ("wr_item_sk", "wr_order_number"),
    "inventory": ("inv_date_sk", "inv_item_sk", "inv_warehouse_sk"),
}
INDEX_BYTES = (
    "SELECT sum(pg_indexes_size(oid)) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
)
INDEX_KINDS = {"seq_scan", "missing_fk_index", "correlated_subquery", "offset_pagination", "non_sargable_predicate"}
MONITOR = "bench_monitor"


def duckdb_tpcds(sf: float) -> tuple[Any, list[tuple[int, str]]]:
    """DuckDB with the tpcds extension loaded from its package, the data generated, and the 99 queries."""
    import duckdb
    import duckdb_extension_tpcds

    path = (
        Path(duckdb_extension_tpcds.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "tpcds.duckdb_extension"
    )
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"})
    con.execute(f"LOAD '{path}'")
    con.execute(f"CALL dsdgen(sf={sf})")
    return con, [(int(n), str(q)) for n, q in con.execute("SELECT query_nr, query FROM tpcds_queries()").fetchall()]


def postgres_query(text: str) -> str:
    """DuckDB's spelling of the few things PostgreSQL writes otherwise (``INTERVAL 30 DAY``)."""
    return re.sub(r"INTERVAL\s+(\d+)\s+(DAY|DAYS)\b", r"INTERVAL '\1 days'", text, flags=re.IGNORECASE)


def load(con: Any, dsn: str) -> dict[str, int]:
    """Every table, its columns typed as DuckDB has them, primary keys only; rows through COPY."""
    import psycopg

    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    rows: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as pg:
        for table in tables:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            key = FACT_KEYS.get(table) or ((cols[0][0],) if cols[0][0].endswith("_sk") else ())
            defs = ", ".join(f"{c} {t.replace('VARCHAR', 'text')}" for c, t in cols)
            pk = f", PRIMARY KEY ({', '.join(key)})" if key else ""
            pg.execute(f"CREATE TABLE {table} ({defs}{pk})")
            frame = con.execute(f"SELECT * FROM {table}").df()
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
            with pg.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(buffer.getvalue())
            rows[table] = len(frame)
        pg.execute("SELECT pg_stat_force_next_flush()")  # the load's counters first: ANALYZE then sees no change
        time.sleep(1.0)
        pg.execute("VACUUM ANALYZE")
        pg.execute(f"CREATE ROLE {MONITOR} LOGIN PASSWORD 'bench-pw' IN ROLE pg_monitor")
        pg.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR}")
    return rows


def run_queries(dsn: str, queries: list[tuple[int, str]], timeout_s: float) -> dict[int, float | None]:
    """Each query's time in ms (None: cancelled at the timeout, or refused by PostgreSQL)."""
    import psycopg

    out: dict[int, float | None] = {}
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f"SET statement_timeout = '{int(timeout_s * 1000)}ms'")
        for n, text in queries:
            start = time.perf_counter()
            try:
                pg.execute(postgres_query(text)).fetchall()
                out[n] = (time.perf_counter() - start) * 1000
            except psycopg.Error:
                out[n] = None
    return out


def median_runs(dsn: str, queries: list[tuple[int, str]], timeout_s: float, repeat: int) -> dict[int, float | None]:
    """Each query's median time over ``repeat`` runs (None if any run did not finish): one run is noise here."""
    runs = [run_queries(dsn, queries, timeout_s) for _ in range(repeat)]
    out: dict[int, float | None] = {}
    for n, _ in queries:
        times = [r[n] for r in runs]
        out[n] = None if any(t is None for t in times) else sorted(t for t in times if t is not None)[len(times) // 2]
    return out


def check(dsn: str, config: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgradar.commands.cli",
            "check",
            "--config",
            str(config),
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    problems: list[dict[str, Any]] = json.loads(result.stdout)["problems"]
    return problems


def fix_lines(problems: list[dict[str, Any]]) -> list[str]:
    """Every statement of every index recommendation, as printed (comments left out)."""
    return [
        line
        for p in problems
        if p["kind"] in INDEX_KINDS
        for line in str(p["recommendation"]).splitlines()
        if line.strip() and not line.startswith("--")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=0.1)
    parser.add_argument("--major", type=int, default=18)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per query")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query, before and after (median)")
    args = parser.parse_args()
    import pandas as pd
    import psycopg

    from pgradar.commands.embedded import Sandbox, find_installations

    con, queries = duckdb_tpcds(args.sf)
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(find_installations()[args.major], "tpcds")
        with psycopg.connect(cluster.dsn(), autocommit=True) as pg:
            pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            pg.execute("CREATE DATABASE tpcds")
        with psycopg.connect(cluster.dsn("tpcds"), autocommit=True) as pg:
            pg.execute("CREATE EXTENSION pg_stat_statements")  # check reads it in the target's database
        rows = load(con, cluster.dsn("tpcds"))
        with psycopg.connect(cluster.dsn(), autocommit=True) as pg:
            pg.execute("SELECT pg_stat_statements_reset()")
        run_queries(cluster.dsn("tpcds"), queries, args.timeout)  # warm: both timed runs find the data cached
        before = median_runs(cluster.dsn("tpcds"), queries, args.timeout, args.repeat)
        monitor = cluster.dsn("tpcds", user=MONITOR, password="bench-pw")
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "pgradar.yaml"
            config.write_text(
                f"targets:\n  - name: tpcds\n    dsn: '{monitor}'\n"
                "thresholds: {statement_min_calls: 1, explain_top_statements: 200, explain_budget_s: 600}\n"
            )
            first = check(monitor, config)
            fixes = fix_lines(first)
            with psycopg.connect(cluster.dsn("tpcds"), autocommit=True) as pg:
                size_before = pg.execute(INDEX_BYTES).fetchone()[0]
                failed = []
                for line in fixes:
                    try:
                        pg.execute(line)
                    except psycopg.Error as exc:
                        failed.append(f"{line}: {exc}")
                pg.execute("ANALYZE")
                size_after = pg.execute(INDEX_BYTES).fetchone()[0]
            with psycopg.connect(cluster.dsn(), autocommit=True) as pg:
                pg.execute("SELECT pg_stat_statements_reset()")
            after = median_runs(cluster.dsn("tpcds"), queries, args.timeout, args.repeat)
            second = check(monitor, config)
    frame = pd.DataFrame({"before_ms": pd.Series(before), "after_ms": pd.Series(after)})
    frame.index.name = "query"
    frame["ratio"] = frame["after_ms"] / frame["before_ms"]
    both = frame.dropna()
    creates = [f for f in fixes if f.startswith("CREATE INDEX")]
    print(
        f"TPC-DS sf={args.sf} on PostgreSQL {args.major}, {len(queries)} queries, median of {args.repeat} runs, "
        f"timeout {args.timeout:.0f} s each, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"tables: {len(rows)}, rows: {sum(rows.values()):,}")
    print(f"recommended: {len(creates)} CREATE INDEX ({len(fixes)} statements); failed to run: {len(failed)}")
    for f in failed:
        print("  failed:", f)
    for c in creates:
        print("  ", c)
    print(f"index bytes added: {(size_after or 0) - (size_before or 0):,}")
    print(
        f"total of the queries that finished both times: {both['before_ms'].sum():,.0f} ms before, "
        f"{both['after_ms'].sum():,.0f} ms after"
    )
    slower = both[(both["ratio"] > 1.2) & (both["after_ms"] - both["before_ms"] > 20)]
    print(f"slower by more than 20% and 20 ms: {len(slower)}")
    if len(slower):
        print(slower.round(1).to_string())
    faster = both[both["ratio"] < 0.8].sort_values("ratio")
    print(f"faster by more than 20%: {len(faster)}")
    if len(faster):
        print(faster.round(2).to_string())
    unfinished = frame[frame["before_ms"].isna() | frame["after_ms"].isna()]
    missing = f"{frame['before_ms'].isna().sum()} / {frame['after_ms'].isna().sum()}"
    print(f"not finished within {args.timeout:.0f} s (or refused), before / after: {missing}")
    if len(unfinished):
        print(unfinished.round(1).to_string())
    left = [
        p
        for p in second
        if p["kind"] == "duplicate_index" or (p["kind"] in INDEX_KINDS and "CREATE INDEX" in p["recommendation"])
    ]
    wanting = sum(p["kind"] in INDEX_KINDS and "CREATE INDEX" in p["recommendation"] for p in second)
    duplicates = sum(p["kind"] == "duplicate_index" for p in second)
    print(f"second check: {duplicates} duplicate_index, {wanting} findings still recommending an index")
    for p in left:
        print("  ", p["kind"], p["summary"][:160])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
