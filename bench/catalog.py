"""A large, realistic catalog and a skewed workload, built fast on a loopback cluster.

Each database gets its DDL and data in one script run in one transaction
(generate_series for rows, indexes built after the rows); databases are built
in parallel. Sizes are parameters (``SIZES``). Statement texts are distinct
per table, so every (table, template) pair is a queryid of its own in
pg_stat_statements; call counts follow a Zipf-like law, so a few statements
dominate and most ran a handful of times, as in production.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    databases: int
    schemas_per_db: int
    tables_per_schema: int
    rows_per_table: int
    statements: int  # distinct statements the workload runs
    extra_calls: int  # calls spread over them, Zipf-like
    big_tables: int  # tables of big_rows rows, in the first database
    big_rows: int
    window_s: float  # default measurement window

    @property
    def tables(self) -> int:
        return self.databases * self.schemas_per_db * self.tables_per_schema


SIZES = {
    "small": Size(
        "small",
        databases=2,
        schemas_per_db=4,
        tables_per_schema=25,
        rows_per_table=50,
        statements=400,
        extra_calls=4_000,
        big_tables=1,
        big_rows=200_000,
        window_s=90,
    ),
    "full": Size(
        "full",
        databases=4,
        schemas_per_db=10,
        tables_per_schema=65,
        rows_per_table=50,
        statements=5_000,
        extra_calls=40_000,
        big_tables=3,
        big_rows=1_000_000,
        window_s=600,
    ),
}

# Every 13th table carries a duplicate of its (a) index, every 13th (offset 6)
# an index on (c) no statement uses; many others are unused by the workload too.
DUPLICATE_EVERY = 13
EXTRA_EVERY = 13


def database_names(size: Size) -> list[str]:
    return [f"app{i + 1}" for i in range(size.databases)]


def tables_of(size: Size) -> list[tuple[str, str, str]]:
    """(database, schema, table) of every small table, in a stable order.

    Table names are unique across the whole catalog: PostgreSQL 18 jumbles a
    relation by its name, not its OID, so ``s00.t1`` and ``s01.t1`` would give
    one queryid, and the statements would not be distinct.
    """
    out = []
    n = 0
    for db in database_names(size):
        for s in range(size.schemas_per_db):
            for _ in range(size.tables_per_schema):
                out.append((db, f"s{s:02d}", f"t{n:05d}"))
                n += 1
    return out


def ddl_script(size: Size, database: str) -> tuple[str, int]:
    """The script that builds one database's small tables; returns (script, indexes)."""
    parts = ["SET LOCAL synchronous_commit = off;"]
    indexes = 0
    mine = [(i, schema, table) for i, (db, schema, table) in enumerate(tables_of(size)) if db == database]
    parts += [f"CREATE SCHEMA {schema};" for schema in sorted({schema for _, schema, _ in mine})]
    for n, schema, table in mine:
        name = f"{schema}.{table}"
        parts.append(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, a int NOT NULL, b int NOT NULL, c int NOT NULL, "
            f"d text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
            f"INSERT INTO {name} (id, a, b, c, d) SELECT g, g % 97, g % 13, g % 7, md5(g::text) "
            f"FROM generate_series(1, {size.rows_per_table}) g;"
            f"CREATE INDEX ON {name} (a);CREATE INDEX ON {name} (b, c);"
        )
        indexes += 3
        if n % DUPLICATE_EVERY == 0:
            parts.append(f"CREATE INDEX {table}_a_dup ON {name} (a);")
            indexes += 1
        if n % EXTRA_EVERY == 6:
            parts.append(f"CREATE INDEX ON {name} (c);")
            indexes += 1
    return "\n".join(parts), indexes


def big_table_script(i: int, rows: int) -> str:
    name = f"big.orders{i}"
    return (
        f"SET LOCAL synchronous_commit = off;"
        f"CREATE TABLE {name} (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, "
        f"amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL);"
        f"INSERT INTO {name} SELECT g, (g::int8 * 7919) % 100000, "
        f"(ARRAY['new','paid','shipped','done'])[g % 4 + 1], "
        f"(g % 1000) / 10.0, now() - (g % 100000) * interval '1 minute' FROM generate_series(1, {rows}) g;"
        f"CREATE INDEX ON {name} (customer_id);CREATE INDEX ON {name} (created_at);"
        f"CREATE INDEX orders{i}_customer_dup ON {name} (customer_id);"
    )


# --- statements -------------------------------------------------------------------------

TEMPLATES = (
    "SELECT id, a, b FROM {t} WHERE a = {v}",
    "SELECT count(*) FROM {t} WHERE b = {v} AND c > 2",
    "UPDATE {t} SET c = c + 1 WHERE id = {v}",
    "SELECT * FROM {t} WHERE d = 'x{v}'",
)
BIG_TEMPLATES = (
    "SELECT * FROM {t} WHERE customer_id = {v}",
    "SELECT status, count(*) FROM {t} WHERE created_at > now() - interval '1 day' GROUP BY status",
    "SELECT sum(amount) FROM {t} WHERE status = 'paid' AND amount > {v}",
)


def statements_of(size: Size) -> list[tuple[str, str]]:
    """(database, SQL) of the ``size.statements`` distinct statements, template by template."""
    tables = tables_of(size)
    out = [
        (database_names(size)[0], tmpl.format(t=f"big.orders{i}", v="{v}"))
        for i in range(size.big_tables)
        for tmpl in BIG_TEMPLATES
    ]
    for tmpl in TEMPLATES:
        for db, schema, table in tables:
            if len(out) >= size.statements:
                return out
            out.append((db, tmpl.format(t=f"{schema}.{table}", v="{v}")))
    return out


def zipf_calls(n: int, extra: int, s: float = 1.1) -> list[int]:
    """Calls per statement rank: one each, plus ``extra`` spread as 1/rank**s."""
    weights = [1.0 / (r + 1) ** s for r in range(n)]
    total = sum(weights)
    return [1 + int(extra * w / total) for w in weights]


# --- building ---------------------------------------------------------------------------

Progress = Callable[[str], None]


def build(dsn_for: Callable[[str], str], size: Size, progress: Progress) -> dict[str, int]:
    """Create the databases, schemas, tables, rows and indexes; return the counts."""
    names = database_names(size)
    started = time.monotonic()
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    progress(f"{len(names)} databases created")
    counts = {"databases": len(names), "tables": 0, "indexes": 0}
    lock = threading.Lock()

    def run(database: str, script: str, what: str, tables: int, indexes: int) -> None:
        t0 = time.monotonic()
        with psycopg.connect(dsn_for(database)) as conn:
            conn.execute("SET pg_stat_statements.track_utility = off")
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(script)  # no parameters: simple protocol, many statements, one transaction
            conn.commit()
        with lock:
            counts["tables"] += tables
            counts["indexes"] += indexes
            progress(
                f"{what} in {database}: {time.monotonic() - t0:.1f}s "
                f"({counts['tables']:,}/{size.tables + size.big_tables:,} tables so far)"
            )

    jobs = []
    per_db = size.schemas_per_db * size.tables_per_schema
    for database in names:
        script, indexes = ddl_script(size, database)
        jobs.append((database, script, f"{per_db} tables", per_db, indexes))
    if size.big_tables:
        jobs.insert(0, (names[0], "CREATE SCHEMA big;", "schema big", 0, 0))
    big_jobs = [
        (names[0], big_table_script(i, size.big_rows), f"big.orders{i} ({size.big_rows:,} rows)", 1, 4)
        for i in range(size.big_tables)
    ]
    if size.big_tables:
        run(*jobs.pop(0))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(run, *job) for job in big_jobs + jobs]:
            f.result()
    with ThreadPoolExecutor(max_workers=2) as pool:

        def analyze(database: str) -> None:
            with psycopg.connect(dsn_for(database), autocommit=True) as conn:
                conn.execute("SET pg_stat_statements.track_utility = off")
                conn.execute("VACUUM (ANALYZE)")

        list(pool.map(analyze, names))
    progress(f"VACUUM ANALYZE done; catalog built in {time.monotonic() - started:.0f}s")
    return counts


def run_workload(dsn_for: Callable[[str], str], size: Size, progress: Progress, seed: int = 9) -> int:
    """Run every statement at least once, with Zipf-skewed extra calls; returns calls made."""
    rng = random.Random(seed)
    statements = statements_of(size)
    calls = zipf_calls(len(statements), size.extra_calls)
    order = list(range(len(statements)))
    rng.shuffle(order)  # rank is not table order: hot statements are spread over the catalog
    by_db: dict[str, list[tuple[str, int]]] = {}
    for rank, i in enumerate(order):
        db, text = statements[i]
        by_db.setdefault(db, []).append((text, calls[rank]))
    started = time.monotonic()

    def run(database: str) -> int:
        made = 0
        local = random.Random(f"{seed}-{database}")
        with psycopg.connect(dsn_for(database), autocommit=True) as conn:
            for text, n in by_db[database]:
                for _ in range(n):
                    conn.execute(text.replace("{v}", str(local.randint(1, 100))).encode())
                    made += 1
        return made

    with ThreadPoolExecutor(max_workers=2) as pool:
        made = sum(pool.map(run, by_db))
    progress(f"workload: {len(statements):,} distinct statements, {made:,} calls in {time.monotonic() - started:.0f}s")
    return made


class BackgroundWorkload(threading.Thread):
    """A steady trickle during the window: known hot statements, and now and then a new one.

    New statements make pg_stat_statements grow while the agents watch, which
    is what the "texts only for new statements" figure needs.
    """

    def __init__(self, dsn_for: Callable[[str], str], size: Size, qps: float = 10.0, new_every_s: float = 10.0) -> None:
        super().__init__(name="bench-workload", daemon=True)
        self.dsn_for = dsn_for
        self.size = size
        self.qps = qps
        self.new_every_s = new_every_s
        self.stop_event = threading.Event()
        self.new_statements = 0
        self.calls = 0
        self.error: str | None = None

    def run(self) -> None:
        rng = random.Random(99)
        statements = statements_of(self.size)
        hot = statements[: max(1, len(statements) // 20)]
        database = database_names(self.size)[0]
        schema_table = tables_of(self.size)[0]
        table = f"{schema_table[1]}.{schema_table[2]}"
        next_new = time.monotonic() + self.new_every_s
        try:
            conns = {db: psycopg.connect(self.dsn_for(db), autocommit=True) for db in database_names(self.size)}
            try:
                while not self.stop_event.wait(1.0 / self.qps):
                    db, text = rng.choice(hot)
                    conns[db].execute(text.replace("{v}", str(rng.randint(1, 100))).encode())
                    self.calls += 1
                    if time.monotonic() >= next_new:
                        # a column list no other statement uses: a new queryid
                        self.new_statements += 1
                        cols = ", ".join(["id"] + ["a"] * self.new_statements)
                        conns[database].execute(f"SELECT {cols} FROM {table} WHERE id = 1".encode())
                        next_new += self.new_every_s
            finally:
                for conn in conns.values():
                    conn.close()
        except Exception as exc:  # reported in the result, never kills the run
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
