"""`pgradar run` as a user runs it: a child process against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from support import MONITOR_PASSWORD, MONITOR_ROLE, answers, monitor_dsn, sample, scrape, superuser, wait_for

from pgradar.agent.model.jobs import COLLECTOR_NAMES
from pgradar.commands.embedded import Cluster, free_port


@dataclass
class Running:
    proc: subprocess.Popen[str]
    port: int
    output: str = ""  # filled in when the agent has stopped


@contextmanager
def agent(*args: str) -> Iterator[Running]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgradar.commands.cli", "run", "--listen", f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_TEST_")}, "PGRADAR_LOG_LEVEL": "INFO"},
    )
    try:
        wait_for(lambda: answers(port) or proc.poll() is not None, 30, what="the agent's HTTP server")
        running = Running(proc, port)
        assert proc.poll() is None, "the agent exited at start"
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if "running" in locals():
            running.output = out
        else:
            print(out)


def workload(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, kind int, note text)")
        conn.execute("CREATE INDEX IF NOT EXISTS items_kind ON items (kind)")
        conn.execute("INSERT INTO items SELECT g, g % 7, 'n' FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING")
        for i in range(30):
            conn.execute("SELECT count(*) FROM items WHERE kind = %s", (i % 7,))


def test_metrics_outage_and_recovery(fresh_pg: Cluster) -> None:
    workload(fresh_pg)
    with agent(
        "--dsn",
        f"main={monitor_dsn(fresh_pg)}",
        "--interval",
        "server=1",
        "--interval",
        "statements=1",
        "--interval",
        "tables=1",
        "--interval",
        "indexes=1",
    ) as a:
        proc, port = a.proc, a.port
        wait_for(lambda: "ready" in _ready(port), 30, what="readiness")
        workload(fresh_pg)  # a second interval with work in it

        def complete() -> str | None:
            text = scrape(port)
            wanted = [
                sample(text, "pgradar_up", target="main") == 1.0,
                sample(text, "pgradar_table_live_rows", relation="items", database="app") is not None,
                sample(text, "pgradar_index_scans_total", index="items_kind") is not None,
                sample(text, "pgradar_statement_calls_total", database="app", user="postgres") is not None,
            ]
            return text if all(wanted) else None

        text = wait_for(complete, 30, what="per-statement, per-table and per-index series")
        assert sample(text, "pgradar_collector_enabled", collector="statements") == 1.0

        fresh_pg.stop("fast")
        wait_for(lambda: sample(scrape(port), "pgradar_up", target="main") == 0.0, 30, what="pgradar_up 0")
        time.sleep(3)
        assert proc.poll() is None, "the agent exited while its database was down"
        assert sample(scrape(port), "pgradar_collector_errors_total", collector="server") >= 1

        fresh_pg.start()
        wait_for(lambda: sample(scrape(port), "pgradar_up", target="main") == 1.0, 90, what="recovery")
        assert proc.poll() is None
    output = a.output
    assert "Traceback" not in output
    assert MONITOR_PASSWORD not in output
    assert "recovered" in output


def _ready(port: int) -> str:
    try:
        return scrape(port, "/readyz", timeout=2)
    except OSError:
        return ""


def _agent_calls(cluster: Cluster) -> int:
    with superuser(cluster) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
            "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s",
            (MONITOR_ROLE,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_scrapes_run_no_sql(fresh_pg: Cluster) -> None:
    # Long intervals: after the first pass nothing is due, so any statement
    # the agent's role runs from here on would come from a scrape.
    long = [a for c in COLLECTOR_NAMES for a in ("--interval", f"{c}=3600")]
    with agent("--dsn", f"main={monitor_dsn(fresh_pg)}", *long) as a:
        port = a.port
        wait_for(lambda: "ready" in _ready(port), 30, what="readiness")
        time.sleep(1)
        before = _agent_calls(fresh_pg)
        assert before > 0
        for _ in range(25):
            assert "pgradar_up" in scrape(port)
        time.sleep(1)
        assert _agent_calls(fresh_pg) == before


def test_without_pg_stat_statements_the_rest_keeps_working(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg) as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    workload(fresh_pg)
    with agent("--dsn", f"main={monitor_dsn(fresh_pg)}") as a:
        port = a.port
        wait_for(lambda: "ready" in _ready(port), 30, what="readiness")
        text = scrape(port)
        assert sample(text, "pgradar_collector_enabled", collector="statements") == 0.0
        assert sample(text, "pgradar_table_live_rows", relation="items") is not None
        assert sample(text, "pgradar_up", target="main") == 1.0
    output = a.output
    assert "CREATE EXTENSION pg_stat_statements" in output
    assert output.count("collector statements is off") == 1  # said once, not on every poll


def test_check_json_and_problems_endpoint(pg: Cluster) -> None:
    """`pgradar check --format json` and `/problems` print the DESIGN 3.1 document."""
    from support import pgradar

    proc = pgradar("check", "--dsn", f"main={monitor_dsn(pg)}", "--format", "json", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == 1
    (target,) = doc["targets"]
    assert target["name"] == "main" and target["ok"] is True and target["error"] is None
    assert target["server_version"] // 10000 == pg.major and target["role"] == "primary"
    assert isinstance(doc["problems"], list)
    assert MONITOR_PASSWORD not in proc.stdout + proc.stderr
    with agent("--dsn", f"main={monitor_dsn(pg)}") as a:
        served = json.loads(wait_for(lambda: _problems_when_up(a.port), 30, what="/problems with the target up"))
    assert served["targets"][0]["server_version"] == target["server_version"]


def _problems_when_up(port: int) -> str | None:
    text = scrape(port, "/problems")
    return text if json.loads(text)["targets"][0]["ok"] else None
