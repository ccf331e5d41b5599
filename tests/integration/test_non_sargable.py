"""non_sargable_predicate on real servers, 13 to 18: a function and a cast on
indexed columns are found, the plain lookup is not, and the expression index
the finding recommends, once built, clears it on the next pass."""

from __future__ import annotations

import time

from support import collect_and_classify, monitor_dsn, superuser

from pgradar.agent.model.catalog import IndexesSnapshot
from pgradar.agent.model.findings import Finding
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

COLLECTORS = ("statements", "database", "tables", "indexes")

SCHEMA = """
CREATE TABLE ns_users (id bigint PRIMARY KEY, email varchar(200) NOT NULL, note text);
INSERT INTO ns_users SELECT g, 'user' || g || '@example.com', 'n' FROM generate_series(1, 20000) g;
CREATE INDEX ns_users_email_idx ON ns_users (email);
ANALYZE ns_users;
"""
LOWER = "SELECT id FROM ns_users WHERE lower(email) = %s"
CAST = "SELECT note FROM ns_users WHERE id::text = %s"
PLAIN = "SELECT id FROM ns_users WHERE email = %s"


def workload(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        for i in range(120):
            conn.execute(LOWER, (f"User{i}@Example.com",)).fetchall()
            conn.execute(CAST, (str(i + 1),)).fetchall()
            conn.execute(PLAIN, (f"user{i}@example.com",)).fetchall()


def next_pass(rt: TargetRunner) -> list[Finding]:
    time.sleep(0.2)
    return [
        f
        for f in collect_and_classify(rt, COLLECTORS)
        if f.kind == "non_sargable_predicate" and f.relation == "ns_users"
    ]


def queryids(cluster: Cluster, text: str) -> set[str]:
    with superuser(cluster) as conn:
        rows = conn.execute(
            "SELECT s.queryid::text FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = 'app' AND s.query = %s",
            (text,),
        ).fetchall()
    assert rows, text
    return {r[0] for r in rows}


def test_non_sargable_found_and_cleared_by_the_expression_index(pg: Cluster) -> None:
    with superuser(pg, "app") as conn:
        conn.execute("DROP TABLE IF EXISTS ns_users")
        conn.execute(SCHEMA)
    target = TargetConfig("t", monitor_dsn(pg))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    try:
        for name in ("server", "settings", *COLLECTORS):
            rt.run_collector(name)
        workload(pg)
        found = {f.queryid: f for f in next_pass(rt)}
        lower_id = queryids(pg, LOWER.replace("%s", "$1"))
        cast_id = queryids(pg, CAST.replace("%s", "$1"))
        assert set(found) <= lower_id | cast_id and len(found) == 2, found  # the plain lookup is not reported
        (lower,) = (f for q, f in found.items() if q in lower_id)
        (cast,) = (f for q, f in found.items() if q in cast_id)

        assert (lower.database, lower.schema, lower.relation, lower.severity) == (
            "app",
            "public",
            "ns_users",
            "warning",
        )
        ev = lower.evidence
        assert (ev["predicate"], ev["column"], ev["index"]) == ("lower(email) = $1", "email", "ns_users_email_idx")
        assert ev["column_type"] == "character varying(200)" and ev["calls"] == 120 and ev["mean_exec_ms"] > 0
        assert ev["query"] == "SELECT id FROM ns_users WHERE lower(email) = $1" and ev["table_rows"] == 20000
        fix = lower.recommendation.splitlines()[0]
        assert fix == "CREATE INDEX CONCURRENTLY ns_users_email_lower_idx ON public.ns_users ((lower(email)));"

        assert (cast.evidence["index"], cast.evidence["column_type"]) == ("ns_users_pkey", "bigint")
        assert cast.evidence["rewrite"] == "id = $1::bigint" and "CREATE INDEX" not in cast.recommendation

        with superuser(pg, "app") as conn:
            conn.execute(fix)
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT id FROM ns_users WHERE lower(email) = 'x'"))
        assert "ns_users_email_lower_idx" in plan, plan  # the fix is one the planner takes
        workload(pg)
        after = next_pass(rt)
        indexes: IndexesSnapshot = rt.state.current().indexes
        built = [i for i in indexes.indexes if i.index == "ns_users_email_lower_idx"]
        assert built and built[0].expressions == "lower((email)::text)" and built[0].column_types == [None]
        assert [f.queryid for f in after] == [cast.queryid], after  # the cast, not fixed, stays
    finally:
        rt.close()
        with superuser(pg, "app") as conn:
            conn.execute("DROP TABLE IF EXISTS ns_users")
