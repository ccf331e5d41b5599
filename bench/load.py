"""What the load sampler costs: the server's time per sample and the agent's CPU, on a busy server.

    python bench/load.py                     # PostgreSQL 18: 500 connections open, 100 active, 60 samples
    python bench/load.py --majors 13,18 --connections 500 --active 100 --samples 60

For each server it starts a cluster of its own (max_connections above the
connections asked), opens ``--connections`` sessions, and makes ``--active``
of them active: most sleep in ``pg_sleep`` (a wait), ``--lock-share`` of them
(a tenth unless told) queue on one row lock behind a session idle in its
transaction (so the sample's ``pg_blocking_pids`` has work). Then it runs the agent's own load collector
(``load/sample``, its session, its after step into the counters) once per
second for ``--samples`` seconds and prints:

- the server's execution time per sample, from pg_stat_statements (mean, min
  and max of the sampler's statement: the marker and ``pg_blocking_pids`` find
  it; on a shared machine the min is the cost without waiting for a CPU);
- the client's wall time per sample (mean, p95);
- the agent's CPU per sample (the thread's CPU time: the query's client side,
  the rows into ``LoadRow``, the counters and buckets), as a share of a core
  at one sample a second;
- the time to render the load section of /metrics afterwards.

A benchmark, not a test: the figures go to docs/benchmark.md with the command
and the machine that printed them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg

from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Sandbox, find_installations
from pgradar.exporters.series import Families, render_load

# The sampler's statement's execution time so far (read before and after each sample, for its spread).
SAMPLE_EXEC_MS = (
    "SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements"
    " WHERE query LIKE '%pg_blocking_pids%' AND query LIKE '%pgradar */%'"
)


def busy_server(dsn: str, connections: int, active: int, stack: ExitStack, lock_share: float = 0.1) -> None:
    """``connections`` sessions, ``active`` of them active: sleepers and a queue on one row lock."""
    admin = stack.enter_context(psycopg.connect(dsn, autocommit=True))
    admin.execute("CREATE TABLE IF NOT EXISTS hot (id int PRIMARY KEY, v int)")
    admin.execute("INSERT INTO hot VALUES (1, 0) ON CONFLICT DO NOTHING")
    holder = stack.enter_context(psycopg.connect(dsn, autocommit=True))
    holder.execute("BEGIN")
    holder.execute("UPDATE hot SET v = v + 1 WHERE id = 1")  # idle in transaction, holding the row
    waiters = round(active * lock_share)
    statements = ["UPDATE hot SET v = v + 1 WHERE id = 1"] * waiters + ["SELECT pg_sleep(3600)"] * (active - waiters)
    sessions = [stack.enter_context(psycopg.connect(dsn, autocommit=True)) for _ in range(connections - 2)]
    for conn, statement in zip(sessions, statements, strict=False):
        threading.Thread(target=_run, args=(conn, statement), daemon=True).start()
    stack.callback(lambda: [c.cancel() for c in sessions[: len(statements)]])
    stack.callback(lambda: holder.execute("ROLLBACK"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        count = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'").fetchone()
        if count and count[0] >= active:
            return
        time.sleep(0.2)
    raise SystemExit(f"only {count[0] if count else 0} of {active} sessions became active")


def _run(conn: psycopg.Connection, statement: str) -> None:
    with contextlib.suppress(psycopg.Error):  # cancelled at the end
        conn.execute(statement)


def measure(major: int, connections: int, active: int, samples: int, lock_share: float) -> None:
    installation = find_installations()[major]
    with Sandbox() as box, ExitStack() as stack:
        cluster = box.cluster(installation, f"load{major}", {"max_connections": str(connections + 20)})
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        busy_server(cluster.dsn(), connections, active, stack, lock_share)
        agent = Agent(Config(targets=(TargetConfig("bench", cluster.dsn()),)))
        stack.callback(agent.stop)
        runtime = agent.runtimes["bench"]
        runtime.run_collector("server")
        runtime.run_collector("load")  # the session opened, the SQL planned once
        harness = stack.enter_context(psycopg.connect(cluster.dsn(), autocommit=True))
        harness.execute("SELECT pg_stat_statements_reset()")

        def sample_ms() -> float:
            row = harness.execute(SAMPLE_EXEC_MS).fetchone()
            return float(row[0]) if row else 0.0

        walls, cpus, servers = [], [], []
        start = time.monotonic()
        for i in range(samples):
            before = sample_ms()
            wall, cpu = time.perf_counter(), time.thread_time()
            runtime.run_collector("load")
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - wall)
            servers.append(sample_ms() - before)
            time.sleep(max(0.0, start + i + 1 - time.monotonic()))
        status = runtime.state.collector("load")
        assert status.errors == 0, status.last_error
        calls, mean_ms, min_ms, max_ms = harness.execute(
            "SELECT calls, mean_exec_time, min_exec_time, max_exec_time FROM pg_stat_statements"
            " WHERE query LIKE '%pg_blocking_pids%' AND query LIKE '%pgradar */%'"
        ).fetchone()
        servers.sort()
        latest = runtime.state.latest("load")
        render = []
        for _ in range(20):
            began = time.perf_counter()
            render_load(Families(), runtime.state)
            render.append(time.perf_counter() - began)
        walls.sort()
        print(
            f"PostgreSQL {major}: {connections} connections, {len(latest.active)} active sampled "
            f"({sum(r.wait_event_type == 'Lock' for r in latest.active)} on a lock), "
            f"{len(latest.rows)} rows a sample, {samples} samples at 1 s ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"load average {os.getloadavg()[0]:.2f})\n"
            f"  server time per sample (pg_stat_statements, {calls} calls): mean {mean_ms:.3f} ms,"
            f" median {statistics.median(servers):.3f} ms, p95 {servers[int(len(servers) * 0.95) - 1]:.3f} ms,"
            f" min {min_ms:.3f} ms, max {max_ms:.3f} ms\n"
            f"  client wall per sample: mean {statistics.mean(walls) * 1000:.2f} ms, "
            f"p95 {walls[int(len(walls) * 0.95) - 1] * 1000:.2f} ms\n"
            f"  agent CPU per sample: mean {statistics.mean(cpus) * 1000:.2f} ms "
            f"= {statistics.mean(cpus) * 100:.2f}% of a core at one sample a second\n"
            f"  /metrics load section render: median {statistics.median(render) * 1000:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--majors", default="18")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--lock-share", type=float, default=0.1, help="of the active sessions, waiting on a row lock")
    args = parser.parse_args()
    for major in (int(m) for m in args.majors.split(",")):
        measure(major, args.connections, args.active, args.samples, args.lock_share)


if __name__ == "__main__":
    main()
