"""idle_in_transaction, long_running_query, lock_contention and pool_saturation by hand."""

from dataclasses import replace

import pytest
from factories import bouncer, observation, pool, session, sessions, settings

from pgradar.agent.classifiers.pools import pgbouncer_pool_saturation, server_connections_saturation
from pgradar.agent.classifiers.sessions import (
    idle_in_transaction,
    lock_contention,
    long_running_query,
    root_blockers,
)
from pgradar.agent.model.activity import ConnectionGroup, RelationName
from pgradar.agent.model.thresholds import DEFAULT

T = replace(
    DEFAULT,
    idle_in_transaction_warning_s=60,
    idle_in_transaction_critical_s=600,
    long_query_warning_s=300,
    long_query_critical_s=1800,
    lock_wait_warning_s=10,
    lock_wait_critical_s=60,
    pool_waiting_clients=5,
    pool_maxwait_warning_s=1,
    pool_maxwait_critical_s=10,
    connections_warning_ratio=0.8,
    connections_critical_ratio=0.95,
)
SLEEP = "SELECT pg_sleep($1)"


@pytest.mark.parametrize(("idle_s", "severity"), [(59.9, None), (60, "warning"), (600, "critical")])
def test_idle_in_transaction_edges(idle_s: float, severity: str | None) -> None:
    obs = observation(
        sessions=sessions(
            session(11, "idle in transaction", state_s=idle_s),
            session(12, "idle", state_s=9999),
            session(13, "active", query_s=1),
        )
    )
    found = list(idle_in_transaction(obs, T))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert f.database == "app" and f.evidence["pids"] == [11]
        assert "pg_terminate_backend(11)" in f.recommendation
        assert "idle_in_transaction_session_timeout = '600s'" in f.recommendation


def test_idle_in_transaction_one_finding_per_database_worst_first() -> None:
    obs = observation(
        sessions=sessions(
            session(1, "idle in transaction", state_s=100),
            session(2, "idle in transaction (aborted)", state_s=700),
            session(3, "idle in transaction", database="other", state_s=61),
        ),
        settings=settings(idle_timeout_s=3600),
    )
    by_db = {f.database: f for f in idle_in_transaction(obs, T)}
    assert set(by_db) == {"app", "other"}
    assert by_db["app"].severity == "critical" and by_db["app"].evidence["pids"] == [2, 1]
    assert "pg_terminate_backend(2)" in by_db["app"].recommendation
    assert "idle_in_transaction_session_timeout is 60 min" in by_db["app"].recommendation


@pytest.mark.parametrize(("run_s", "severity"), [(299, None), (300, "warning"), (1800, "critical")])
def test_long_running_query_edges(run_s: float, severity: str | None) -> None:
    obs = observation(
        sessions=sessions(
            session(21, query_s=run_s, queryid=77), session(22, "idle in transaction", query_s=5000, queryid=88)
        ),
        texts={(5, 77): SLEEP},
    )
    found = list(long_running_query(obs, T))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert (f.database, f.queryid) == ("app", "77")
        assert f.evidence["running"]["statement"] == SLEEP and f.evidence["pids"] == [21]
        assert "pg_cancel_backend(21)" in f.recommendation


def test_long_running_query_without_queryid_before_14() -> None:
    (f,) = long_running_query(observation(sessions=sessions(session(21, query_s=400, queryid=None))), T)
    assert f.queryid is None and f.evidence["running"]["statement"] is None


def test_lock_contention_names_relation_and_root_blocker() -> None:
    holder = session(31, "idle in transaction", query_s=50, queryid=99)
    middle = session(32, query_s=40, blocked_by=(31,), lock_relid=16400)
    tail = session(33, query_s=12, blocked_by=(32,), lock_relid=16400)
    young = session(34, query_s=2, blocked_by=(31,), lock_relid=16400)
    obs = observation(
        sessions=sessions(holder, middle, tail, young, relations=(RelationName(5, 16400, "public", "Orders"),)),
        texts={(5, 99): "UPDATE orders SET v = v + $1 WHERE id = $2"},
    )
    (f,) = lock_contention(obs, T)
    assert (f.database, f.schema, f.relation) == ("app", "public", "Orders")
    assert f.severity == "warning" and f.evidence["blocked_pids"] == [32, 33]
    assert f.evidence["root_blocking_pids"] == [31]
    assert f.evidence["blocker"]["statement"].startswith("UPDATE orders")
    assert f.recommendation.startswith("SELECT pg_terminate_backend(31);")
    assert '"Orders"' in f.summary


def test_lock_contention_edges() -> None:
    def one(wait: float):
        return list(
            lock_contention(
                observation(
                    sessions=sessions(session(1, "idle in transaction"), session(2, query_s=wait, blocked_by=(1,)))
                ),
                T,
            )
        )

    assert one(9.9) == []
    assert one(10)[0].severity == "warning" and one(60)[0].severity == "critical"
    assert one(10)[0].relation is None


def test_root_blockers_survive_cycles() -> None:
    a, b = session(1, blocked_by=(2,)), session(2, blocked_by=(1,))
    assert root_blockers([a, b], [a]) == []


@pytest.mark.parametrize(
    ("waiting", "maxwait", "severity"),
    [
        (0, 0, None),
        (1, 0.5, None),
        (4, 0.9, None),
        (5, 0.0, "warning"),
        (1, 1.0, "warning"),
        (1, 10.0, "critical"),
    ],
)
def test_pgbouncer_pool_edges(waiting: int, maxwait: float, severity: str | None) -> None:
    found = list(pgbouncer_pool_saturation(observation(target="bouncer", pgbouncer=bouncer(pool(waiting, maxwait))), T))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert f.pool == "app/shop" and f.database is None
        assert f.evidence["cl_waiting"] == waiting and f.evidence["maxwait_seconds"] == maxwait
        assert f.evidence["pool_size"] == 2 and "pool_size" in f.recommendation


def test_session_mode_pool_advice() -> None:
    (f,) = pgbouncer_pool_saturation(observation(target="b", pgbouncer=bouncer(pool(3, 5, mode="session"))), T)
    assert "pool_mode = transaction" in f.recommendation


@pytest.mark.parametrize(("used", "severity"), [(77, None), (78, "warning"), (92, "warning"), (93, "critical")])
def test_server_connections_near_the_limit(used: int, severity: str | None) -> None:
    groups = (
        ConnectionGroup("app", "shop", "web", "idle", used - 1),
        ConnectionGroup("app", "shop", "web", "active", 1),
    )
    obs = observation(sessions=sessions(connections=groups), settings=settings(100, 3))
    found = list(server_connections_saturation(obs, T))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert f.pool is None and f.evidence["limit"] == 97 and f.evidence["connections"] == used


def test_sessions_need_their_snapshot() -> None:
    obs = observation()
    for rule in (
        idle_in_transaction,
        long_running_query,
        lock_contention,
        pgbouncer_pool_saturation,
        server_connections_saturation,
    ):
        assert list(rule(obs, T)) == []


def test_a_blocked_statement_is_lock_contention_not_long_running() -> None:
    obs = observation(
        sessions=sessions(session(1, "idle in transaction", query_s=900), session(2, query_s=900, blocked_by=(1,)))
    )
    assert list(long_running_query(obs, T)) == []
    assert [f.kind for f in lock_contention(obs, T)] == ["lock_contention"]
