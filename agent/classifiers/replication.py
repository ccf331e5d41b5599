"""Replication: standbys that fall behind, slots that hold WAL back.

A standby's lag is judged in bytes (how much WAL it has not replayed) and in
seconds, but seconds only count while it is behind in bytes: on an idle
primary ``replay_lag`` keeps its last value and ``now() -
pg_last_xact_replay_timestamp()`` grows without bound (DESIGN section 7), and
neither means the standby is behind. A standby alone measures its lag by
its own clock, bounded by how long the kept snapshots saw it behind.

A primary and its standbys watched by the same agent are linked by the name
the standby gives its primary (the WAL receiver's application_name): the
primary reports the lag, with the standby's own numbers (replay paused, WAL
received but not replayed) in the evidence. A standby reports its lag itself
only when no watched server streams to it, so one standby is one problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pgradar.agent.derive.standby_lag import Lag, lag, standby_lag_seconds, unreplayed
from pgradar.agent.model.activity import SettingsSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity, human_bytes, human_seconds
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.replication import ReceiverStat, ReplicationSnapshot, SlotStat, StandbyStat
from pgradar.agent.model.thresholds import Thresholds


def lag_severity(found: Lag, t: Thresholds) -> Severity | None:
    if found.behind_bytes >= t.replication_lag_critical_bytes or found.seconds >= t.replication_lag_critical_s:
        return Severity.CRITICAL
    if found.behind_bytes >= t.replication_lag_warning_bytes or found.seconds >= t.replication_lag_warning_s:
        return Severity.WARNING
    return None


def _replication(obs: Observation) -> ReplicationSnapshot | None:
    snapshot = obs.snapshots.replication
    return snapshot if isinstance(snapshot, ReplicationSnapshot) else None


def standby_peer(obs: Observation, standby: str) -> tuple[str, ReplicationSnapshot] | None:
    """The watched standby that streams from this server under the name ``standby``."""
    for name, peer in sorted(obs.peers.items()):
        rep = _replication(peer)
        if rep is not None and rep.receiver is not None and rep.receiver.standby_name == standby:
            return name, rep
    return None


def upstream_peer(obs: Observation, standby: str) -> tuple[str, ReplicationSnapshot] | None:
    """The watched server this standby streams from, found by the name it lists the standby under."""
    for name, peer in sorted(obs.peers.items()):
        rep = _replication(peer)
        if rep is not None and any(s.standby == standby for s in rep.standbys):
            return name, rep
    return None


def _stage_advice(paused: bool, standby: str, write_behind: float, behind: float) -> str:
    if paused:
        return f"replay is paused on {standby}: run SELECT pg_wal_replay_resume(); there"
    if behind > 0 and write_behind >= behind / 2:
        return (
            f"WAL is not reaching {standby} fast enough (write/flush lag): check the network "
            "and the standby's disk, and wal_sender_timeout"
        )
    return (
        f"{standby} receives WAL but replays it slowly: look for long queries on it that conflict "
        "with replay (max_standby_streaming_delay, hot_standby_feedback) and for its I/O; "
        "SELECT pg_get_wal_replay_pause_state(); tells whether replay is paused"
    )


def _standby_evidence(receiver: ReceiverStat) -> dict[str, Any]:
    return {
        "standby_receiver_status": receiver.receiver_status,
        "standby_pause_state": receiver.pause_state,
        "standby_received_not_replayed_bytes": receiver.replay_behind_bytes,
    }


def _from_sender(obs: Observation, row: StandbyStat, t: Thresholds) -> Finding | None:
    """A standby as the server streaming to it sees it, with the standby's own view when watched too."""
    linked = standby_peer(obs, row.standby)
    seconds = row.replay_lag_seconds
    evidence: dict[str, Any] = {
        "state": row.state,
        "sync_state": row.sync_state,
        "replay_behind_bytes": row.replay_behind_bytes,
        "write_behind_bytes": row.write_behind_bytes,
        "flush_behind_bytes": row.flush_behind_bytes,
        "replay_lag_seconds": row.replay_lag_seconds,
        "write_lag_seconds": row.write_lag_seconds,
        "flush_lag_seconds": row.flush_lag_seconds,
    }
    paused = False
    if linked is not None:
        name, rep = linked
        receiver = rep.receiver
        assert receiver is not None
        paused = receiver.paused
        evidence |= {"standby_target": name, **_standby_evidence(receiver)}
    found = lag(row.replay_behind_bytes, seconds)
    severity = lag_severity(found, t)
    if severity is None:
        return None
    evidence |= {"lag_bytes": found.behind_bytes, "lag_seconds": found.seconds}
    return Finding(
        Kind.REPLICATION_LAG,
        severity,
        obs.target,
        f"standby {row.standby} is {human_bytes(found.behind_bytes)} of WAL behind"
        + (f" ({human_seconds(found.seconds)} replay lag)" if found.seconds else "")
        + (", replay paused" if paused else ""),
        _stage_advice(paused, row.standby, row.write_behind_bytes or 0.0, found.behind_bytes),
        evidence,
        standby=row.standby,
    )


def _from_receiver(obs: Observation, rep: ReplicationSnapshot, t: Thresholds) -> Finding | None:
    """A standby seen only from itself (its primary is not watched, or it is not streaming)."""
    receiver = rep.receiver
    if receiver is None or upstream_peer(obs, receiver.standby_name) is not None:
        return None
    found = lag(unreplayed(receiver), standby_lag_seconds(obs.now, receiver, obs.history.replication))
    severity = lag_severity(found, t)
    if severity is None:
        return None
    evidence = {
        **_standby_evidence(receiver),
        "lag_bytes": found.behind_bytes,
        "lag_seconds": found.seconds,
        "seen_from": "standby",
    }
    name = receiver.standby_name
    return Finding(
        Kind.REPLICATION_LAG,
        severity,
        obs.target,
        f"this standby ({name}) has {human_bytes(found.behind_bytes)} of WAL not replayed"
        + (f", behind for {human_seconds(found.seconds)}" if found.seconds else "")
        + (", replay paused" if receiver.paused else ""),
        _stage_advice(receiver.paused, name, 0.0, found.behind_bytes),
        evidence,
        standby=name,
    )


def replication_lag(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A standby behind by at least the bytes or seconds thresholds.

    Evidence: the byte distances (sent, write, flush, replay) from the
    sender's WAL position, the write/flush/replay lag times, and when the
    standby is watched too, its pause state and WAL received but not replayed.
    """
    rep = _replication(obs)
    if rep is None:
        return
    for row in rep.standbys:
        finding = _from_sender(obs, row, t)
        if finding is not None:
            yield finding
    own = _from_receiver(obs, rep, t)
    if own is not None:
        yield own


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def inactive_for(obs: Observation, slot: SlotStat) -> tuple[float | None, bool]:
    """How long the slot has been inactive, and whether that is only as long as the agent has watched.

    17+ says when the slot was last released (``inactive_since``); before
    that, the kept snapshots bound it from below: the oldest one in an
    unbroken run in which the slot was inactive.
    """
    if slot.inactive_since is not None:
        return max(0.0, (obs.now - slot.inactive_since).total_seconds()), False
    since = None
    for snapshot in reversed(obs.history.replication):
        seen = next((s for s in getattr(snapshot, "slots", ()) if s.slot == slot.slot), None)
        if seen is None or seen.active:
            break
        since = snapshot.taken_at
    return (max(0.0, (obs.now - since).total_seconds()), True) if since is not None else (None, True)


def slot_severity(
    slot: SlotStat, t: Thresholds, max_wal_size_bytes: float | None = None, inactive_s: float | None = None
) -> Severity | None:
    """Severity of an inactive permanent slot; None when active, temporary, or holding no WAL.

    Any WAL held is info (nothing consumes it, and it only grows); more than
    ``max_wal_size`` (what the server itself keeps between checkpoints) or
    ``slot_retained_warning_bytes``, or inactive for
    ``slot_inactive_warning_s``, is a warning; ``slot_retained_critical_bytes``
    or a ``wal_status`` of unreserved/lost (the WAL is, or is about to be,
    gone: the slot is useless) is critical.
    """
    if slot.active or slot.temporary:
        return None
    if slot.wal_status in ("unreserved", "lost"):
        return Severity.CRITICAL
    retained = slot.retained_bytes
    if retained is None or retained <= 0:
        return None
    if retained >= t.slot_retained_critical_bytes:
        return Severity.CRITICAL
    if (
        retained >= t.slot_retained_warning_bytes
        or (max_wal_size_bytes is not None and retained > max_wal_size_bytes)
        or (inactive_s is not None and inactive_s >= t.slot_inactive_warning_s)
    ):
        return Severity.WARNING
    return Severity.INFO


def _max_wal_size(obs: Observation) -> float | None:
    snap: SettingsSnapshot | None = obs.snapshots.settings
    return snap.settings.max_wal_size_bytes if snap is not None else None


def replication_slot_inactive(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """An inactive permanent slot that retains WAL, at any size (``slot_severity`` grades it).

    A slot created and never used, or whose consumer is gone, keeps every
    WAL segment from its restart_lsn on: the disk fills until the server
    stops. Evidence: retained bytes (from the server's WAL position to the
    slot's restart_lsn), ``max_wal_size``, wal_status, safe_wal_size, and how
    long it has been inactive (17+: ``inactive_since``; before, as long as
    the agent has seen it so). The fix drops the slot; a standby that still
    needs it must be brought back instead, and max_slot_wal_keep_size caps
    what a slot may hold.
    """
    rep = _replication(obs)
    if rep is None:
        return []
    max_wal = _max_wal_size(obs)
    found = []
    for slot in rep.slots:
        idle_s, watched_only = inactive_for(obs, slot)
        severity = slot_severity(slot, t, max_wal, idle_s)
        if severity is None:
            continue
        retained = slot.retained_bytes or 0.0
        if slot.inactive_since is not None:
            since = f", inactive since {slot.inactive_since:%Y-%m-%d %H:%M:%S} ({human_seconds(idle_s or 0)})"
        elif idle_s:
            since = f", inactive for at least {human_seconds(idle_s)}"
        else:
            since = ""
        above = (
            f", more than max_wal_size ({human_bytes(max_wal)})" if max_wal is not None and retained > max_wal else ""
        )
        if slot.wal_status == "lost":
            summary = (
                f"{slot.slot_type} slot {slot.slot} is inactive and lost: the WAL it needs was removed, "
                f"no consumer can use it again (wal_status lost{since})"
            )
        elif slot.wal_status == "unreserved":
            summary = (
                f"{slot.slot_type} slot {slot.slot} is inactive and retains {human_bytes(retained)} of WAL, "
                f"more than the server keeps for it: it is lost at the next checkpoint (wal_status "
                f"unreserved{since})"
            )
        else:
            summary = (
                f"{slot.slot_type} slot {slot.slot} is inactive and retains {human_bytes(retained)} of WAL"
                f"{above} (wal_status {slot.wal_status or 'none'}{since})"
            )
        found.append(
            Finding(
                Kind.REPLICATION_SLOT_INACTIVE,
                severity,
                obs.target,
                summary,
                f"SELECT pg_drop_replication_slot({_literal(slot.slot)}); -- unless its consumer comes back; "
                "max_slot_wal_keep_size caps the WAL a slot may hold",
                {
                    "retained_bytes": retained,
                    "max_wal_size_bytes": max_wal,
                    "wal_status": slot.wal_status,
                    "slot_type": slot.slot_type,
                    "safe_wal_size_bytes": slot.safe_wal_size_bytes,
                    "database": slot.database or None,
                    "inactive_since": slot.inactive_since.isoformat() if slot.inactive_since else None,
                    "inactive_seconds": round(idle_s) if idle_s is not None else None,
                    "inactive_seconds_from": None if idle_s is None else "agent" if watched_only else "inactive_since",
                    "invalidation_reason": slot.invalidation_reason,
                },
                slot=slot.slot,
            )
        )
    return found


CLASSIFIERS = (replication_lag, replication_slot_inactive)
