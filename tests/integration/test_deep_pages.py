"""Deep OFFSET pages over a well-correlated index: judged on rows read, not buffers (13 and 18).

A paged read whose index follows the table's physical order reads tens of
thousands of index entries per call yet touches a few hundred buffers
(consecutive rows share heap pages), under ``offset_min_blocks_per_call``.
One `check` finds it from its plan (a Limit over the index scan) and the
index's entries read per call; the look-alikes stay quiet: shallow pages
over the same index (the time per call does not confirm), and an OFFSET
over a small table.
"""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from support import loaded, monitor_dsn, pgradar

from pgradar.commands.embedded import Cluster

DEEP = "SELECT id, payload FROM pages ORDER BY id LIMIT 20 OFFSET %s"
SHALLOW = "SELECT id FROM pages ORDER BY id LIMIT 20 OFFSET %s"
TINY = "SELECT id FROM tiny ORDER BY id LIMIT 5 OFFSET %s"


@pytest.mark.heavy
def test_deep_pages_over_a_correlated_index_are_found_and_look_alikes_stay_quiet(fresh_pg: Cluster) -> None:
    loaded(
        fresh_pg,
        (
            "CREATE TABLE pages (id int PRIMARY KEY, payload text NOT NULL)",
            "INSERT INTO pages SELECT g, md5(g::text) FROM generate_series(1, 200000) g",
            "CREATE TABLE tiny (id int PRIMARY KEY)",
            "INSERT INTO tiny SELECT generate_series(1, 300)",
        ),
        analyze="pages, tiny",
    )
    with psycopg.connect(fresh_pg.dsn("app"), autocommit=True) as conn:
        blocks = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {DEEP % 50000}").fetchone()[0][0]  # type: ignore[index]
        assert (
            blocks["Plan"]["Shared Hit Blocks"] + blocks["Plan"]["Shared Read Blocks"] < 1000
        )  # under the buffers rule
        for i in range(60):
            conn.execute(DEEP, (20000 + 1000 * i,)).fetchall()
        for i in range(200):
            conn.execute(SHALLOW, (20 * (i % 5),)).fetchall()
            conn.execute(TINY, (i % 50,)).fetchall()
    time.sleep(1.0)  # 13-14 report table and index counters every 0.5 s
    result = pgradar(
        "check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--format", "json", "--fail-on", "never", timeout=300
    )
    assert result.returncode == 0, result.stderr
    found = [p for p in json.loads(result.stdout)["problems"] if p["kind"] == "offset_pagination"]
    assert [p["evidence"]["query"] for p in found] == [
        "SELECT id, payload FROM pages ORDER BY id LIMIT $2 OFFSET $1"
    ], found
    evidence = found[0]["evidence"]
    assert evidence["blocks_per_call"] < 1000 and evidence["rows_read_per_call"] >= 20000, evidence
    assert evidence["rows_read_from"].startswith("index pages_pkey"), evidence
    assert "page by key (served by index pages_pkey)" in found[0]["recommendation"], found[0]
