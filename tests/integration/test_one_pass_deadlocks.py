"""Deadlocks in one pass of `check` (no --window): counted since the database's reset, with the window.

A CI run whose tests deadlocked must not pass the gate: `check` judges the
statement kinds on counters since their reset, and deadlocks on
pg_stat_database.deadlocks since its stats_reset (or the server start).
With --baseline, only the deadlocks since the baseline count.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
from support import monitor_dsn, pgradar, superuser

from pgradar.commands.embedded import Cluster


def _transfer(dsn: str, first: int, second: int, barrier: threading.Barrier) -> None:
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute("UPDATE accounts SET balance = balance - 10 WHERE id = %s", (first,))
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(3)
            conn.execute("UPDATE accounts SET balance = balance + 10 WHERE id = %s", (second,))
            conn.commit()
        except psycopg.errors.DeadlockDetected:
            conn.rollback()


def _deadlock(cluster: Cluster) -> None:
    """Two transfers in opposite orders, at once: one of them is the deadlock's victim."""
    before = _count(cluster)
    barrier = threading.Barrier(2)
    workers = [
        threading.Thread(target=_transfer, args=(cluster.dsn("app"), a, b, barrier)) for a, b in ((1, 2), (2, 1))
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    deadline = time.monotonic() + 10
    while _count(cluster) <= before and time.monotonic() < deadline:  # 13-14 report every 0.5 s
        time.sleep(0.2)
    assert _count(cluster) == before + 1


def _count(cluster: Cluster) -> int:
    with superuser(cluster) as conn:
        return int(conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = 'app'").fetchone()[0])


def _check(cluster: Cluster, *args: str) -> list[dict[str, object]]:
    result = pgradar(
        "check", "--dsn", f"main={monitor_dsn(cluster)}", "--format", "json", "--fail-on", "never", *args, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return [p for p in json.loads(result.stdout)["problems"] if p["kind"] == "deadlocks"]


@pytest.mark.heavy
def test_deadlocks_before_a_one_pass_check_are_found_and_a_baseline_judges_the_difference(
    fresh_pg: Cluster, tmp_path: Path
) -> None:
    with superuser(fresh_pg, "app") as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 10) g")
    assert _check(fresh_pg) == []  # the look-alike: a database without deadlocks
    _deadlock(fresh_pg)
    _deadlock(fresh_pg)
    (found,) = _check(fresh_pg)
    evidence = found["evidence"]
    assert found["database"] == "app" and evidence["deadlocks"] == 2, found  # type: ignore[index]
    # since the database's stats_reset (set when its statistics entry began) or the server start
    assert evidence["window_source"] in ("stats_reset", "server start"), evidence  # type: ignore[index]
    assert evidence["window_seconds"] > 0 and evidence["window_since"], evidence  # type: ignore[index]
    base = tmp_path / "baseline.json"
    saved = pgradar(
        "check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--save-baseline", str(base), "--fail-on", "never"
    )
    assert saved.returncode == 0, saved.stderr
    assert _check(fresh_pg, "--baseline", str(base)) == []  # none since the baseline
    _deadlock(fresh_pg)
    (since,) = _check(fresh_pg, "--baseline", str(base))
    assert since["evidence"]["deadlocks"] == 1, since  # type: ignore[index]
    with superuser(fresh_pg, "app") as conn:
        conn.execute("SELECT pg_stat_reset()")  # a reset: counted from it, and said so
    _deadlock(fresh_pg)
    (after_reset,) = _check(fresh_pg)
    assert after_reset["evidence"]["deadlocks"] == 1  # type: ignore[index]
    assert after_reset["evidence"]["window_source"] == "stats_reset", after_reset  # type: ignore[index]
    assert after_reset["evidence"]["window_since"] > evidence["window_since"], after_reset  # type: ignore[index,operator]
