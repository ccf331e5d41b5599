"""Running custom SQL collectors: one scheduled job per target and query, never on a scrape.

Each run is one read-only transaction per database, always rolled back, with
the query's own ``statement_timeout`` (never above the session's) set local
to it. The queries use a ``SessionPool`` of their own (taking turns on its
sessions), so a slow one never holds the sessions the built-in collectors
share; their health is a ``CollectorStatus`` like a collector's, and their
conditions are logged through the same ``ChangeLog``. What a query does
wrong stays with that query: an error or a timeout turns it off for a
backoff (one run skipped, then two, four, ... up to an hour), a query that
tries to write is stopped until the agent restarts, and each is counted and
logged once per change. The series it made last time are dropped when a run
fails: a value that was not read is not shown as current.
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
from pgradar.agent.collect.pool import SessionPool
from pgradar.agent.derive.custom_series import server_label, to_series
from pgradar.agent.model.custom_queries import CustomQuery, Rows, Series, server_semver
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.changes import ChangeLog
from pgradar.agent.runtime.runner import opener_for, read_server, session_settings
from pgradar.agent.runtime.state import CollectorStatus, TargetState
from pgradar.agent.settings.config import Config, TargetConfig

log = logging.getLogger("pgradar.custom")

READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction: the query tried to write
BACKOFF_MAX_S = 3600.0


@dataclass(slots=True)
class Output:
    """What a query's runs made: the series of the last one, and what the runs left out (for the exporter)."""

    series: Series | None = None
    dropped_total: int = 0  # over max_series
    duplicates_total: int = 0  # a label set given twice


def skipped_runs(failures: int, interval_s: float) -> int:
    """Scheduled runs to skip after ``failures`` failures in a row: 1, 2, 4, ... at most an hour's worth."""
    cap = max(1, math.ceil(BACKOFF_MAX_S / interval_s))
    return int(min(cap, 2 ** max(failures - 1, 0)))


def applies(query: CustomQuery, server: ServerInfo) -> str | None:
    """Why ``query`` does not run on ``server`` (version range, role), or None when it does."""
    if query.versions is not None and not query.versions.contains(server_semver(server.version_num)):
        return f"PostgreSQL {server.version} is outside its version range {query.versions.text}"
    if query.on != "any" and query.on != server.role:
        return f"it runs on a {query.on} and this server is a {server.role}"
    return None


@dataclass(slots=True)
class CustomRunner:
    """The custom queries of one target, their sessions, their status and what they made."""

    target: TargetConfig
    config: Config
    state: TargetState  # the target's shared state: its server info and databases, read here
    status: dict[str, CollectorStatus] = field(default_factory=dict)
    output: dict[str, Output] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0  # bumped on every change, so the exporter renders again only then
    pool: SessionPool = field(init=False)
    changes: ChangeLog = field(init=False)
    _stopped: set[str] = field(default_factory=set)  # tried to write: not run again until a restart
    _server: ServerInfo | None = None  # read here only while the target's collectors have not read it
    _databases: tuple[str, ...] = ()
    _database_locks: dict[str | None, threading.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = session_settings(self.config)
        self.pool = SessionPool(opener_for(self.state.kind, self.target.dsn, settings), settings)
        self.changes = ChangeLog(log, self.target.name)
        for query in self.config.custom_queries:
            self.status[query.name] = CollectorStatus()
            self.output[query.name] = Output()

    @property
    def server_label(self) -> str:
        params = parse_dsn(self.target.dsn)
        return server_label(params.get("host"), params.get("port"))

    def queries(self) -> tuple[CustomQuery, ...]:
        return self.config.custom_queries

    def run(self, name: str, *, scheduled: bool = True) -> None:
        """One run of one query; whatever happens is recorded in its status, never raised."""
        query = next(q for q in self.config.custom_queries if q.name == name)
        status, output = self.status[name], self.output[name]
        with self.lock:
            if name in self._stopped:
                return
            if scheduled and status.backoff_runs > 0:
                status.backoff_runs -= 1
                self.version += 1
                return
        started = time.monotonic()
        try:
            series = self._run(query, status)
        except QueryFailed as exc:
            if exc.connection_lost:
                self.pool.drop(None)
            stop = exc.sqlstate == READ_ONLY_SQLSTATE
            what = (
                "tried to write (pgradar's sessions are read-only); stopped until restart"
                if stop
                else "timed out"
                if exc.timed_out
                else "failed"
            )
            self._failed(query, f"{what}: {exc}", stop=stop, started=started)
        except ConnectFailed as exc:
            self._failed(query, f"cannot connect: {exc}", stop=False, started=started)
        except DatabaseError as exc:
            self._failed(query, str(exc), stop=False, started=started)
        except Exception as exc:  # a bug must not kill the job thread; logged in full once
            log.exception("target %s: custom query %s failed unexpectedly", self.target.name, name)
            self._failed(query, f"internal error: {type(exc).__name__}: {exc}", stop=False, started=started)
        else:
            with self.lock:
                status.runs += 1
                status.last_duration_s = time.monotonic() - started
                output.series = series
                self.version += 1
                if series is None:
                    return
                status.failures = 0
                status.last_error = None
                status.last_success_at = datetime.now(UTC)
                output.dropped_total += series.dropped
                output.duplicates_total += series.duplicates
            notes = list(series.problems)
            if series.dropped:
                notes.append(f"{series.dropped} series over max_series={query.max_series} dropped")
            if series.duplicates:
                notes.append(f"{series.duplicates} row(s) repeat a label set (first kept)")
            self.changes.note(f"custom query {name}", f"custom query {name}: {'; '.join(notes)}" if notes else "ok")

    def _server_and_databases(self) -> tuple[ServerInfo, tuple[str, ...]]:
        """The target's server and databases as its collectors read them, or read here until they have."""
        with self._database_lock(None):  # read on the session the queries of None use
            if self.state.server is None:
                self._server, self._databases = read_server(self.pool.session(), self.target.databases)
                self.pool.keep_only(self._databases)
            server = self.state.server or self._server
        assert server is not None
        return server, self.state.databases or self._databases

    def _run(self, query: CustomQuery, status: CollectorStatus) -> Series | None:
        server, databases = self._server_and_databases()
        reason = applies(query, server)
        with self.lock:
            status.disabled_reason = reason
        if reason is not None:
            self.changes.note(f"custom query {query.name}", f"custom query {query.name} does not run here: {reason}")
            return None
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
                session = self.pool.session(database)
                with session.rolled_back():
                    session.one(timeout, {"ms": str(int(query.timeout_s * 1000))})
                    columns, rows = session.table(queries.marked(query.sql))  # DESIGN 4: the marker
            answers.append(Rows(database or session.dbname, columns, tuple(rows)))
        return to_series(query, answers, self.target.name, self.server_label)

    def _database_lock(self, database: str | None) -> threading.Lock:
        """The queries of a target share one session per database, so they take turns on it.

        A slow query delays the next custom query on that database by at most
        its own timeout; the built-in collectors have sessions of their own.
        """
        with self.lock:
            return self._database_locks.setdefault(database, threading.Lock())

    def _failed(self, query: CustomQuery, message: str, *, stop: bool, started: float) -> None:
        status = self.status[query.name]
        with self.lock:
            status.runs += 1
            status.errors += 1
            status.failures += 1
            status.last_duration_s = time.monotonic() - started
            status.last_error = message
            self.output[query.name].series = None
            if stop:
                self._stopped.add(query.name)
                status.disabled_reason = message
            else:
                status.backoff_runs = skipped_runs(status.failures, query.interval_s)
            self.version += 1
        later = "" if stop else f"; next try in {status.backoff_runs + 1} run(s)"
        self.changes.note(
            f"custom query {query.name}",
            f"custom query {query.name} {message}{later}",
            logging.WARNING,
            same_as=f"{query.name}: {message}",
        )

    def close(self) -> None:
        self.pool.close()


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
