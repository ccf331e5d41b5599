"""Replication seen from both ends: a sender's standbys and slots, a standby's receiver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StandbyStat:
    """One row of pg_stat_replication: a standby as its sender sees it."""

    pid: int
    standby: str  # application_name (the standby's name), else its address
    client_addr: str
    state: str
    sync_state: str
    write_lag_seconds: float | None
    flush_lag_seconds: float | None
    replay_lag_seconds: float | None
    sent_behind_bytes: float | None
    write_behind_bytes: float | None
    flush_behind_bytes: float | None
    replay_behind_bytes: float | None
    replay_wal_bytes: float | None
    reply_time: datetime | None


@dataclass(frozen=True, slots=True)
class SlotStat:
    slot: str
    slot_type: str
    database: str
    temporary: bool
    active: bool
    active_pid: int | None
    retained_bytes: float | None  # None when the slot never reserved WAL
    wal_status: str  # reserved, extended, unreserved, lost ('' when no WAL reserved)
    safe_wal_size_bytes: float | None
    inactive_since: datetime | None  # 17+
    invalidation_reason: str | None  # 17+


@dataclass(frozen=True, slots=True)
class ReceiverStat:
    """A standby's own view: WAL received, replayed, and whether replay is paused."""

    standby_name: str  # the application_name its WAL receiver gives the primary
    receiver_status: str  # '' when no WAL receiver runs
    slot_name: str
    sender_host: str
    sender_port: int | None
    receive_wal_bytes: float | None
    replay_wal_bytes: float | None
    primary_wal_bytes: float | None  # the sender's WAL end at its last message
    last_msg_receipt_time: datetime | None
    last_replay_at: datetime | None
    pause_state: str  # 'not paused', 'pause requested' (14+) or 'paused'

    @property
    def paused(self) -> bool:
        return self.pause_state != "not paused"

    @property
    def replay_behind_bytes(self) -> float:
        """WAL received but not replayed yet."""
        if self.receive_wal_bytes is None or self.replay_wal_bytes is None:
            return 0.0
        return max(0.0, self.receive_wal_bytes - self.replay_wal_bytes)


@dataclass(frozen=True, slots=True)
class ReplicationSnapshot:
    taken_at: datetime
    in_recovery: bool
    wal_bytes: float  # this server's WAL position (a standby: the last received)
    standbys: tuple[StandbyStat, ...]
    slots: tuple[SlotStat, ...]
    receiver: ReceiverStat | None  # only on a standby
