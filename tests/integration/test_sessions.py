"""Sessions on a real server: an idle transaction, a long pg_sleep and a row lock wait,
each reported while it lasts and gone after; the statement text never leaves the server."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import psycopg
from support import monitor_dsn, of_kind, poll, superuser, wait_for, watch

from pgradar.agent.model.activity import SessionsSnapshot
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.commands.embedded import Cluster

T = replace(
    DEFAULT,
    idle_in_transaction_warning_s=1,
    idle_in_transaction_critical_s=3600,
    long_query_warning_s=1,
    long_query_critical_s=3600,
    lock_wait_warning_s=1,
    lock_wait_critical_s=3600,
)
SECRET = "literal-4242-secret"


def in_thread(dsn: str, statement: str) -> tuple[threading.Thread, list[BaseException]]:
    """Run a statement that blocks in its own connection; errors (a cancel) are kept, not raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(statement)
        except psycopg.Error as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def pid_of(conn: psycopg.Connection, condition: str) -> int | None:
    row = conn.execute(f"SELECT pid FROM pg_stat_activity WHERE {condition}").fetchone()
    return row[0] if row else None


def one(found: dict[str, list[Finding]], kind: str, **match: object) -> Finding:
    hits = [f for f in of_kind(found, kind) if all(getattr(f, k) == v for k, v in match.items())]
    assert len(hits) == 1, (kind, match, of_kind(found, kind))
    return hits[0]


def test_idle_transaction_long_query_and_row_lock(heavy_pg: Cluster) -> None:
    with (
        watch(("main", monitor_dsn(heavy_pg)), thresholds=T) as agent,
        superuser(heavy_pg, "app") as admin,
        superuser(heavy_pg, "app") as holder,
    ):
        admin.execute("CREATE TABLE IF NOT EXISTS locked (id int PRIMARY KEY, v int)")
        admin.execute("INSERT INTO locked VALUES (1, 0) ON CONFLICT DO NOTHING")
        holder.execute("BEGIN")
        holder.execute(f"UPDATE locked SET v = v + 1 WHERE id = 1 AND '{SECRET}' <> ''")  # then idle in xact
        holder_pid = holder.info.backend_pid
        sleeper, sleep_errors = in_thread(heavy_pg.dsn("app"), f"SELECT pg_sleep(60), '{SECRET}'")
        waiter, wait_errors = in_thread(heavy_pg.dsn("app"), "UPDATE locked SET v = v + 10 WHERE id = 1")
        try:
            sleeper_pid = wait_for(
                lambda: pid_of(admin, "query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'"), 10, what="the sleeper"
            )
            waiter_pid = wait_for(
                lambda: pid_of(admin, f"{holder_pid} = ANY(pg_blocking_pids(pid))"), 10, what="the blocked update"
            )
            wait_for(
                lambda: admin.execute(
                    "SELECT min(now() - query_start) > interval '1.5 s' FROM pg_stat_activity WHERE pid IN (%s, %s)",
                    (sleeper_pid, waiter_pid),
                ).fetchone()[0],
                10,
                what="both to run over a second",
            )
            found = poll(agent, "settings", "statements", "sessions")
            snapshot: SessionsSnapshot = agent.state.target("main").current().sessions
        finally:
            admin.execute("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
            holder.execute("COMMIT")
            sleeper.join(10)
            waiter.join(10)
        assert not wait_errors and len(sleep_errors) == 1  # the update went through; the sleep was cancelled

        idle = one(found, "idle_in_transaction", database="app")
        assert holder_pid in idle.evidence["pids"] and f"pg_terminate_backend({holder_pid})" in idle.recommendation
        assert "idle_in_transaction_session_timeout" in idle.recommendation

        running = of_kind(found, "long_running_query")  # the blocked update is lock_contention's
        assert len(running) == 1 and running[0].database == "app" and running[0].evidence["pids"] == [sleeper_pid]
        assert f"pg_cancel_backend({sleeper_pid})" in running[0].recommendation
        sleeping = next(s for s in snapshot.sessions if s.pid == sleeper_pid)
        server = agent.state.target("main").server
        assert server is not None
        if server.has_query_id_in_activity:
            assert sleeping.queryid is not None and running[0].queryid == str(sleeping.queryid)
            assert running[0].evidence["running"]["statement"] in (None, "SELECT pg_sleep($1), $2")
        else:
            assert running[0].queryid is None

        lock = one(found, "lock_contention", database="app")
        assert (lock.schema, lock.relation) == ("public", "locked")
        assert lock.evidence["blocked_pids"] == [waiter_pid] and lock.evidence["root_blocking_pids"] == [holder_pid]
        assert lock.evidence["blocker"]["state"] == "idle in transaction"
        assert lock.recommendation.startswith(f"SELECT pg_terminate_backend({holder_pid});")

        # No raw statement text anywhere in what pgradar keeps or says.
        assert SECRET not in json.dumps([f.to_json() for fs in found.values() for f in fs], default=str)
        assert SECRET not in repr(snapshot)

        after = poll(agent, "sessions")
        for kind in ("idle_in_transaction", "long_running_query", "lock_contention"):
            assert of_kind(after, kind) == [], kind
        admin.execute("DROP TABLE locked")
