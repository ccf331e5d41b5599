"""EXPLAIN on every server version: generic plans of normalized statements, never executed.

16+ plans with EXPLAIN (GENERIC_PLAN); 13 to 15 with PREPARE and EXPLAIN
EXECUTE under force_generic_plan. Writes are never planned. Each test uses a
schema of its own in the shared cluster and drops it afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support import MONITOR_ROLE, monitor_dsn, pgradar, superuser

from pgradar.agent.classifiers.plans import plan_seq_scans
from pgradar.agent.model.plans import PlansSnapshot
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

SCHEMA = """
DROP SCHEMA IF EXISTS "Plan Test" CASCADE;
CREATE SCHEMA "Plan Test";
GRANT USAGE ON SCHEMA "Plan Test" TO {role};
CREATE TABLE "Plan Test"."Orders" (id int PRIMARY KEY, "Customer" int, status text, created date);
INSERT INTO "Plan Test"."Orders" SELECT g, g % 500, 'open', date '2026-01-01' + g % 300
  FROM generate_series(1, 20000) g;
ANALYZE "Plan Test"."Orders";
GRANT SELECT ON ALL TABLES IN SCHEMA "Plan Test" TO {role};
"""


@pytest.fixture
def planted(pg: Cluster) -> Iterator[Cluster]:
    with superuser(pg) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    with superuser(pg, "app") as conn:
        conn.execute(SCHEMA.format(role=MONITOR_ROLE))
        for i in range(5):
            conn.execute(
                'SELECT id, status FROM "Plan Test"."Orders" WHERE "Customer" = %s AND created > %s', (i, "2026-02-01")
            )
            conn.execute('UPDATE "Plan Test"."Orders" SET status = %s WHERE id = %s', ("open", i + 1))
            conn.execute(
                'WITH gone AS (DELETE FROM "Plan Test"."Orders" WHERE id = %s RETURNING id) SELECT count(*) FROM gone',
                (-i,),
            )
    yield pg
    with superuser(pg, "app") as conn:
        conn.execute('DROP SCHEMA "Plan Test" CASCADE')


def test_generic_plans_and_advice(planted: Cluster) -> None:
    config = Config(targets=(TargetConfig("t", monitor_dsn(planted)),))
    rt = TargetRunner(config.targets[0], config, TargetState("t"))
    try:
        for name in ("server", "statements", "plans"):
            rt.run_collector(name)
            assert rt.state.collector(name).last_error is None, rt.state.collector(name)
        snap: PlansSnapshot = rt.state.current().plans
        by_text = {rt.state.statement_texts[(p.dbid, p.queryid)]: p for p in snap.plans}
        select = next(p for text, p in by_text.items() if text.startswith('SELECT id, status FROM "Plan Test"'))
        assert select.skipped is None and select.summary is not None
        scan = select.seq_scans[0]
        assert (scan.schema, scan.relation, scan.reltuples) == ("Plan Test", "Orders", 20000)
        assert '"Customer"' in (scan.filter or "")
        (advice,) = select.advice
        assert advice.columns == ("Customer", "created")
        assert advice.verified is None  # hypopg is not installed in this database
        finding = next(plan_seq_scans("t", select, DEFAULT))
        assert finding.recommendation.startswith(
            'CREATE INDEX CONCURRENTLY "Orders_Customer_created_idx" ON "Plan Test"."Orders" ("Customer", created);'
        )
        assert "unverified" in finding.recommendation
        # UPDATE is planned (EXPLAIN without ANALYZE, read-only: DESIGN 4); a write hidden in a CTE and utility never
        assert {text.split()[0] for text in by_text} == {"SELECT", "UPDATE"}, list(by_text)
        update = next(p for text, p in by_text.items() if text.startswith("UPDATE"))
        assert update.summary is not None and update.advice == ()  # WHERE id = $1: the primary key serves it
        assert all(p.skipped is None for p in snap.plans), snap.plans
        # the cache: a second cycle within explain_replan_s plans nothing again
        rt.run_collector("plans")
        again: PlansSnapshot = rt.state.current().plans
        assert {p.planned_at for p in again.plans} == {p.planned_at for p in snap.plans}
    finally:
        rt.close()
    with superuser(planted, "app") as conn:
        # nothing was executed: the UPDATE's and DELETE's rows are as they were
        count = conn.execute('SELECT count(*) FROM "Plan Test"."Orders"').fetchone()
        assert count == (20000,)
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def _queryid(cluster: Cluster, prefix: str) -> int:
    with superuser(cluster) as conn:
        row = conn.execute(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE %s ORDER BY calls DESC LIMIT 1", (prefix + "%",)
        ).fetchone()
    assert row is not None, prefix
    return int(row[0])


def test_cli_explain_by_queryid_and_text(planted: Cluster) -> None:
    queryid = _queryid(planted, 'SELECT id, status FROM "Plan Test"')
    result = pgradar("explain", "--dsn", monitor_dsn(planted), "--queryid", str(queryid))
    assert result.returncode == 0, result.stderr
    assert f"statement {queryid} in database app" in result.stdout
    assert "seq scan on Plan Test.Orders (20,000 rows) filter" in result.stdout
    assert 'CREATE INDEX CONCURRENTLY "Orders_Customer_created_idx" ON "Plan Test"."Orders"' in result.stdout
    update = _queryid(planted, 'UPDATE "Plan Test"')
    planned = pgradar("explain", "--dsn", monitor_dsn(planted), "--queryid", str(update))
    assert planned.returncode == 0 and "Plan Test" in planned.stdout, planned.stderr
    hidden = _queryid(planted, "WITH gone AS (DELETE")
    refused = pgradar("explain", "--dsn", monitor_dsn(planted), "--queryid", str(hidden))
    assert refused.returncode == 2 and "not a plain SELECT" in refused.stderr
    text = pgradar(
        "explain",
        "--dsn",
        monitor_dsn(planted),
        "--database",
        "app",
        "--format",
        "json",
        "--query",
        'SELECT * FROM "Plan Test"."Orders" WHERE status = $1 ORDER BY created LIMIT $2',
    )
    assert text.returncode == 0, text.stderr
    doc = json.loads(text.stdout)
    # status keeps every row, but under ORDER BY ... LIMIT the index stops after the first rows
    assert doc["plan"]["sorts"] and doc["advice"][0]["definition"].endswith('"Plan Test"."Orders" (status, created)')
    unlimited = pgradar(
        "explain",
        "--dsn",
        monitor_dsn(planted),
        "--database",
        "app",
        "--format",
        "json",
        "--query",
        'SELECT * FROM "Plan Test"."Orders" WHERE status = $1 ORDER BY created',
    )
    assert json.loads(unlimited.stdout)["advice"] == []  # every row, all of them sorted: no index serves it


@pytest.mark.parametrize("pg", [15], indirect=True, ids=["pg15"])
def test_hypopg_verifies_the_advice(planted: Cluster) -> None:
    with superuser(planted, "app") as conn:
        conn.execute("CREATE EXTENSION hypopg")
    try:
        result = pgradar(
            "explain",
            "--dsn",
            monitor_dsn(planted),
            "--database",
            "app",
            "--format",
            "json",
            "--query",
            'SELECT id FROM "Plan Test"."Orders" WHERE "Customer" = $1',
        )
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        (advice,) = doc["advice"]
        assert advice["verified"] is True
        assert advice["cost_after"] < 0.3 * advice["cost_before"], advice
        (problem,) = doc["problems"]
        assert "-- hypopg: estimated cost" in problem["recommendation"]
        # a filter an index would not help (every row matches): no advice, nothing is recommended
        useless = pgradar(
            "explain",
            "--dsn",
            monitor_dsn(planted),
            "--database",
            "app",
            "--format",
            "json",
            "--query",
            'SELECT id FROM "Plan Test"."Orders" WHERE status = $1',
        )
        doc = json.loads(useless.stdout)
        assert doc["advice"] == [] and doc["problems"] == [], doc
    finally:
        with superuser(planted, "app") as conn:
            conn.execute("DROP EXTENSION hypopg")
