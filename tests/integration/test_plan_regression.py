"""plan_regression on every server version: a lookup planned through an index, the index
dropped, the same workload reading the table sequentially; the fix recreates the index.

Each test uses a schema of its own in the shared cluster and drops it afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support import MONITOR_ROLE, monitor_dsn, superuser

from pgradar.agent.classifiers import classify
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.plans import PlansSnapshot
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

ROWS = 100_000
CALLS = 30  # per workload and statement: above plan_regression_min_calls (20)
SCHEMA = f"""
DROP SCHEMA IF EXISTS regress CASCADE;
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO {MONITOR_ROLE};
CREATE TABLE regress.lookups (id int, a int, b int, pad text);
INSERT INTO regress.lookups SELECT g, g, g, 'row ' || g FROM generate_series(1, {ROWS}) g;
CREATE INDEX lookups_a_idx ON regress.lookups (a);
CREATE INDEX lookups_b_idx ON regress.lookups (b);
ANALYZE regress.lookups;
GRANT SELECT ON ALL TABLES IN SCHEMA regress TO {MONITOR_ROLE};
"""
LOOKUP = "SELECT id, pad FROM regress.lookups WHERE a = %s"
CONTROL = "SELECT id, pad FROM regress.lookups WHERE b = %s"


@pytest.fixture
def planted(pg: Cluster) -> Iterator[Cluster]:
    with superuser(pg) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    with superuser(pg, "app") as conn:
        conn.execute(SCHEMA)
    yield pg
    with superuser(pg, "app") as conn:
        conn.execute("DROP SCHEMA regress CASCADE")


def workload(cluster: Cluster) -> None:
    """Selective lookups; values below 2^15 so psycopg binds them all as int2 (one queryid each)."""
    with superuser(cluster, "app") as conn:
        for i in range(CALLS):
            value = 1 + (i * 997) % 30_000
            conn.execute(LOOKUP, (value,)).fetchall()
            conn.execute(CONTROL, (value,)).fetchall()


def next_pass(rt: TargetRunner) -> list[Finding]:
    time.sleep(0.05)  # a new statements snapshot time, whatever the clock's resolution
    for name in ("server", "statements", "indexes", "plans"):
        rt.run_collector(name)
        assert rt.state.collector(name).last_error is None, (name, rt.state.collector(name).last_error)
    findings, errors = classify(observe(rt.state, datetime.now(UTC)), rt.target.thresholds)
    assert not errors, errors
    return [f for f in findings if f.kind == "plan_regression"]


def queryids(cluster: Cluster) -> dict[str, str]:
    with superuser(cluster) as conn:
        rows = conn.execute(
            "SELECT query, queryid::text FROM pg_stat_statements "
            "WHERE query LIKE 'SELECT id, pad FROM regress.lookups WHERE %'"
        ).fetchall()
    found = {("lookup" if " a = " in q else "control"): qid for q, qid in rows}
    assert set(found) == {"lookup", "control"}, rows
    return found


def test_plan_regression_after_an_index_is_dropped(planted: Cluster) -> None:
    target = TargetConfig("t", monitor_dsn(planted))
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    try:
        workload(planted)
        assert next_pass(rt) == []  # planned: both lookups through their index
        ids = queryids(planted)
        plans: PlansSnapshot = rt.state.current().plans
        shapes = {str(p.queryid): p.current_shape for p in plans.plans}
        assert "Index Scan on regress.lookups using lookups_a_idx" in shapes[ids["lookup"]].shape
        workload(planted)
        assert next_pass(rt) == []  # counted under the index scan; nothing changed
        with superuser(planted, "app") as conn:
            conn.execute("DROP INDEX regress.lookups_a_idx")
        assert next_pass(rt) == []  # replanned at once (the index is gone): a new shape, nothing counted yet
        workload(planted)
        (found,) = next_pass(rt)
        assert (found.database, found.queryid) == ("app", ids["lookup"]), found
        ev = found.evidence
        assert ev["old_shape"] == "Index Scan on regress.lookups using lookups_a_idx", ev
        assert "Seq Scan on regress.lookups" in ev["new_shape"], ev  # under a Gather when parallel
        assert ev["old_calls"] == CALLS and ev["new_calls"] == CALLS
        assert ev["factor"] >= 2 and ev["new_mean_exec_ms"] >= 1, ev
        assert ev["new_cost"] > ev["old_cost"] and ev["indexes_gone"] == ["regress.lookups_a_idx"]
        assert found.severity in ("warning", "critical")
        fix = found.recommendation.splitlines()[0]
        assert fix == "CREATE INDEX CONCURRENTLY lookups_a_idx ON regress.lookups USING btree (a);", fix
        with superuser(planted, "app") as conn:
            conn.execute(fix)
        assert next_pass(rt) == []  # the index scan is back: the old shape returned
        workload(planted)
        assert next_pass(rt) == []
        plans = rt.state.current().plans
        by_id = {str(p.queryid): p for p in plans.plans}
        lookup, control = by_id[ids["lookup"]], by_id[ids["control"]]
        assert lookup.current_shape is not None and "lookups_a_idx" in lookup.current_shape.shape
        assert lookup.previous_shape is not None and "Seq Scan" in lookup.previous_shape.shape
        # The control's plan never changed: one shape, counted over every workload.
        assert control.previous_shape is None and control.current_shape is not None
        assert control.current_shape.calls == 3 * CALLS
    finally:
        rt.close()
