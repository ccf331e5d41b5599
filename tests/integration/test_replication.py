"""Replication on real streaming standbys: both ends, every version; lag and slots on 13 and 18."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
from support import monitor_dsn, of_kind, poll, superuser, wait_for, watch

from pgradar.agent.model.replication import ReplicationSnapshot
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.commands.embedded import Cluster

MB = 1024 * 1024
# Low enough for a test to cross with a few MB of WAL; seconds as low as the
# config allows, so a stale lag time on an idle primary would show at once.
T = replace(
    DEFAULT,
    replication_lag_warning_bytes=1 * MB,
    replication_lag_critical_bytes=1024 * MB,
    replication_lag_warning_s=0.001,
    replication_lag_critical_s=3600,
    slot_retained_warning_bytes=2 * MB,
    slot_retained_critical_bytes=1024 * MB,
)


def caught_up(primary: psycopg.Connection, name: str) -> Callable[[], bool]:
    """Whether the standby replayed everything the primary had inserted into its WAL when the wait began.

    Not "replay equals the current position": on a shared, busy server autovacuum keeps writing WAL,
    and commits are asynchronous here, so that moving target may never be met exactly.
    """
    (target,) = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone() or (None,)

    def replayed() -> bool:
        row = primary.execute(
            "SELECT replay_lsn >= %s::pg_lsn FROM pg_stat_replication WHERE application_name = %s", (target, name)
        ).fetchone()
        return row is not None and bool(row[0])

    return replayed


def write_wal(conn: psycopg.Connection, rows: int = 30_000) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS wal_writer (id int, pad text)")
    conn.execute("INSERT INTO wal_writer SELECT g, repeat('x', 100) FROM generate_series(1, %s) g", (rows,))
    conn.execute("TRUNCATE wal_writer")


def test_both_ends_on_every_version(pg: Cluster, pg_standby: Cluster) -> None:
    name = f"pg{pg.major}-standby"
    with watch(("primary", monitor_dsn(pg)), ("standby", monitor_dsn(pg_standby)), thresholds=T) as agent:
        with superuser(pg) as conn:
            wait_for(caught_up(conn, name), 30, what="the standby to catch up")
        poll(agent, "replication", "sessions", "settings")
        primary: ReplicationSnapshot = agent.state.target("primary").current().replication
        standby: ReplicationSnapshot = agent.state.target("standby").current().replication
    assert not primary.in_recovery and primary.receiver is None
    (row,) = [s for s in primary.standbys if s.standby == name]
    assert row.state == "streaming" and row.sync_state == "async"
    assert standby.in_recovery and standby.receiver is not None
    assert standby.receiver.standby_name == name and standby.receiver.receiver_status == "streaming"
    assert standby.receiver.pause_state == "not paused"
    assert standby.receiver.replay_wal_bytes is not None and standby.wal_bytes > 0


def test_paused_replay_is_lag_and_resuming_clears_it(heavy_pg: Cluster, heavy_standby: Cluster) -> None:
    name = f"pg{heavy_pg.major}-standby"
    with (
        watch(("primary", monitor_dsn(heavy_pg)), ("standby", monitor_dsn(heavy_standby)), thresholds=T) as both,
        watch(("standby", monitor_dsn(heavy_standby)), thresholds=T) as alone,
        superuser(heavy_pg, "app") as primary,
        superuser(heavy_standby) as standby,
    ):
        try:
            wait_for(caught_up(primary, name), 30, what="the standby to catch up")
            standby.execute("SELECT pg_wal_replay_pause()")
            write_wal(primary)
            wait_for(
                lambda: standby.execute(
                    "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 2 * 1024 * 1024"
                ).fetchone()[0],
                30,
                what="WAL received and not replayed",
            )
            found = poll(both, "replication")
            server = primary.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8, "
                "extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = %s",
                (name,),
            ).fetchone()
            own = poll(alone, "replication")
            received_not_replayed = standby.execute(
                "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8"
            ).fetchone()[0]
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
        (lag,) = of_kind(found, "replication_lag")
        assert (lag.target, lag.standby, lag.severity) == ("primary", name, "warning")
        # The primary's own numbers: bytes from pg_current_wal_lsn() to replay_lsn, and replay_lag.
        assert abs(lag.evidence["replay_behind_bytes"] - server[0]) <= 64 * 1024, (lag.evidence, server)
        assert lag.evidence["replay_behind_bytes"] > 2 * MB
        assert server[1] is not None and abs(lag.evidence["replay_lag_seconds"] - server[1]) < 2.0
        # Seen from the other end too: the standby says its replay is paused.
        assert lag.evidence["standby_target"] == "standby"
        assert lag.evidence["standby_pause_state"] in ("paused", "pause requested")
        assert "pg_wal_replay_resume()" in lag.recommendation
        (alone_lag,) = of_kind(own, "replication_lag")
        assert (alone_lag.target, alone_lag.standby) == ("standby", name)
        assert abs(alone_lag.evidence["lag_bytes"] - received_not_replayed) <= 64 * 1024

        wait_for(caught_up(primary, name), 60, what="replay to catch up after resume")
        assert of_kind(poll(both, "replication"), "replication_lag") == []
        assert of_kind(poll(alone, "replication"), "replication_lag") == []


def test_idle_primary_with_healthy_standby_is_no_lag(heavy_pg: Cluster, heavy_standby: Cluster) -> None:
    name = f"pg{heavy_pg.major}-standby"
    with (
        watch(("primary", monitor_dsn(heavy_pg)), ("standby", monitor_dsn(heavy_standby)), thresholds=T) as agent,
        superuser(heavy_pg, "app") as primary,
    ):
        write_wal(primary, 1000)  # some WAL, so replay_lag has a value that then goes stale
        wait_for(caught_up(primary, name), 30, what="the standby to catch up")
        found = poll(agent, "replication")
    rep: ReplicationSnapshot = agent.state.target("standby").current().replication
    assert rep.receiver is not None and rep.receiver.last_replay_at is not None
    # The last replayed commit is older than the 0.001 s threshold, and the
    # primary's replay_lag keeps a value: neither is lag while nothing waits.
    assert of_kind(found, "replication_lag") == []


def test_inactive_slot_holding_wal_is_reported_with_its_size(heavy_pg: Cluster) -> None:
    with watch(("primary", monitor_dsn(heavy_pg)), thresholds=T) as agent, superuser(heavy_pg, "app") as conn:
        conn.execute("SELECT pg_create_physical_replication_slot('forgotten', true)")
        try:
            write_wal(conn)
            found = poll(agent, "replication")
            (server,) = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 "
                "FROM pg_replication_slots WHERE slot_name = 'forgotten'"
            ).fetchone()
        finally:
            conn.execute("SELECT pg_drop_replication_slot('forgotten')")
        (slot,) = of_kind(found, "replication_slot_inactive")
        assert slot.slot == "forgotten" and slot.severity == "warning"
        assert abs(slot.evidence["retained_bytes"] - server) <= 64 * 1024 and server > 2 * MB
        assert slot.recommendation.startswith("SELECT pg_drop_replication_slot('forgotten');")
        assert of_kind(poll(agent, "replication"), "replication_slot_inactive") == []
