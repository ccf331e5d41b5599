"""How far behind a standby is: WAL not replayed, and for how long.

One reading shared by the replication_lag rule and the exporter's standby
gauges, so a graph and a finding never disagree on what counts as lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pgradar.agent.model.replication import ReceiverStat, ReplicationSnapshot

# Below this much unreplayed WAL a lag time is not trusted: one small record in
# flight on an idle primary would otherwise revive a stale replay_lag.
SECONDS_NEED_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Lag:
    behind_bytes: float
    seconds: float  # 0 unless behind in bytes


def lag(behind_bytes: float | None, seconds: float | None) -> Lag:
    """Seconds count only while WAL waits for replay: a stale lag time on an idle primary is no lag."""
    behind = max(0.0, behind_bytes or 0.0)
    return Lag(behind, max(0.0, seconds or 0.0) if behind >= SECONDS_NEED_BYTES else 0.0)


def unreplayed(receiver: ReceiverStat) -> float:
    """WAL a standby knows of and has not replayed: received, or announced by its sender."""
    known_end = max(receiver.receive_wal_bytes or 0.0, receiver.primary_wal_bytes or 0.0)
    return max(0.0, known_end - (receiver.replay_wal_bytes or known_end))


def standby_lag_seconds(now: datetime, receiver: ReceiverStat, history: Sequence[ReplicationSnapshot]) -> float | None:
    """A standby's lag by its own clock: since its last replayed commit, at most as long as it was seen behind.

    After an idle hour the last replayed commit is an hour old, and a burst of
    WAL being replayed normally would read as an hour of lag; the snapshots
    kept (``history``, oldest first) show how long the standby has really
    been behind. One snapshot alone shows no time behind: bytes decide.
    """
    if receiver.last_replay_at is None:
        return None
    since = now
    for snapshot in reversed(history):
        if snapshot.receiver is None or unreplayed(snapshot.receiver) < SECONDS_NEED_BYTES:
            break
        since = min(since, snapshot.taken_at)
    return max(0.0, min((now - receiver.last_replay_at).total_seconds(), (now - since).total_seconds()))
