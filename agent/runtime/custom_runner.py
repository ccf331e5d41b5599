"""Running custom SQL collectors: one scheduled job per target and query, never on a scrape.

Each run is one read-only transaction per database, always rolled back, with
the query's own ``statement_timeout`` (never above the session's) set local
to it. The queries use sessions of their own (taking turns on them), so a
slow one never holds the sessions the built-in collectors share. What a query does wrong stays with
that query: an error or a timeout turns it off for a backoff (one run skipped,
then two, four, ... up to an hour), a query that tries to write is stopped
until the agent restarts, and each is counted and logged once per change.
The series it made last time are dropped when a run fails: a value that was
not read is not shown as current.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import ConnectFailed, DatabaseError, QueryFailed, parse_dsn
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings import custom_queries as custom
from pgradar.agent.settings.config import Config, TargetConfig

log = logging.getLogger("pgradar.custom")

READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction: the query tried to write
BACKOFF_MAX_S = 3600.0


@dataclass(slots=True)
class QueryStatus:
    """One query on one target: what the exporter shows about it (changed under the runner's lock)."""

    runs: int = 0
    errors: int = 0
    last_duration_s: float = 0.0
    last_success_at: datetime | None = None
    last_error: str | None = None
    failures: int = 0  # in a row; sets the backoff
    skip_runs: int = 0  # scheduled runs left to skip (backoff)
    stopped: str | None = None  # why it will not run again until a restart (it tried to write)
    not_here: str | None = None  # why it does not apply to this server (version range, role)
    series: custom.Series | None = None
    dropped_total: int = 0
    duplicates_total: int = 0

    @property
    def enabled(self) -> bool:
        return self.stopped is None and self.not_here is None and self.skip_runs == 0


def skipped_runs(failures: int, interval_s: float) -> int:
    """Scheduled runs to skip after ``failures`` failures in a row: 1, 2, 4, ... at most an hour's worth."""
    cap = max(1, math.ceil(BACKOFF_MAX_S / interval_s))
    return int(min(cap, 2 ** max(failures - 1, 0)))


def applies(query: custom.CustomQuery, server: ServerInfo) -> str | None:
    """Why ``query`` does not run on ``server`` (version range, role), or None when it does."""
    if query.versions is not None and not query.versions.contains(custom.server_semver(server.version_num)):
        return f"PostgreSQL {server.version} is outside its version range {query.versions.text}"
    if query.on != "any" and query.on != server.role:
        return f"it runs on a {query.on} and this server is a {server.role}"
    return None


@dataclass(slots=True)
class CustomRunner:
    """The custom queries of one target, their sessions and their status."""

    target: TargetConfig
    config: Config
    state: TargetState  # the target's shared state: its server info and databases, read here
    status: dict[str, QueryStatus] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0  # bumped on every change, so the exporter renders again only then
    _sessions: TargetRunner | None = None
    _logged: dict[str, str] = field(default_factory=dict)
    _database_locks: dict[str | None, threading.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sessions = TargetRunner(self.target, self.config, TargetState(self.target.name))
        for query in self.config.custom_queries:
            self.status[query.name] = QueryStatus()

    @property
    def server_label(self) -> str:
        params = parse_dsn(self.target.dsn)
        return custom.server_label(params.get("host"), params.get("port"))

    def queries(self) -> tuple[custom.CustomQuery, ...]:
        return self.config.custom_queries

    def run(self, name: str, *, scheduled: bool = True) -> None:
        """One run of one query; whatever happens is recorded in its status, never raised."""
        query = next(q for q in self.config.custom_queries if q.name == name)
        status = self.status[name]
        with self.lock:
            if status.stopped is not None:
                return
            if scheduled and status.skip_runs > 0:
                status.skip_runs -= 1
                self.version += 1
                return
        started = time.monotonic()
        try:
            series = self._run(query, status)
        except QueryFailed as exc:
            if exc.connection_lost:
                assert self._sessions is not None
                self._sessions.pool.drop(None)
            stop = exc.sqlstate == READ_ONLY_SQLSTATE
            what = (
                "tried to write (pgradar's sessions are read-only); stopped until restart"
                if stop
                else "timed out"
                if exc.timed_out
                else "failed"
            )
            self._failed(query, status, f"{what}: {exc}", stop=stop, started=started)
        except ConnectFailed as exc:
            self._failed(query, status, f"cannot connect: {exc}", stop=False, started=started)
        except DatabaseError as exc:
            self._failed(query, status, str(exc), stop=False, started=started)
        except Exception as exc:  # a bug must not kill the job thread; logged in full once
            log.exception("target %s: custom query %s failed unexpectedly", self.target.name, name)
            self._failed(query, status, f"internal error: {type(exc).__name__}: {exc}", stop=False, started=started)
        else:
            with self.lock:
                status.runs += 1
                status.last_duration_s = time.monotonic() - started
                status.series = series
                self.version += 1
                if series is None:
                    return
                status.failures = 0
                status.last_error = None
                status.last_success_at = datetime.now(UTC)
                status.dropped_total += series.dropped
                status.duplicates_total += series.duplicates
            notes = list(series.problems)
            if series.dropped:
                notes.append(f"{series.dropped} series over max_series={query.max_series} dropped")
            if series.duplicates:
                notes.append(f"{series.duplicates} row(s) repeat a label set (first kept)")
            self._log_change(name, f"custom query {name}: {'; '.join(notes)}" if notes else "ok")

    def _run(self, query: custom.CustomQuery, status: QueryStatus) -> custom.Series | None:
        assert self._sessions is not None
        with self._database_lock(None):  # refresh_server reads on the session the queries of None use
            server = self.state.server or self._sessions.refresh_server()
        reason = applies(query, server)
        with self.lock:
            status.not_here = reason
        if reason is not None:
            self._log_change(query.name, f"custom query {query.name} does not run here: {reason}")
            return None
        databases = self.state.databases or self._sessions.state.databases
        if query.every_database:
            targets: tuple[str | None, ...] = tuple(databases)
        elif query.databases is not None:
            targets = query.databases
        else:
            targets = (None,)
        timeout = queries.resolve("custom", "timeout", server.major)
        answers = []
        for database in targets:
            with self._database_lock(database):  # one transaction at a time on a session
                session = self._sessions.session(database)
                with session.rolled_back():
                    session.one(timeout, {"ms": str(int(query.timeout_s * 1000))})
                    columns, rows = session.table(queries.marked(query.sql))  # DESIGN 4: the marker
            answers.append(custom.Rows(database or session.dbname, columns, tuple(rows)))
        return custom.to_series(query, answers, self.target.name, self.server_label)

    def _database_lock(self, database: str | None) -> threading.Lock:
        """The queries of a target share one session per database, so they take turns on it.

        A slow query delays the next custom query on that database by at most
        its own timeout; the built-in collectors have sessions of their own.
        """
        with self.lock:
            return self._database_locks.setdefault(database, threading.Lock())

    def _failed(
        self, query: custom.CustomQuery, status: QueryStatus, message: str, *, stop: bool, started: float
    ) -> None:
        with self.lock:
            status.runs += 1
            status.errors += 1
            status.failures += 1
            status.last_duration_s = time.monotonic() - started
            status.last_error = message
            status.series = None
            if stop:
                status.stopped = message
            else:
                status.skip_runs = skipped_runs(status.failures, query.interval_s)
            self.version += 1
        later = "" if stop else f"; next try in {status.skip_runs + 1} run(s)"
        self._log_change(
            query.name,
            f"custom query {query.name} {message}{later}",
            logging.WARNING,
            key_message=f"{query.name}: {message}",
        )

    def _log_change(self, key: str, message: str, level: int = logging.INFO, key_message: str | None = None) -> None:
        """Log when a query's condition changes, not on every run (the backoff would repeat it)."""
        seen = key_message or message
        previous = self._logged.get(key)
        self._logged[key] = seen
        if seen == previous or (message == "ok" and previous is None):
            return
        if message == "ok":
            log.info("target %s: custom query %s recovered", self.target.name, key)
        else:
            log.log(level, "target %s: %s", self.target.name, message)

    def close(self) -> None:
        if self._sessions is not None:
            self._sessions.close()


def failures(runners: Iterable[CustomRunner]) -> list[str]:
    """One line per custom query that failed on its last run (``pgradar check`` prints them on stderr).

    ``check`` logs only errors, and a custom query's failure is not a
    problem of the database: without these lines a user trying a queries
    file on a real server would see nothing go wrong.
    """
    lines = []
    for runner in runners:
        with runner.lock:
            for name, status in runner.status.items():
                if status.last_error is not None:
                    lines.append(f"pgradar: warning: custom query {name} on {runner.target.name}: {status.last_error}")
    return lines
