"""Database load: active sessions sampled every second, by wait event and by statement.

Each sample is every active backend at one moment (``LoadSample``); a sample
adds its interval once per active backend, so the sum of a group's seconds
over a window, divided by the window, is its average active sessions (AAS),
as Performance Insights counts "DB load". An active backend with no wait
event is on CPU (``wait_event_type = wait_event = "CPU"``).

Two records keep what the samples add up to, so that memory stays bounded
whatever the number of sessions or statements:

- ``LoadTotals``, monotonic counters for Prometheus: every (database, wait
  event), and per statement only the ``top`` statements by recent load; a
  statement outside them is counted under ``queryid="other"``. A statement
  enters the top only when it outweighs the lightest one there, so a churn
  of one-off statements does not churn the series.
- ``LoadHistory``, the last hour in buckets of ``BUCKET_S`` seconds (the
  status page's chart; the window ``wait_bottleneck`` judges), each bucket
  with its waits, its statements (capped) and the blockers of its Lock waits.

A sample that failed or was skipped adds nothing: the counters undercount
rather than invent, and the collector's status counts what was missed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CPU = "CPU"  # the wait_event_type and wait_event of an active backend with no wait event
OTHER = "other"  # the queryid label of the statements outside the top (and of those without a queryid)
BUCKET_S = 5.0  # seconds per history bucket: the recent stretch a classifier reads is a few of them
HISTORY_S = 3600.0  # the history kept: the status page's hour
STATEMENTS_PER_BUCKET = 200  # statement keys a bucket keeps; the rest count under queryid None
BLOCKERS_PER_BUCKET = 50
DEFAULT_TOP = 20  # statements with series of their own (``limits.top_load_statements``)
HALF_LIFE_S = 300.0  # a statement's recent load halves in this long: who is in the top follows the last minutes
ADMIT_FACTOR = 1.5  # a newcomer enters the top when its recent load is this many times the lightest one's
CANDIDATES_PER_TOP = 10  # statements outside the top whose recent load is remembered, per place in it


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One backend in a sample: active (load) or only blocking an active one (its state says which)."""

    pid: int
    database: str
    queryid: int | None  # pg_stat_activity.query_id (14+); a parallel worker's is its leader's
    wait_event_type: str  # CPU when active without a wait event
    wait_event: str
    username: str
    application: str
    active: bool
    state: str
    blocked_by: tuple[int, ...] = ()  # pg_blocking_pids, for Lock waits


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One sample of a target: its rows and the seconds it stands for."""

    taken_at: datetime
    interval_s: float
    rows: tuple[LoadRow, ...]

    @property
    def active(self) -> tuple[LoadRow, ...]:
        return tuple(r for r in self.rows if r.active)


WaitKey = tuple[str, str, str]  # database, wait_event_type, wait_event
StatementWaitKey = tuple[str, int | None, str, str]  # database, queryid (None: other), type, event
BlockerKey = tuple[str, int | None, str, int, str]  # database, the blocker's queryid, state, pid, user


@dataclass(frozen=True, slots=True)
class LoadBucket:
    """``BUCKET_S`` seconds of samples: seconds sampled and active-session seconds by key."""

    start: float  # Unix time of the bucket's start
    seconds: float  # the sum of the intervals of the samples in it
    samples: int
    waits: tuple[tuple[WaitKey, float], ...]
    statements: tuple[tuple[StatementWaitKey, float], ...]
    blockers: tuple[tuple[BlockerKey, float], ...] = ()


@dataclass(slots=True)
class _OpenBucket:
    start: float
    seconds: float = 0.0
    samples: int = 0
    waits: dict[WaitKey, float] = field(default_factory=dict)
    statements: dict[StatementWaitKey, float] = field(default_factory=dict)
    blockers: dict[BlockerKey, float] = field(default_factory=dict)

    def add(self, sample: LoadSample, interval: float) -> None:
        self.seconds += interval
        self.samples += 1
        by_pid = {r.pid: r for r in sample.rows}
        for r in sample.rows:
            if not r.active:
                continue
            wait = (r.database, r.wait_event_type, r.wait_event)
            self.waits[wait] = self.waits.get(wait, 0.0) + interval
            statement = (r.database, r.queryid, r.wait_event_type, r.wait_event)
            if statement not in self.statements and len(self.statements) >= STATEMENTS_PER_BUCKET:
                statement = (r.database, None, r.wait_event_type, r.wait_event)
            self.statements[statement] = self.statements.get(statement, 0.0) + interval
            holder = root_blocker(r, by_pid)
            if holder is not None:
                blocker = (r.database, holder.queryid, holder.state, holder.pid, holder.username)
                if blocker in self.blockers or len(self.blockers) < BLOCKERS_PER_BUCKET:
                    self.blockers[blocker] = self.blockers.get(blocker, 0.0) + interval

    def frozen(self) -> LoadBucket:
        return LoadBucket(
            self.start,
            self.seconds,
            self.samples,
            tuple(self.waits.items()),
            tuple(self.statements.items()),
            tuple(self.blockers.items()),
        )


def root_blocker(waiter: LoadRow, by_pid: Mapping[int, LoadRow]) -> LoadRow | None:
    """The session at the head of a waiter's chain: a row lock's queue waits behind its first waiter, who
    waits for the holder; the holder is the one that is not itself blocked (None when not in the sample)."""
    seen: set[int] = set()
    current = waiter
    while current.blocked_by:
        pid = current.blocked_by[0]
        if pid in seen or pid not in by_pid:
            return None
        seen.add(pid)
        current = by_pid[pid]
    return current if current is not waiter else None


def sample_interval(nominal_s: float, previous: datetime | None, taken_at: datetime) -> float:
    """The seconds a sample stands for: its nominal interval, never more than since the previous sample.

    A sample after missed ones stands for one interval, not the gap (the
    missed time is not invented); one that came early (a coalesced run)
    stands for the time since the previous.
    """
    if previous is None:
        return nominal_s
    elapsed = (taken_at - previous).total_seconds()
    return max(0.0, min(nominal_s, elapsed))


@dataclass(slots=True)
class LoadTotals:
    """Monotonic load counters of one target, with a bounded set of statements of their own."""

    top: int = DEFAULT_TOP
    samples: int = 0
    sampled_seconds: float = 0.0
    waits: dict[WaitKey, float] = field(default_factory=dict)
    # (database, queryid label, wait_event_type) -> seconds; queryid label is a decimal string or OTHER
    statements: dict[tuple[str, str, str], float] = field(default_factory=dict)
    recent: dict[tuple[str, int], float] = field(default_factory=dict)  # the top's recent load (decayed)
    candidates: dict[tuple[str, int], float] = field(default_factory=dict)  # others' recent load

    def add(self, sample: LoadSample, interval: float) -> None:
        self.samples += 1
        self.sampled_seconds += interval
        decay = 0.5 ** (interval / HALF_LIFE_S)
        for scores in (self.recent, self.candidates):
            for key in scores:
                scores[key] *= decay
        for r in sample.rows:
            if not r.active:
                continue
            wait = (r.database, r.wait_event_type, r.wait_event)
            self.waits[wait] = self.waits.get(wait, 0.0) + interval
            label = self._admit((r.database, r.queryid), interval) if r.queryid is not None else OTHER
            counted = (r.database, label, r.wait_event_type)
            self.statements[counted] = self.statements.get(counted, 0.0) + interval
        if len(self.candidates) > CANDIDATES_PER_TOP * max(self.top, 1):
            kept = sorted(self.candidates.items(), key=lambda kv: -kv[1])[: CANDIDATES_PER_TOP * self.top // 2]
            self.candidates = dict(kept)

    def _admit(self, key: tuple[str, int], interval: float) -> str:
        """The queryid label a backend of this statement counts under: its own, or OTHER."""
        if key in self.recent:
            self.recent[key] += interval
            return str(key[1])
        score = self.candidates.pop(key, 0.0) + interval
        if len(self.recent) < self.top:
            self.recent[key] = score
            return str(key[1])
        lightest = min(self.recent, key=self.recent.__getitem__) if self.recent else None
        if lightest is not None and score > ADMIT_FACTOR * self.recent[lightest]:
            self.candidates[lightest] = self.recent.pop(lightest)
            self._forget(lightest)
            self.recent[key] = score
            return str(key[1])
        self.candidates[key] = score
        return OTHER

    def _forget(self, key: tuple[str, int]) -> None:
        """A statement that left the top: its series end (Prometheus sees a counter stop)."""
        database, label = key[0], str(key[1])
        for gone in [k for k in self.statements if k[0] == database and k[1] == label]:
            del self.statements[gone]


@dataclass(slots=True)
class LoadHistory:
    """The last hour of one target's samples in buckets, and its counters; the runtime adds, readers freeze."""

    totals: LoadTotals = field(default_factory=LoadTotals)
    buckets: deque[LoadBucket] = field(default_factory=lambda: deque(maxlen=int(HISTORY_S / BUCKET_S)))
    open: _OpenBucket | None = None
    last_sample_at: datetime | None = None

    def add(self, sample: LoadSample) -> float:
        """Count one sample; returns the seconds it stood for."""
        interval = sample_interval(sample.interval_s, self.last_sample_at, sample.taken_at)
        self.last_sample_at = sample.taken_at
        self.totals.add(sample, interval)
        moment = sample.taken_at.timestamp()
        start = moment - moment % BUCKET_S
        if self.open is not None and self.open.start != start:
            self.buckets.append(self.open.frozen())
            self.open = None
        if self.open is None:
            self.open = _OpenBucket(start)
        self.open.add(sample, interval)
        return interval

    def window(self, cpus: float | None = None) -> LoadWindow:
        """The history as a frozen value (the open bucket included)."""
        buckets = tuple(self.buckets) + ((self.open.frozen(),) if self.open is not None else ())
        return LoadWindow(buckets, cpus)


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """A target's load history as classifiers, the status page and ``check`` read it."""

    buckets: tuple[LoadBucket, ...] = ()
    cpus: float | None = None  # the target's cores, when configured (``cpus:``)

    def since(self, start: float) -> LoadWindow:
        """The buckets that reach past ``start`` (Unix time): the stretch from then, to a bucket's width."""
        return LoadWindow(tuple(b for b in self.buckets if b.start + BUCKET_S > start), self.cpus)

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self.buckets)

    @property
    def samples(self) -> int:
        return sum(b.samples for b in self.buckets)

    def waits(self) -> dict[WaitKey, float]:
        return _summed(b.waits for b in self.buckets)

    def statements(self) -> dict[StatementWaitKey, float]:
        return _summed(b.statements for b in self.buckets)

    def blockers(self) -> dict[BlockerKey, float]:
        return _summed(b.blockers for b in self.buckets)

    def databases(self) -> dict[str, float]:
        """Active-session seconds per database."""
        out: dict[str, float] = {}
        for (database, _, _), seconds in self.waits().items():
            out[database] = out.get(database, 0.0) + seconds
        return out


def _summed(parts: Iterable[Iterable[tuple[Any, float]]]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for part in parts:
        for key, seconds in part:
            out[key] = out.get(key, 0.0) + seconds
    return out


@dataclass(frozen=True, slots=True)
class StatementLoad:
    """One statement's load over a window, with its wait profile (active-session seconds by wait)."""

    database: str
    queryid: int | None  # None: statements without a queryid (13) or beyond a bucket's cap
    seconds: float
    waits: tuple[tuple[str, str, float], ...]  # (wait_event_type, wait_event, seconds), heaviest first


def top_statements(
    statements: Mapping[StatementWaitKey, float], n: int, database: str | None = None
) -> list[StatementLoad]:
    """The ``n`` statements with the most load, each with its waits (``database``: only that one's)."""
    grouped: dict[tuple[str, int | None], dict[tuple[str, str], float]] = {}
    for (db, queryid, wtype, event), seconds in statements.items():
        if database is not None and db != database:
            continue
        waits = grouped.setdefault((db, queryid), {})
        waits[(wtype, event)] = waits.get((wtype, event), 0.0) + seconds
    loads = [
        StatementLoad(
            db,
            queryid,
            sum(waits.values()),
            tuple((t, e, s) for (t, e), s in sorted(waits.items(), key=lambda kv: -kv[1])),
        )
        for (db, queryid), waits in grouped.items()
    ]
    loads.sort(key=lambda s: (-s.seconds, s.queryid is None, s.database, s.queryid or 0))
    return loads[:n]


def wait_class_seconds(waits: Mapping[WaitKey, float]) -> Iterator[tuple[str, float]]:
    """Seconds per wait class (wait_event_type), heaviest first."""
    classes: dict[str, float] = {}
    for (_, wtype, _), seconds in waits.items():
        classes[wtype] = classes.get(wtype, 0.0) + seconds
    yield from sorted(classes.items(), key=lambda kv: -kv[1])
