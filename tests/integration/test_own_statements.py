"""The agent's own statements on real servers (13 and 18), with pg_stat_statements.track = all.

Every statement pgradar sends carries the marker; its EXPLAIN and PREPARE
texts, recorded under the application's queryid, never replace the
application's text, and its catalog queries never reach the statement
problems nor the top statements (DESIGN 4).
"""

from __future__ import annotations

import psycopg
from psycopg.types.numeric import Int4
from support import MONITOR_ROLE, monitor_dsn, pgradar, superuser, wait_for

from pgradar.agent.collect.queries import MARKER, is_own
from pgradar.agent.derive.deltas import rank_statements
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster
from pgradar.exporters.status import render_status

LOOKUP = "SELECT id, note FROM own_orders WHERE customer_id = %s"
STATEMENT_KINDS = {
    "temp_spill",
    "low_cache_hit",
    "n_plus_one",
    "select_star",
    "plan_regression",
    "row_misestimate",
    "non_sargable_predicate",
    "long_running_query",
}


def _agent(cluster: Cluster) -> Agent:
    return Agent(Config(targets=(TargetConfig("main", monitor_dsn(cluster)),)))


def _user_queryid(conn: psycopg.Connection) -> int:
    (queryid,) = conn.execute(
        "SELECT queryid FROM pg_stat_statements WHERE query LIKE 'SELECT id, note FROM "
        "own_orders%' AND calls > 0 ORDER BY calls DESC LIMIT 1"
    ).fetchone()
    return int(queryid)


def test_own_statements_are_marked_and_left_out(fresh_pg: Cluster) -> None:
    with superuser(fresh_pg) as conn:
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        conn.execute("SELECT pg_reload_conf()")
    with superuser(fresh_pg, "app") as conn:
        conn.execute("CREATE TABLE own_orders (id int PRIMARY KEY, customer_id int, note text)")
        conn.execute("INSERT INTO own_orders SELECT g, g % 5000, 'note ' || g FROM generate_series(1, 60000) g")
        conn.execute(f"GRANT SELECT ON own_orders TO {MONITOR_ROLE}")
        conn.execute("ANALYZE own_orders")
        for i in range(200):  # int4, as PREPARE and GENERIC_PLAN infer it: the agent's plan shares the queryid
            conn.execute(LOOKUP, (Int4(i),))
    with superuser(fresh_pg) as conn:  # pg_stat_statements is installed in postgres and shows every database
        user_queryid = _user_queryid(conn)

    first = _agent(fresh_pg)
    try:
        first.run_once()
        first.run_once()
    finally:
        first.stop()
    # pgradar explain --query plans the same statement again: its PREPARE (before 16) or
    # EXPLAIN (GENERIC_PLAN) is recorded under the application's queryid.
    run = pgradar(
        "explain",
        "--dsn",
        monitor_dsn(fresh_pg, "app"),
        "--query",
        "SELECT id, note FROM own_orders WHERE customer_id = $1",
    )
    assert run.returncode == 0, run.stderr

    with superuser(fresh_pg) as conn:
        mine = conn.execute(
            "SELECT s.query, s.queryid FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE r.rolname = %s",
            (MONITOR_ROLE,),
        ).fetchall()
        wrappers = [q for q, _ in mine if is_own(q) and ("EXPLAIN (" in q or "PREPARE pgradar_explain" in q)]
        for_user = [q for q, qid in mine if qid == user_queryid]
    assert wrappers, mine  # its EXPLAIN/PREPARE texts were recorded, marked
    # Every statement the agent's role ran starts with the marker, except the
    # application's statement itself nested in the agent's EXPLAIN on 18 (its own text).
    unmarked = [q for q, qid in mine if not is_own(q) and qid != user_queryid]
    assert unmarked == [], unmarked
    assert for_user, "the agent planned the application's statement under its queryid"

    second = _agent(fresh_pg)  # a new agent: the text look-up sees the wrappers too
    try:

        def planned() -> bool:
            second.run_once()
            plans = second.state.target("main").current().plans
            return plans is not None and any(p.queryid == user_queryid and p.summary is not None for p in plans.plans)

        wait_for(planned, 60, step=1, what="the application's statement planned")
        with superuser(fresh_pg, "app") as conn:
            for i in range(50):
                conn.execute(LOOKUP, (Int4(i),))
        second.run_once()  # an interval in which the application ran and the agent polled
        state = second.state.target("main")
        texts = dict(state.statement_texts)
        (text,) = [t for (_, qid), t in texts.items() if qid == user_queryid]
        assert text.startswith("SELECT id, note FROM own_orders WHERE customer_id = $1"), text
        (plan,) = [p for p in state.current().plans.plans if p.queryid == user_queryid]
        assert plan.skipped is None and plan.advice, plan  # advice kept: it is a plain read
        rows = state.current().statements.rows
        assert rows and not [r for r in rows if is_own(texts.get((r.dbid, r.queryid), ""))]
        top = rank_statements(tuple(state.statement_intervals), 50)
        assert user_queryid in {d.queryid for d in top}
        assert not [d for d in top if is_own(texts.get((d.dbid, d.queryid), ""))]
        found = [p.finding for p in state.problems.values()]
        errors = {n: c.last_error for n, c in state.status.items() if c.last_error}
        assert any(f.kind == "seq_scan" and f.queryid == str(user_queryid) for f in found), (found, errors, plan)
        own_ids = {str(qid) for (_, qid), t in texts.items() if is_own(t)}
        assert own_ids, "the agent's own catalog statements are known by their texts"
        assert not [f for f in found if f.kind in STATEMENT_KINDS and f.queryid in own_ids]
        page = render_status(second.state)
        assert MARKER not in page and "pg_stat_statements(false)" not in page
    finally:
        second.stop()


def test_marker_survives_in_pg_stat_statements_on_every_version(pg: Cluster) -> None:
    """The marker ends the recorded text on 13 to 18 (18 drops a leading comment), transaction commands too."""
    from pgradar.agent.collect import queries
    from pgradar.agent.collect.db import SessionSettings, connect

    session = connect(monitor_dsn(pg), SessionSettings())
    try:
        session.dicts(queries.resolve("settings", "settings", pg.major))
        with session.rolled_back():
            session.dicts(queries.resolve("explain", "hypopg", pg.major))
    finally:
        session.close()
    with superuser(pg) as conn:
        texts = [
            q
            for (q,) in conn.execute(
                "SELECT s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s "
                "AND (s.query LIKE '%%FROM pg_settings%%' OR s.query LIKE '%%pg_extension%%' "
                "OR s.query ~* '(^|\\n)\\s*(BEGIN|ROLLBACK)\\M')",
                (MONITOR_ROLE,),
            )
        ]
    assert len(texts) >= 3, texts
    assert all(is_own(q) for q in texts), [q for q in texts if not is_own(q)]
