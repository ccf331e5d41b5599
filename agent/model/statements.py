"""Statements as pg_stat_statements counts them, and what each did between two polls.

pg_stat_statements counters are not monotonic (a reset, an eviction under
churn), so a poll's rows are kept as read and the intervals between polls
(``StatementInterval``) hold what each statement did; ``derive.deltas``
derives them. Field names of ``StatementStat`` are the column names of the
statements SQL in ``agent/collect/sql``.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

# The cumulative counters of a statement: what a delta subtracts and the totals accumulate.
COUNTERS = [
    "calls",
    "total_exec_ms",
    "total_plan_ms",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
    "temp_blks_read",
    "temp_blks_written",
    "blk_read_ms",
    "blk_write_ms",
    "wal_bytes",
]


@dataclass(frozen=True, slots=True)
class StatementStat:
    userid: int
    dbid: int
    queryid: int
    toplevel: bool
    database: str
    username: str
    calls: int
    total_exec_ms: float
    total_plan_ms: float
    max_exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    shared_blks_dirtied: int
    shared_blks_written: int
    temp_blks_read: int
    temp_blks_written: int
    blk_read_ms: float
    blk_write_ms: float
    wal_bytes: float

    @property
    def key(self) -> StatementKey:
        return (self.userid, self.dbid, self.queryid, self.toplevel)


StatementKey = tuple[int, int, int, bool]


@dataclass(frozen=True, slots=True)
class StatementText:
    dbid: int
    queryid: int
    query: str


@dataclass(frozen=True, slots=True)
class StatementsInfo:
    dealloc: int
    stats_reset: datetime | None


@dataclass(frozen=True, slots=True)
class StatementsSnapshot:
    taken_at: datetime
    rows: tuple[StatementStat, ...]
    info: StatementsInfo | None  # None before 14
    new_texts: int  # how many texts this poll fetched (only those of new queryids)


@dataclass(frozen=True, slots=True)
class StatementDelta:
    """What one statement did during one interval."""

    userid: int
    dbid: int
    queryid: int
    toplevel: bool
    database: str
    username: str
    calls: int
    total_exec_ms: float
    total_plan_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    shared_blks_dirtied: int
    shared_blks_written: int
    temp_blks_read: int
    temp_blks_written: int
    blk_read_ms: float
    blk_write_ms: float
    wal_bytes: float

    @property
    def key(self) -> StatementKey:
        return (self.userid, self.dbid, self.queryid, self.toplevel)

    @property
    def mean_exec_ms(self) -> float:
        return self.total_exec_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class StatementInterval:
    """Deltas of every statement active between two polls, costliest first."""

    started_at: datetime
    ended_at: datetime
    deltas: tuple[StatementDelta, ...]
    reset_seen: bool  # pg_stat_statements was reset or entries restarted in between

    @property
    def seconds(self) -> float:
        return max((self.ended_at - self.started_at).total_seconds(), 1e-9)


@dataclass(slots=True)
class StatementTotals:
    """Monotonic per-statement counters: the sum of every delta since the agent started."""

    counters: dict[StatementKey, dict[str, float]]
    by_database: dict[str, dict[str, float]]  # every statement, top N or not

    @classmethod
    def empty(cls) -> StatementTotals:
        return cls({}, {})

    def add(self, interval: StatementInterval, present: Container[StatementKey]) -> None:
        for delta in interval.deltas:
            acc = self.counters.setdefault(delta.key, dict.fromkeys(COUNTERS, 0.0))
            db = self.by_database.setdefault(delta.database, dict.fromkeys(COUNTERS, 0.0))
            for c in COUNTERS:
                value = getattr(delta, c)
                acc[c] += value
                db[c] += value
        # Entries gone from pg_stat_statements are forgotten, so memory follows pgss.max.
        for key in [k for k in self.counters if k not in present]:
            del self.counters[key]
