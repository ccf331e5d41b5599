"""What the agent knows right now, per target: the single source the exporters read.

Collector jobs write here; scrapes, ``/problems`` and ``pgradar check`` read.
Snapshots are immutable and a collector swaps them in under the target's
lock in one step, so a reader holding the lock sees one consistent state; the
lock is never held across a query, so a scrape never waits on a database.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgradar.agent.collect.queries import is_own
from pgradar.agent.model.catalog import SizedTables
from pgradar.agent.model.load import LoadHistory
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.snapshots import SnapshotHistory, Snapshots
from pgradar.agent.model.statements import StatementInterval, StatementTotals
from pgradar.agent.runtime.problems import ActiveProblem


@dataclass(slots=True)
class CollectorStatus:
    """The health of one scheduled job of a target: a collector, ``classify``, or a custom query."""

    runs: int = 0
    errors: int = 0
    last_duration_s: float = 0.0
    last_success_at: datetime | None = None
    last_error: str | None = None
    disabled_reason: str | None = None  # set while a missing extension or privilege stops it
    late: int = 0  # scheduled runs that started more than agent.ON_TIME_S after they were due
    skipped: int = 0  # scheduled runs not started: the previous one still ran
    last_lateness_s: float = 0.0
    disabled_fix: str | None = None  # what to run or change to turn it on
    failures: int = 0  # failed runs in a row: a custom query backs off on them
    backoff_runs: int = 0  # scheduled runs left to skip after those failures

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None and self.backoff_runs == 0


@dataclass(slots=True)
class TargetState:
    name: str
    keep: int = 5
    kind: str = "postgresql"  # or "pgbouncer"
    server: ServerInfo | None = None
    up: bool = False
    last_error: str | None = None
    databases: tuple[str, ...] = ()
    snapshots: dict[str, deque[Any]] = field(default_factory=dict)
    status: dict[str, CollectorStatus] = field(default_factory=dict)
    statement_texts: dict[tuple[int, int], str] = field(default_factory=dict)
    # The keys whose text pgradar sent (DESIGN 4), kept with the texts: each poll and each
    # classification leaves them out, without asking every text again.
    own_statements: set[tuple[int, int]] = field(default_factory=set)
    statement_totals: StatementTotals = field(default_factory=StatementTotals.empty)
    statement_intervals: deque[StatementInterval] = field(default_factory=lambda: deque(maxlen=5))
    texts_fetched_total: int = 0
    problems: dict[str, ActiveProblem] = field(default_factory=dict)  # by finding id
    # (collector, database) -> what a collector read of the catalog, to read again only what changed
    catalog: dict[tuple[str, str], dict[Any, Any]] = field(default_factory=dict)
    # the sized copy of each table row (model.catalog.fill_sizes), so an idle table keeps one object
    sized_tables: SizedTables = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    load: LoadHistory = field(default_factory=LoadHistory)  # the load sampler's counters and last hour
    cpus: float | None = None  # the server's cores, when configured (targets[i].cpus)
    # The typed records of the snapshots, built on first read after a change: a render of /metrics
    # asks for them once per section and target, a job changes them rarely.
    _current: Snapshots | None = field(default=None, init=False, repr=False)
    _kept: SnapshotHistory | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.statement_intervals = deque(maxlen=self.keep)

    def current(self) -> Snapshots:
        """The latest snapshot of each collector, read in one step under the lock."""
        with self.lock:
            if self._current is None:
                self._current = Snapshots.of({name: h[-1] for name, h in self.snapshots.items() if h})
            return self._current

    def kept(self) -> SnapshotHistory:
        """Every kept snapshot of each collector, read in one step under the lock."""
        with self.lock:
            if self._kept is None:
                self._kept = SnapshotHistory.of(self.snapshots)
            return self._kept

    def _changed(self) -> None:
        self._current = self._kept = None

    def latest(self, collector: str) -> Any:
        """By name, for the job runner, which handles every collector alike; readers use ``current``."""
        with self.lock:
            history = self.snapshots.get(collector)
            return history[-1] if history else None

    def record(self, collector: str, snapshot: Any) -> None:
        with self.lock:
            self.snapshots.setdefault(collector, deque(maxlen=self.keep)).append(snapshot)
            self._changed()

    def record_before(self, collector: str, snapshot: Any) -> None:
        """Keep ``snapshot`` as the oldest of a collector: a window's start, read before the agent ran."""
        with self.lock:
            self.snapshots.setdefault(collector, deque(maxlen=self.keep)).appendleft(snapshot)
            self._changed()

    def replace_latest(self, collector: str, change: Callable[[Any], Any]) -> None:
        """Swap the latest snapshot of a collector for a changed copy (history keeps its length)."""
        with self.lock:
            history = self.snapshots.get(collector)
            if history:
                history[-1] = change(history[-1])
                self._changed()

    def keep_text(self, key: tuple[int, int], text: str) -> None:
        self.statement_texts[key] = text
        if is_own(text):
            self.own_statements.add(key)
        else:
            self.own_statements.discard(key)

    def forget_text(self, key: tuple[int, int]) -> None:
        del self.statement_texts[key]
        self.own_statements.discard(key)

    def collector(self, name: str) -> CollectorStatus:
        with self.lock:
            return self.status.setdefault(name, CollectorStatus())

    @property
    def role(self) -> str | None:
        if self.kind != "postgresql":
            return self.kind
        return self.server.role if self.server else None


@dataclass(slots=True)
class AgentState:
    targets: dict[str, TargetState] = field(default_factory=dict)
    started_at: datetime | None = None

    def target(self, name: str) -> TargetState:
        return self.targets[name]

    def __iter__(self) -> Iterator[TargetState]:
        return iter(list(self.targets.values()))
