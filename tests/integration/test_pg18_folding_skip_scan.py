"""PostgreSQL 18: B-tree skip scan and IN lists folded by pg_stat_statements, on 18 (13 as the control).

- Skip scan: an index on (a, b) with few values of a serves ``WHERE b = $1``
  on 18; `check` must not advise an index for it.
- IN lists: 18's pg_stat_statements folds ``id IN ($1, ..., $n)`` of every
  length into one entry, whose calls and rows are those of every list
  together; the lists bound the rows, so no unbounded_result, and one list
  per transaction is no N+1.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from support import loaded, monitor_dsn, pgradar

from pgradar.commands.embedded import Cluster


@pytest.mark.heavy
def test_skip_scan_and_folded_in_lists_give_no_wrong_finding(fresh_pg: Cluster) -> None:
    loaded(
        fresh_pg,
        (
            "CREATE TABLE sk (a int NOT NULL, b int NOT NULL, pad text NOT NULL)",
            "INSERT INTO sk SELECT g % 3, g, repeat('x', 50) FROM generate_series(1, 100000) g",
            "CREATE INDEX sk_a_b_idx ON sk (a, b)",
            "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)",
            "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 30000) g",
        ),
        analyze="sk, items",
    )
    with psycopg.connect(fresh_pg.dsn("app"), autocommit=True) as conn:
        for i in range(150):
            conn.execute("SELECT pad FROM sk WHERE b = %s", (1 + 613 * i,)).fetchall()
        for i in range(55):  # one list per transaction, of another length each time
            n = 10_000 + i
            conn.execute(f"SELECT id, v FROM items WHERE id IN ({', '.join(['%s'] * n)})", list(range(1, n + 1)))
    result = pgradar(
        "check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--format", "json", "--fail-on", "never", timeout=300
    )
    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout)["problems"]
    on_items = [(p["kind"], p["summary"]) for p in problems if p["kind"] in ("unbounded_result", "n_plus_one")]
    assert on_items == [], on_items
    sk = [(p["kind"], p["recommendation"]) for p in problems if p.get("relation") == "sk"]
    assert sk == [], sk  # 18's skip scan over (a, b) serves it (13 scans the whole index): no index to add
