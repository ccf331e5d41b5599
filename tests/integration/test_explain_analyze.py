"""EXPLAIN ANALYZE on a real streaming standby, every version: only with the switch on, only on a
standby, only parameterless reads; its plans feed row_misestimate like auto_explain's.

The schema is made on the primary (the standby replays it) and dropped afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support import MONITOR_ROLE, monitor_dsn, superuser, wait_for

from pgradar.agent.classifiers import classify
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.plans import AnalyzeSnapshot
from pgradar.agent.plans.collectors import ANALYZE_ON_PRIMARY
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

ROWS = 50_000
SCHEMA = f"""
DROP SCHEMA IF EXISTS corr CASCADE;
CREATE SCHEMA corr;
GRANT USAGE ON SCHEMA corr TO {MONITOR_ROLE};
CREATE TABLE corr.pairs (a int, b int);
INSERT INTO corr.pairs SELECT g % 100, g % 100 FROM generate_series(1, {ROWS}) g;
ANALYZE corr.pairs;
GRANT SELECT ON ALL TABLES IN SCHEMA corr TO {MONITOR_ROLE};
"""
# a = b holds for every row; the planner, comparing two columns, guesses 0.5% of them
MISESTIMATED = "SELECT count(*) FROM corr.pairs WHERE a = b"
WITH_PARAMETER = "SELECT count(*) FROM corr.pairs WHERE a = %s"  # normalized to $1: never run


@pytest.fixture
def replicated(pg: Cluster, pg_standby: Cluster) -> Iterator[tuple[Cluster, Cluster]]:
    with superuser(pg, "app") as conn:
        conn.execute(SCHEMA)
    with superuser(pg_standby, "app") as conn:
        wait_for(
            lambda: conn.execute(
                "SELECT to_regclass('corr.pairs') IS NOT NULL AND "
                "(SELECT count(*) FROM pg_stats WHERE tablename = 'pairs') = 2"
            ).fetchone()[0],
            30,
            0.2,
            "the standby to replay the schema",
        )
    yield pg, pg_standby
    with superuser(pg, "app") as conn:
        conn.execute("DROP SCHEMA corr CASCADE")


def workload(cluster: Cluster) -> None:
    with superuser(cluster) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    with superuser(cluster, "app") as conn:
        for i in range(3):
            conn.execute(MISESTIMATED).fetchall()
            conn.execute(WITH_PARAMETER, (i,)).fetchall()


def explain_analyze_calls(cluster: Cluster) -> int:
    """EXPLAIN ANALYZE statements pg_stat_statements counted on this server (track_utility is on).

    pgradar's SQL starts with a comment, kept in the text. 14+ also lists the run as a nested entry
    (toplevel false) that counts the same calls: the largest count is the number of runs.
    """
    with superuser(cluster) as conn:
        row = conn.execute(
            "SELECT coalesce(max(calls), 0) FROM pg_stat_statements WHERE query ILIKE %s", ("%EXPLAIN (ANALYZE%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


def queryid(cluster: Cluster, text: str) -> str:
    with superuser(cluster) as conn:
        row = conn.execute("SELECT queryid::text FROM pg_stat_statements WHERE query = %s", (text,)).fetchone()
    assert row is not None, text
    return str(row[0])


def one_pass(cluster: Cluster, analyze: bool) -> tuple[TargetRunner, list[Finding]]:
    target = TargetConfig("t", monitor_dsn(cluster), explain_analyze=analyze)
    rt = TargetRunner(target, Config(targets=(target,)), TargetState("t"))
    for name in ("server", "statements", "explain_analyze"):
        rt.run_collector(name)
    findings, errors = classify(observe(rt.state, datetime.now(UTC)), rt.target.thresholds)
    assert not errors, errors
    return rt, [f for f in findings if f.kind == "row_misestimate"]


def test_explain_analyze_on_a_standby_finds_a_misestimate(replicated: tuple[Cluster, Cluster]) -> None:
    _, standby = replicated
    workload(standby)
    rt, found = one_pass(standby, analyze=True)
    try:
        assert rt.state.collector("explain_analyze").last_error is None
        snap: AnalyzeSnapshot = rt.state.current().explain_analyze
        assert snap.enabled and snap.ran == 1, snap
        skipped = {str(q): why for q, why in snap.skipped}
        assert "$n parameters" in skipped[queryid(standby, "SELECT count(*) FROM corr.pairs WHERE a = $1")]
        (finding,) = found
        assert (finding.database, finding.schema, finding.relation) == ("app", "corr", "pairs")
        assert finding.queryid == queryid(standby, MISESTIMATED)
        ev = finding.evidence
        assert ev["source"] == "explain_analyze" and ev["actual_rows"] == ROWS
        assert ev["estimated_rows"] <= ROWS / 100 and ev["factor"] >= 10, ev
        assert "CREATE STATISTICS" in finding.recommendation
        assert explain_analyze_calls(standby) == 1  # the one parameterless read, once
    finally:
        rt.close()
    # Nothing changed on the standby: the transaction was read-only and rolled back.
    with superuser(standby, "app") as conn:
        assert conn.execute("SELECT count(*) FROM corr.pairs").fetchone() == (ROWS,)


def test_switched_off_nothing_runs(replicated: tuple[Cluster, Cluster]) -> None:
    _, standby = replicated
    workload(standby)
    rt, found = one_pass(standby, analyze=False)
    try:
        snap: AnalyzeSnapshot = rt.state.current().explain_analyze
        assert not snap.enabled and snap.plans == () and snap.ran == 0
        assert found == []
        assert explain_analyze_calls(standby) == 0
    finally:
        rt.close()


def test_on_a_primary_it_is_ignored_and_said_once(
    replicated: tuple[Cluster, Cluster], caplog: pytest.LogCaptureFixture
) -> None:
    primary, _ = replicated
    workload(primary)
    caplog.set_level(logging.WARNING, logger="pgradar.target")
    rt, found = one_pass(primary, analyze=True)
    try:
        rt.run_collector("explain_analyze")  # a second cycle: not logged again
        status = rt.state.collector("explain_analyze")
        assert status.disabled_reason == ANALYZE_ON_PRIMARY and status.runs == 2
        said = [r for r in caplog.records if "explain_analyze is on for this target" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]
        assert found == [] and rt.state.current().explain_analyze is None
        assert explain_analyze_calls(primary) == 0
    finally:
        rt.close()
