"""Replication, session and pgbouncer series are rendered with catalogue names and labels."""

from dataclasses import replace
from datetime import timedelta

from factories import MB, bouncer, pool, receiver, replication, session, sessions, slot, standby_row

from pgradar.agent.model.activity import ConnectionGroup
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.prometheus import registry_for
from pgradar.exporters.series import CONNECTION_SERIES, bounded_connections


def test_replication_sessions_and_pools_are_exported() -> None:
    primary, standby, pgb = TargetState("primary"), TargetState("standby"), TargetState("bouncer")
    primary.record("replication", replication(standby_row(behind=5 * MB, replay_lag=2.5), slots=(slot(),)))
    primary.record(
        "sessions",
        sessions(
            session(1, "idle in transaction", state_s=70),
            session(2, query_s=12, blocked_by=(1,)),
            session(3, query_s=400),
            connections=(ConnectionGroup("app", "shop", "web", "active", 7),),
        ),
    )
    paused = replication(
        receiver_stat=receiver(received=10 * MB, replayed=8 * MB, last_replay_ago=30, pause_state="paused")
    )
    standby.record("replication", replace(paused, taken_at=paused.taken_at - timedelta(seconds=45)))
    standby.record("replication", paused)
    pgb.record("pgbouncer", bouncer(pool(waiting=4, maxwait=3.5)))
    registry = registry_for(AgentState({"primary": primary, "standby": standby, "bouncer": pgb}), 10)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("pgradar_replication_lag_bytes", target="primary", standby="replica1", stage="replay") == 5 * MB
    assert value("pgradar_replication_lag_seconds", target="primary", standby="replica1", stage="replay") == 2.5
    assert value("pgradar_replication_slot_retained_bytes", target="primary", slot="old_slot") == 2048 * MB
    assert value("pgradar_replication_slot_active", target="primary", slot="old_slot") == 0
    assert value("pgradar_wal_bytes_total", target="primary") == 1000 * MB
    assert value("pgradar_standby_replay_paused", target="standby") == 1
    assert value("pgradar_standby_replay_behind_bytes", target="standby") == 2 * MB
    assert value("pgradar_standby_replay_lag_seconds", target="standby") == 30
    assert (
        value("pgradar_connections", target="primary", database="app", user="shop", application="web", state="active")
        == 7
    )
    assert value("pgradar_idle_in_transaction_sessions", target="primary", database="app") == 1
    assert value("pgradar_blocked_sessions", target="primary", database="app") == 1
    assert value("pgradar_longest_lock_wait_seconds", target="primary", database="app") == 12
    assert value("pgradar_running_statement_seconds", target="primary", database="app", queryid="77") == 400
    pool_labels = {"target": "bouncer", "pool": "app/shop", "database": "app", "user": "shop"}
    assert value("pgradar_pgbouncer_clients", state="waiting", **pool_labels) == 4
    assert value("pgradar_pgbouncer_maxwait_seconds", **pool_labels) == 3.5
    assert value("pgradar_pgbouncer_pool_size", target="bouncer", database="app") == 2
    assert value("pgradar_pgbouncer_default_pool_size", target="bouncer") == 20


def test_caught_up_standby_exports_zero_lag_seconds() -> None:
    standby = TargetState("standby")
    standby.record("replication", replication(receiver_stat=receiver(last_replay_ago=86400)))
    registry = registry_for(AgentState({"standby": standby}), 10)
    assert registry.get_sample_value("pgradar_standby_replay_lag_seconds", {"target": "standby"}) == 0


def test_connection_series_are_bounded() -> None:
    groups = [ConnectionGroup("app", "u", f"worker-{i}", "idle", 1) for i in range(150)]
    groups.append(ConnectionGroup("app", "u", "web", "active", 40))
    bounded = bounded_connections(groups)
    assert len(bounded) == CONNECTION_SERIES + 1 and sum(bounded.values()) == 190
    assert bounded[("app", "u", "web", "active")] == 40
    assert bounded[("(other)", "(other)", "(other)", "idle")] == 51
