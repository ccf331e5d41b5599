"""Faults the agent must survive, each on real servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support import MONITOR_ROLE, monitor_dsn, superuser, wait_for

from pgradar.agent.runtime.agent import Agent
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_a_silent_host_does_not_hold_up_the_others(fresh_pg: Cluster, black_hole: int) -> None:
    config = Config(
        targets=(
            TargetConfig("good", monitor_dsn(fresh_pg)),
            TargetConfig("silent", f"host=127.0.0.1 port={black_hole} user=x dbname=postgres"),
        ),
        intervals={"server": 1, "activity": 1, "database": 1},
        connect_timeout_s=3,
    )
    agent = Agent(config)
    agent.start()
    try:
        time.sleep(2)
        good = agent.state.target("good").collector("server")
        before = good.runs
        time.sleep(8)
        ran = good.runs - before
        silent = agent.state.target("silent")
        assert ran >= 6, f"the healthy target's server collector ran {ran} times in 8 s (every 1 s expected)"
        assert agent.state.target("good").up and not silent.up
        assert "timeout" in (silent.last_error or "").lower()
    finally:
        agent.stop()


def test_a_query_over_statement_timeout_fails_alone(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute("CREATE TABLE locked_out (id int)")
    config = Config(
        targets=(TargetConfig("t", monitor_dsn(fresh_pg)),), statement_timeout_ms=1000, lock_timeout_ms=5000
    )
    runtime = TargetRunner(config.targets[0], config, TargetState("t"))
    for name in ("server", "sizes", "tables", "database"):
        runtime.run_collector(name)
    assert any(z.relid for z in runtime.state.current().sizes.tables if z.database == "app")
    holder = superuser(fresh_pg, "app")
    try:
        # A write, so the table's size may have changed: the sizes poll reads it again (and must wait).
        holder.execute("INSERT INTO locked_out VALUES (1)")
        if fresh_pg.major >= 15:
            holder.execute("SELECT pg_stat_force_next_flush()")
        inserted = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'locked_out'"
        wait_for(lambda: holder.execute(inserted).fetchone()[0] > 0, timeout=10, what="the insert's statistics")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE locked_out IN ACCESS EXCLUSIVE MODE")  # pg_table_size must wait
        runtime.run_collector("sizes")
        runtime.run_collector("tables")  # the counters need no lock on the table
        runtime.run_collector("database")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    sizes = runtime.state.collector("sizes")
    assert sizes.errors == 1 and "statement timeout" in (sizes.last_error or "")
    assert "app" in (sizes.last_error or "")
    snapshot = runtime.state.current().sizes
    assert snapshot.failed_databases == ("app",)
    assert any(z.database == "app" for z in snapshot.tables), "the failed database's rows were dropped"
    tables = runtime.state.current().tables
    locked = next(t for t in tables.tables if t.relation == "locked_out")
    assert locked.size_bytes is not None, "the kept sizes were not applied to the counters"
    assert runtime.state.collector("tables").errors == 0 and runtime.state.collector("database").errors == 0
    assert runtime.state.up
    runtime.run_collector("sizes")
    assert runtime.state.current().sizes.failed_databases == ()
    runtime.close()


def test_resets_never_make_counters_go_backwards(fresh_pg: Cluster) -> None:
    config = Config(targets=(TargetConfig("t", monitor_dsn(fresh_pg)),))
    runtime = TargetRunner(config.targets[0], config, TargetState("t"))
    runtime.run_collector("server")
    seen: list[float] = []

    def poll_after(work: int) -> None:
        with superuser(fresh_pg, "app") as conn:
            for i in range(work):
                conn.execute("SELECT %s::int + 1", (i,))
        runtime.run_collector("statements")
        if seen:  # every poll after the first gives an interval holding the work just done
            assert runtime.state.statement_intervals, "no interval"
            deltas = runtime.state.statement_intervals[-1].deltas
            assert deltas and all(d.calls >= 0 and d.total_exec_ms >= 0 for d in deltas)
        seen.append(runtime.state.statement_totals.by_database.get("app", {}).get("calls", 0.0))

    poll_after(5)
    poll_after(20)
    with superuser(fresh_pg) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")
    poll_after(3)
    poll_after(4)
    assert seen == sorted(seen), f"app calls went backwards: {seen}"
    assert seen[-1] >= seen[1] + 7
    assert runtime.state.collector("statements").errors == 0
    runtime.close()


def test_killed_and_back(fresh_pg: Cluster) -> None:
    """The server killed mid-run and restarted: reconnect, no negative deltas across the gap."""
    config = Config(targets=(TargetConfig("t", monitor_dsn(fresh_pg)),))
    runtime = TargetRunner(config.targets[0], config, TargetState("t"))
    for name in ("server", "statements", "tables"):
        runtime.run_collector(name)
    fresh_pg.stop("immediate")
    runtime.run_collector("statements")
    assert not runtime.state.up
    fresh_pg.start()

    def recovered() -> bool:
        runtime.run_collector("server")
        return runtime.state.up

    wait_for(recovered, 90, step=1, what="reconnect")
    with superuser(fresh_pg) as conn:  # the application's statement after the restart
        conn.execute("SELECT count(*) FROM pg_class")
    runtime.run_collector("statements")
    runtime.run_collector("statements")
    intervals = runtime.state.statement_intervals
    assert any(interval.deltas for interval in intervals), "no interval holds the statement after the restart"
    for interval in intervals:
        assert all(d.calls >= 0 and d.rows >= 0 for d in interval.deltas)
    assert runtime.state.collector("statements").last_error is None
    users = {r.username for r in runtime.state.current().statements.rows}
    assert "postgres" in users and MONITOR_ROLE not in users  # the agent's own (marked) statements are left out
    runtime.close()


def test_a_retry_in_progress_does_not_block_other_threads(black_hole: int) -> None:
    config = Config(targets=(TargetConfig("silent", f"host=127.0.0.1 port={black_hole} user=x"),), connect_timeout_s=2)
    runtime = TargetRunner(config.targets[0], config, TargetState("silent"))
    runtime.run_collector("server")  # the first attempt times out: the link is now failing
    time.sleep(1.2)  # past the first backoff step
    retry = threading.Thread(target=runtime.run_collector, args=("server",))
    retry.start()
    time.sleep(0.5)
    started = time.monotonic()
    runtime.run_collector("activity")  # must not sit out the retry's connect timeout
    waited = time.monotonic() - started
    retry.join()
    assert waited < 1.0, f"waited {waited:.1f}s behind another thread's connect"
    assert runtime.state.collector("server").errors == 2
    assert "timeout" in (runtime.state.collector("activity").last_error or "")


def test_a_promoted_standby_is_seen_as_primary(fresh_pg: Cluster, installations, sandbox) -> None:
    from pgradar.agent.runtime.state import AgentState
    from pgradar.exporters.prometheus import registry_for

    tools = None if fresh_pg.installation.tool("pg_basebackup") else installations[max(installations)]
    standby = sandbox.standby(fresh_pg, f"promoted{fresh_pg.major}", basebackup_from=tools)
    try:
        config = Config(
            targets=(TargetConfig("primary", monitor_dsn(fresh_pg)), TargetConfig("replica", monitor_dsn(standby)))
        )
        agent = Agent(config)
        agent.run_once()
        replica = agent.state.target("replica")
        assert replica.role == "standby" and replica.current().replication.receiver is not None
        assert [s.standby for s in agent.state.target("primary").current().replication.standbys] == [
            f"promoted{fresh_pg.major}"
        ]
        with superuser(standby) as conn:
            conn.execute("SELECT pg_promote()")  # waits until the standby is a primary

        def promoted() -> bool:
            agent.run_once()
            return replica.role == "primary" and not agent.state.target("primary").current().replication.standbys

        wait_for(promoted, 60, step=1, what="the promotion seen from both ends")
        assert replica.current().replication.receiver is None
        registry = registry_for(AgentState(agent.state.targets), 10)
        assert (
            registry.get_sample_value(
                "pgradar_server_info", {"target": "replica", "version": replica.server.version, "role": "primary"}
            )
            == 1.0
        )
        assert registry.get_sample_value("pgradar_server_in_recovery", {"target": "replica"}) == 0.0
        assert all(s.last_error is None for s in replica.status.values()), replica.status
        agent.stop()
    finally:
        standby.stop("immediate")
        sandbox.clusters.remove(standby)
