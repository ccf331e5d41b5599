"""Churn and scale: pg_stat_statements evicting entries, one agent watching many targets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from support import HEAVY, installation, monitor_dsn, prepare, superuser

from pgradar.agent.runtime.agent import Agent
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, DatabaseFilter, TargetConfig
from pgradar.commands.embedded import Cluster, Installation, Sandbox
from pgradar.exporters.prometheus import registry_for

PGSS_MAX = 100


@pytest.fixture(params=HEAVY, ids=lambda v: f"pg{v}")
def small_pgss(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    cluster = sandbox.cluster(
        installation(installations, request.param),
        f"churn{request.param}",
        settings={"pg_stat_statements.max": str(PGSS_MAX)},
    )
    prepare(cluster)
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def churn(cluster: Cluster, start: int, count: int) -> None:
    """``count`` distinct statements: a different number of output columns makes a different
    queryid (aliases and constants do not)."""
    with superuser(cluster, "app") as conn:
        for i in range(start + 1, start + count + 1):
            conn.execute("SELECT " + ", ".join(["1"] * i))


def test_eviction_under_churn(small_pgss: Cluster) -> None:
    config = Config(targets=(TargetConfig("t", monitor_dsn(small_pgss)),), top_statements=20)
    runtime = TargetRunner(config.targets[0], config, TargetState("t"))
    runtime.run_collector("server")
    runtime.run_collector("statements")
    totals: list[float] = []
    for round_ in range(5):
        churn(small_pgss, round_ * 150, 150)  # more distinct statements than pg_stat_statements.max
        runtime.run_collector("statements")
        assert runtime.state.collector("statements").last_error is None
        interval = runtime.state.statement_intervals[-1]
        assert interval.deltas, "the churn left no deltas"
        assert all(d.calls >= 0 and d.total_exec_ms >= 0 and d.rows >= 0 for d in interval.deltas)
        snapshot = runtime.state.current().statements
        assert len(snapshot.rows) <= PGSS_MAX
        assert len(runtime.state.statement_texts) <= len(snapshot.rows), "texts of evicted statements kept"
        assert len(runtime.state.statement_totals.counters) <= len(snapshot.rows)
        totals.append(sum(acc["calls"] for acc in runtime.state.statement_totals.by_database.values()))
    assert totals == sorted(totals)
    if runtime.state.server and runtime.state.server.has_pgss_toplevel:
        assert runtime.state.current().statements.info.dealloc > 0
    registry = registry_for(_single(runtime), 20)
    per_statement = [s for m in registry.collect() if m.name == "pgradar_statement_calls" for s in m.samples]
    assert 0 < len(per_statement) <= 20
    runtime.close()


def _single(runtime: TargetRunner):
    from pgradar.agent.runtime.state import AgentState

    return AgentState({runtime.state.name: runtime.state})


@pytest.fixture
def many_databases(installations: dict[int, Installation], sandbox: Sandbox) -> Iterator[Cluster]:
    cluster = sandbox.cluster(installation(installations, max(HEAVY)), "many", settings={"max_connections": "300"})
    prepare(cluster)
    with superuser(cluster) as conn:
        for i in range(50):
            conn.execute(f"CREATE DATABASE db{i:02d}")
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def test_fifty_targets_stay_on_time_while_one_hangs(many_databases: Cluster) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    targets = [
        TargetConfig(f"db{i:02d}", monitor_dsn(many_databases, f"db{i:02d}"), DatabaseFilter(include=(f"db{i:02d}",)))
        for i in range(50)
    ]
    targets.append(TargetConfig("silent", f"host=127.0.0.1 port={silent.getsockname()[1]} user=x"))
    config = Config(
        targets=tuple(targets), intervals={"server": 2, "activity": 2, "database": 4, "tables": 4}, connect_timeout_s=3
    )
    agent = Agent(config)
    agent.start()
    try:
        time.sleep(4)
        before = {t.name: t.collector("server").runs for t in agent.state}
        time.sleep(10)
        late = {t.name: t.collector("server").runs - before[t.name] for t in agent.state if t.name != "silent"}
        assert min(late.values()) >= 4, f"targets that fell behind: {sorted(late.items(), key=lambda x: x[1])[:5]}"
        assert all(t.up for t in agent.state if t.name != "silent")
        assert not agent.state.target("silent").up
    finally:
        agent.stop()
        silent.close()
