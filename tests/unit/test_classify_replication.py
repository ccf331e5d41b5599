"""replication_lag and replication_slot_inactive on hand-built observations."""

from dataclasses import replace
from datetime import timedelta

import pytest
from factories import MB, T0, observation, receiver, replication, settings, slot, standby_row

from pgradar.agent.classifiers.replication import replication_lag, replication_slot_inactive
from pgradar.agent.derive.standby_lag import SECONDS_NEED_BYTES, lag
from pgradar.agent.model.thresholds import DEFAULT

T = replace(
    DEFAULT,
    replication_lag_warning_bytes=16 * MB,
    replication_lag_critical_bytes=1024 * MB,
    replication_lag_warning_s=30,
    replication_lag_critical_s=300,
    slot_retained_warning_bytes=1024 * MB,
    slot_retained_critical_bytes=10240 * MB,
)


def lags(obs):
    return list(replication_lag(obs, T))


@pytest.mark.parametrize(
    ("behind", "seconds", "severity"),
    [
        (0, 0.01, None),
        (16 * MB - 1, 0.01, None),
        (16 * MB, 0.01, "warning"),
        (1024 * MB, 0.01, "critical"),
        (1 * MB, 29.9, None),
        (1 * MB, 30, "warning"),
        (1 * MB, 300, "critical"),
    ],
)
def test_primary_side_thresholds(behind: float, seconds: float, severity: str | None) -> None:
    found = lags(observation(replication=replication(standby_row(behind=behind, replay_lag=seconds))))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert f.standby == "replica1" and f.kind == "replication_lag"
        assert f.evidence["lag_bytes"] == behind and f.evidence["replay_lag_seconds"] == seconds


def test_stale_replay_lag_on_an_idle_primary_is_no_lag() -> None:
    # replay_lag keeps its last value (an hour) while nothing is written: no bytes behind, no lag.
    assert lags(observation(replication=replication(standby_row(behind=0, replay_lag=3600)))) == []
    # one small record in flight does not revive it either
    assert lag(SECONDS_NEED_BYTES - 1, 3600).seconds == 0
    assert lags(observation(replication=replication(standby_row(behind=200, replay_lag=3600)))) == []


def behind_since(seconds_ago: float, rep):
    return replace(rep, taken_at=T0 - timedelta(seconds=seconds_ago))


def test_standby_alone_uses_received_versus_replayed() -> None:
    paused = receiver(received=1000 * MB, replayed=900 * MB, last_replay_ago=40, pause_state="paused")
    rep = replication(receiver_stat=paused)
    (f,) = lags(observation(target="standby", replication=rep, history={"replication": (behind_since(60, rep),)}))
    assert f.target == "standby" and f.standby == "replica1" and f.severity == "warning"
    assert f.evidence["lag_bytes"] == 100 * MB and f.evidence["lag_seconds"] == 40  # its last commit: 40 s ago
    assert "pg_wal_replay_resume()" in f.recommendation


def test_a_burst_after_an_idle_hour_is_not_an_hour_of_lag() -> None:
    # Replaying normally, 10 MB behind, last commit replayed an hour ago (the primary was idle).
    rep = replication(receiver_stat=receiver(received=1000 * MB, replayed=990 * MB, last_replay_ago=3600))
    assert lags(observation(target="standby", replication=rep)) == []  # one snapshot: bytes decide (under 16 MB)
    caught_up = replication(receiver_stat=receiver(last_replay_ago=3590))
    ok = observation(target="standby", replication=rep, history={"replication": (behind_since(15, caught_up),)})
    assert lags(ok) == []
    # Seen behind for 45 s across the kept snapshots: 45 s of lag, not an hour.
    stuck = observation(
        "standby",
        replication=rep,
        history={"replication": (behind_since(60, caught_up), behind_since(45, rep), behind_since(30, rep))},
    )
    (f,) = lags(stuck)
    assert f.evidence["lag_seconds"] == 45 and f.severity == "warning"


def test_idle_standby_caught_up_is_no_lag_however_old_the_last_replay() -> None:
    idle = receiver(received=1000 * MB, replayed=1000 * MB, last_replay_ago=86400)
    assert lags(observation(target="standby", replication=replication(receiver_stat=idle))) == []


def test_linked_primary_and_standby_report_once_with_both_ends() -> None:
    standby_obs = observation(
        "standby",
        replication=replication(
            receiver_stat=receiver(received=1000 * MB, replayed=900 * MB, pause_state="paused", last_replay_ago=12)
        ),
    )
    primary_obs = observation(
        "primary", replication=replication(standby_row(behind=100 * MB, replay_lag=3)), peers={"standby": standby_obs}
    )
    standby_obs = replace(standby_obs, peers={"primary": primary_obs})
    (f,) = lags(primary_obs)
    assert f.target == "primary" and f.standby == "replica1"
    assert f.evidence["standby_target"] == "standby" and f.evidence["standby_pause_state"] == "paused"
    assert f.evidence["lag_seconds"] == 3  # the primary's replay_lag: the server's own number
    assert "pg_wal_replay_resume()" in f.recommendation
    assert lags(standby_obs) == []  # the primary covers it: one standby, one problem


def test_unlinked_names_do_not_merge() -> None:
    other = observation(target="other", replication=replication(receiver_stat=receiver(name="elsewhere")))
    primary_obs = observation("primary", replication=replication(standby_row(behind=100 * MB)), peers={"other": other})
    (f,) = lags(primary_obs)
    assert "standby_target" not in f.evidence


def test_slow_network_advice_names_write_lag() -> None:
    (f,) = lags(observation(replication=replication(standby_row(behind=100 * MB, write_behind=90 * MB))))
    assert "network" in f.recommendation


@pytest.mark.parametrize(
    ("kwargs", "severity"),
    [
        ({"retained": 1024 * MB - 1}, "info"),
        ({"retained": 1024 * MB}, "warning"),
        ({"retained": 0.0}, None),
        ({"retained": None, "wal_status": "lost"}, "critical"),
        ({"retained": 10240 * MB}, "critical"),
        ({"retained": 1 * MB, "wal_status": "unreserved"}, "critical"),
        ({"retained": 20480 * MB, "active": True}, None),
        ({"retained": 20480 * MB, "temporary": True}, None),
        ({"retained": None}, None),
    ],
)
def test_inactive_slot(kwargs: dict, severity: str | None) -> None:
    found = list(replication_slot_inactive(observation(replication=replication(slots=(slot(**kwargs),))), T))
    assert [f.severity for f in found] == ([severity] if severity else [])
    for f in found:
        assert f.slot == "old_slot" and f.evidence["retained_bytes"] == (kwargs["retained"] or 0.0)
        assert f.recommendation.startswith("SELECT pg_drop_replication_slot('old_slot');")


def test_slot_name_is_quoted_as_a_literal() -> None:
    (f,) = replication_slot_inactive(observation(replication=replication(slots=(slot("it's"),))), T)
    assert "pg_drop_replication_slot('it''s')" in f.recommendation


def test_no_snapshot_no_findings() -> None:
    assert lags(observation()) == []
    assert list(replication_slot_inactive(observation(), T)) == []


def test_inactive_slot_warning_above_max_wal_size_or_long_inactive() -> None:
    """Below the warning size: info, unless it holds more than max_wal_size or has been inactive long."""
    small = slot(retained=300 * MB)
    (info,) = replication_slot_inactive(
        observation(replication=replication(slots=(small,)), settings=settings(max_wal_size=1024 * MB)), T
    )
    assert info.severity == "info" and info.evidence["max_wal_size_bytes"] == 1024 * MB
    (above,) = replication_slot_inactive(
        observation(replication=replication(slots=(small,)), settings=settings(max_wal_size=256 * MB)), T
    )
    assert above.severity == "warning" and "more than max_wal_size (256.0 MB)" in above.summary
    since = replace(small, inactive_since=T0 - timedelta(seconds=T.slot_inactive_warning_s))
    (old,) = replication_slot_inactive(observation(replication=replication(slots=(since,))), T)
    assert old.severity == "warning" and old.evidence["inactive_seconds"] == T.slot_inactive_warning_s
    recent = replace(small, inactive_since=T0 - timedelta(seconds=T.slot_inactive_warning_s - 1))
    (young,) = replication_slot_inactive(observation(replication=replication(slots=(recent,))), T)
    assert young.severity == "info"


def test_inactive_time_before_17_comes_from_the_kept_snapshots() -> None:
    """Without inactive_since, the agent's own snapshots bound how long the slot has been inactive."""
    small = slot(retained=300 * MB)
    day = T.slot_inactive_warning_s
    earlier = (
        replace(replication(slots=(replace(small, active=True),)), taken_at=T0 - timedelta(seconds=2 * day)),
        replace(replication(slots=(small,)), taken_at=T0 - timedelta(seconds=day)),
    )
    (f,) = replication_slot_inactive(
        observation(replication=replication(slots=(small,)), history={"replication": earlier}), T
    )
    assert f.severity == "warning" and f.evidence["inactive_seconds"] == day
    assert f.evidence["inactive_seconds_from"] == "agent" and "inactive for at least 24.0 h" in f.summary
