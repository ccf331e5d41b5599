"""Every index `check` recommends, run as printed, on a workload whose rules all want the same index.

A foreign key without an index (missing_fk_index), a statement filtering on
that key and another column (seq_scan), a correlated subquery probing the key
once per outer row (correlated_subquery) and a paged read sorted on a column
(offset_pagination, and seq_scan's sorted Limit) all propose indexes on one
table. One `check`; every CREATE INDEX of its findings run as printed (no two
on the same keys, none failing on a name); the next `check` reports no
duplicate_index and recommends no index when the same statements run again.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from support import MONITOR_ROLE, monitor_dsn, pgradar, superuser

from pgradar.commands.embedded import Cluster

INDEX_KINDS = {"seq_scan", "missing_fk_index", "correlated_subquery", "offset_pagination", "non_sargable_predicate"}


def _schema(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        conn.execute("""
            CREATE TABLE customers (id int PRIMARY KEY, region int NOT NULL);
            INSERT INTO customers SELECT g, g % 10 FROM generate_series(1, 1000) g;
            CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                                 status int NOT NULL, total numeric NOT NULL, pad text NOT NULL);
            INSERT INTO orders SELECT g, 1 + g % 1000, g % 5, (g * 7919) % 100000, repeat('x', 400)
              FROM generate_series(1, 20000) g;
        """)
        conn.execute("VACUUM ANALYZE customers, orders")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}")


def _workload(cluster: Cluster) -> None:
    """The application's statements, on counters reset (the table's and the statements')."""
    with superuser(cluster, "app") as conn:
        conn.execute("SELECT pg_stat_reset()")
    with superuser(cluster) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    with psycopg.connect(cluster.dsn("app"), autocommit=True) as conn:
        for i in range(150):
            conn.execute("SELECT id FROM orders WHERE customer_id = %s AND status = %s", (1 + i % 1000, i % 5))
        for i in range(60):
            conn.execute("SELECT id, total FROM orders ORDER BY total LIMIT 20 OFFSET %s", (1000 + 100 * i,))
        conn.execute("SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c")


def _check(cluster: Cluster) -> list[dict[str, object]]:
    result = pgradar(
        "check", "--dsn", f"main={monitor_dsn(cluster)}", "--format", "json", "--fail-on", "never", timeout=300
    )
    assert result.returncode == 0, result.stderr
    problems: list[dict[str, object]] = json.loads(result.stdout)["problems"]
    return problems


def _creates(problems: list[dict[str, object]]) -> list[str]:
    return [
        line
        for p in problems
        if p["kind"] in INDEX_KINDS
        for line in str(p["recommendation"]).splitlines()
        if line.startswith("CREATE INDEX")
    ]


@pytest.mark.heavy
def test_every_recommended_index_run_as_printed_leaves_nothing_to_merge(fresh_pg: Cluster) -> None:
    _schema(fresh_pg)
    _workload(fresh_pg)
    first = _check(fresh_pg)
    kinds = {str(p["kind"]) for p in first if p.get("relation") in ("orders", None)}
    assert {"missing_fk_index", "correlated_subquery", "seq_scan", "offset_pagination"} <= kinds, kinds
    creates = _creates(first)
    keys = [re.search(r" ON (\S+ \(.*?\))", c).group(1) for c in creates]  # type: ignore[union-attr]
    names = [re.search(r"INDEX (?:CONCURRENTLY )?(\S+) ON", c).group(1) for c in creates]  # type: ignore[union-attr]
    assert len(keys) == len(set(keys)) and len(names) == len(set(names)), creates
    assert all(re.match(r"CREATE INDEX CONCURRENTLY \S+_idx ON ", c) for c in creates), creates  # all named
    correlated = next(p for p in first if p["kind"] == "correlated_subquery")
    assert "is served by the index recommended for" in str(correlated["recommendation"]), correlated
    with superuser(fresh_pg, "app") as conn:
        for statement in creates:
            conn.execute(statement)
        conn.execute("ANALYZE orders")
    _workload(fresh_pg)
    second = _check(fresh_pg)
    assert [p["summary"] for p in second if p["kind"] == "duplicate_index"] == []
    assert _creates(second) == [], [(p["kind"], p["recommendation"]) for p in second if p["kind"] in INDEX_KINDS]
    gone = ("missing_fk_index", "correlated_subquery", "seq_scan")
    left = [(p["kind"], p["summary"]) for p in second if p["kind"] in gone]
    assert left == [], left
