#!/usr/bin/env python3
"""Soak: many polls against a churning workload; the agent's memory must stay flat.

Starts PostgreSQL (18 by default) with a small pg_stat_statements.max, a
workload that keeps creating new distinct statements (so entries are evicted
all the time), and `pgradar run` as a child process polling every second.
Prints the agent's RSS after the warm-up and at the end, the polls run, and
the largest number of series a scrape returned.

Usage: python scripts/soak.py [--polls 600] [--top 20] [--major 18]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from pgradar.commands.embedded import Sandbox, find_installations, free_port

PGSS_MAX = 200


@dataclass
class SoakResult:
    polls: int
    rss_after_warmup_kib: int
    rss_at_last_third_kib: int  # where the last third of the polls starts: the soak's goal is flat from here
    rss_at_end_kib: int
    peak_rss_kib: int
    max_series: int
    max_statement_series: int
    top_statements: int
    pgss_max: int


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def churn(dsn: str, stop: threading.Event) -> None:
    """Distinct statements forever: the number of output columns changes the queryid."""
    width = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            width = width % 1500 + 1
            conn.execute("SELECT " + ", ".join(["1"] * width))
            conn.execute("SELECT count(*) FROM pg_class WHERE relpages > %s", (width,))


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def soak(polls: int, top: int, major: int, progress: bool = True) -> SoakResult:
    installations = find_installations()
    if major not in installations:
        raise SystemExit(f"PostgreSQL {major} not found (see README: make servers)")
    stop = threading.Event()
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(installations[major], settings={"pg_stat_statements.max": str(PGSS_MAX)})
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        worker = threading.Thread(target=churn, args=(cluster.dsn(), stop), daemon=True)
        worker.start()
        port = free_port()
        intervals = [
            a
            for c in ("server", "activity", "database", "statements", "tables", "indexes", "classify")
            for a in ("--interval", f"{c}=1")
        ]
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgradar.commands.cli",
                "run",
                "--dsn",
                f"soak={cluster.dsn()}",
                "--listen",
                f"127.0.0.1:{port}",
                "--top-statements",
                str(top),
                "--log-level",
                "WARNING",
                *intervals,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            max_series = max_statements = 0
            warm = last_third = 0
            for poll in range(1, polls + 1):
                time.sleep(1)
                try:
                    text = scrape(port)
                except OSError:
                    continue
                samples = [line for line in text.splitlines() if line and not line.startswith("#")]
                max_series = max(max_series, len(samples))
                max_statements = max(
                    max_statements, sum(1 for s in samples if s.startswith("pgradar_statement_calls_total{"))
                )
                if poll == min(30, polls // 3):
                    warm = rss_kib(agent.pid)[0]
                if poll == polls - polls // 3:
                    last_third = rss_kib(agent.pid)[0]
                if progress and poll % 60 == 0:
                    print(f"  poll {poll}/{polls}: rss {rss_kib(agent.pid)[0]} KiB, series {len(samples)}", flush=True)
            current, peak = rss_kib(agent.pid)
            return SoakResult(polls, warm, last_third, current, peak, max_series, max_statements, top, PGSS_MAX)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
            stop.set()
            worker.join(10)


def traced(polls: int, major: int, top: int = 15) -> None:
    """The soak in this process, with tracemalloc: what grew over the last third, by line.

    Each poll is every collector once and a classification (``Agent.run_once``),
    back to back, while the churn runs; tracemalloc compares the memory held at
    the start of the last third with the end, so a cache or history that keeps
    growing shows as the lines that allocated it.
    """
    import tracemalloc

    from pgradar.agent.runtime.agent import Agent
    from pgradar.agent.settings import config as configuration

    installations = find_installations()
    stop = threading.Event()
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(installations[major], settings={"pg_stat_statements.max": str(PGSS_MAX)})
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        worker = threading.Thread(target=churn, args=(cluster.dsn(), stop), daemon=True)
        worker.start()
        agent = Agent(configuration.build({"targets": [{"name": "soak", "dsn": cluster.dsn()}]}))
        tracemalloc.start()
        try:
            mark = None
            for poll in range(1, polls + 1):
                agent.run_once()
                if poll == polls - polls // 3:
                    mark = tracemalloc.take_snapshot()
            end = tracemalloc.take_snapshot()
        finally:
            agent.stop()
            stop.set()
            worker.join(10)
    assert mark is not None
    diff = end.compare_to(mark, "lineno")
    grown = sum(d.size_diff for d in diff)
    print(f"traced memory over the last third ({polls // 3} of {polls} polls): {grown / 2**20:+.2f} MiB")
    for d in diff[:top]:
        frame = d.traceback[0]
        print(f"  {d.size_diff / 2**10:+9.1f} KiB {d.count_diff:+7,} blocks  {frame.filename}:{frame.lineno}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=600, help="scrapes, one a second (default 600)")
    parser.add_argument("--top", type=int, default=20, help="--top-statements for the agent (default 20)")
    parser.add_argument("--major", type=int, default=18)
    parser.add_argument(
        "--traced", action="store_true", help="run the agent in this process under tracemalloc; print what grew"
    )
    args = parser.parse_args()
    if args.traced:
        traced(args.polls, args.major)
        return 0
    result = soak(args.polls, args.top, args.major)
    print(json.dumps(asdict(result), indent=2))
    growth = result.rss_at_end_kib - result.rss_after_warmup_kib
    print(
        f"RSS after warm-up {result.rss_after_warmup_kib / 1024:.1f} MiB, at the end "
        f"{result.rss_at_end_kib / 1024:.1f} MiB ({growth / 1024:+.1f} MiB over {result.polls} polls, "
        f"{(result.rss_at_end_kib - result.rss_at_last_third_kib) / 1024:+.1f} MiB over the last third); "
        f"series at most {result.max_series}, per-statement at most {result.max_statement_series} "
        f"(top {result.top_statements})"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
