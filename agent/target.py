"""One watched server: its sessions, its backoff, and one collector run at a time.

``run_collector`` is the single place that catches errors for a scheduled job
(one try/except per job): whatever a database does, the agent logs it once
per change, records it in the collector's status and carries on. A target
that is down is retried with exponential backoff; connection attempts never
pile up behind a dead host.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pgradar.agent import collectors, problems, queries
from pgradar.agent.autoexplain import LogTail
from pgradar.agent.classifiers import classify
from pgradar.agent.collectors import CollectorUnavailable
from pgradar.agent.config import Config, DatabaseFilter, TargetConfig
from pgradar.agent.db import ConnectFailed, DatabaseError, QueryFailed, Session, SessionSettings, connect
from pgradar.agent.deltas import statement_deltas
from pgradar.agent.derived import snapshot_scope
from pgradar.agent.model.catalog import IndexesSnapshot, IndexFirstSeen, SizesSnapshot, carry_over, fill_sizes
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.observation import Observation
from pgradar.agent.state import CollectorStatus, TargetState

log = logging.getLogger("pgradar.target")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0


class PartialFailure(Exception):
    """Some databases of a per-database collector failed; the rest was recorded."""


def select_databases(found: list[str], rule: DatabaseFilter) -> tuple[str, ...]:
    """Databases matching include (all when empty) and not exclude (glob patterns)."""

    def matches(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    return tuple(d for d in found if (not rule.include or matches(d, rule.include)) and not matches(d, rule.exclude))


def backoff_delay(failures: int) -> float:
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(failures - 1, 0)))


@dataclass(slots=True)
class _Link:
    """One session to one database, with its own lock and backoff."""

    session: Session | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Context:
    """What a collector sees (collectors.CollectContext)."""

    def __init__(self, runtime: TargetRuntime, server: ServerInfo, now: datetime) -> None:
        self._runtime = runtime
        self.server = server
        self.now = now
        self.databases = runtime.state.databases
        self.statement_texts = runtime.state.statement_texts
        self.thresholds = runtime.target.thresholds
        self.auto_explain_log = runtime.auto_explain_log
        self.explain_analyze = runtime.target.explain_analyze

    def history(self, collector: str) -> tuple[Any, ...]:
        return self._runtime.state.history(collector)

    def session(self, database: str | None = None) -> Session:
        return self._runtime.session(database)

    def database_failed(self, database: str, error: Exception) -> None:
        self._runtime.note_database_failure(database, error)

    def catalog_cache(self, collector: str, database: str) -> dict[int, Any]:
        with self._runtime.state.lock:
            return self._runtime.state.catalog.setdefault((collector, database), {})


def index_first_seen(previous: IndexFirstSeen | None, snapshot: IndexesSnapshot) -> IndexFirstSeen:
    """Carry the first sightings forward: an index new since the last poll gets this poll's time.

    On the first poll every index gets None (age unknown). Indexes of a
    database that failed this time keep their entry, so a hiccup does not
    make them look new.
    """
    known = dict(previous.first_seen) if previous is not None else {}
    when = snapshot.taken_at if previous is not None else None
    keys = [(i.database, i.indexrelid) for i in snapshot.indexes]
    kept = [k for k in known if k[0] in snapshot.failed_databases]
    seen = tuple((key, known.get(key, when)) for key in [*keys, *kept])
    return IndexFirstSeen(snapshot.taken_at, seen)


def without_own(snapshot: StatementsSnapshot, texts: Mapping[tuple[int, int], str]) -> StatementsSnapshot:
    """The snapshot without the agent's own statements: those whose text carries ``queries.MARKER``.

    The text look-up prefers an application's text over a marked one
    (texts.*.sql), so a queryid the application runs keeps its rows even when
    pgradar's EXPLAIN or PREPARE of it was recorded under the same queryid;
    only statements that nobody but the agent ran are left out.
    """
    rows = tuple(r for r in snapshot.rows if not queries.is_own(texts.get((r.dbid, r.queryid), "")))
    if len(rows) == len(snapshot.rows):
        return snapshot
    return replace(snapshot, rows=rows)


class TargetRuntime:
    """A PostgreSQL server; subclasses watch other kinds of target with the same jobs and health."""

    collector_names: tuple[str, ...] = collectors.COLLECTOR_NAMES

    def __init__(self, target: TargetConfig, config: Config, state: TargetState) -> None:
        self.target = target
        self.config = config
        self.state = state
        self.settings = SessionSettings(config.connect_timeout_s, config.statement_timeout_ms, config.lock_timeout_ms)
        self._links: dict[str | None, _Link] = {}
        self._links_lock = threading.Lock()
        self._logged: dict[str, str] = {}
        self._database_errors: dict[str, str] = {}
        self.auto_explain_log = LogTail(target.auto_explain_log) if target.auto_explain_log else None

    # --- sessions ---------------------------------------------------------------

    def _link(self, database: str | None) -> _Link:
        with self._links_lock:
            if database not in self._links:
                self._links[database] = _Link()
            return self._links[database]

    def session(self, database: str | None = None) -> Session:
        """A live session to ``database`` (None: the DSN's own), or ConnectFailed.

        Only one thread connects a link at a time. While the link is healthy
        the others wait for that attempt (at start, every collector asks at
        once). Once it has failed they do not wait: against a host that
        never answers, every collector of the target would sit out the
        connect timeout in a worker thread, and the other targets' jobs
        would starve for workers.
        """
        link = self._link(database)
        healthy = link.failures == 0
        acquired = (
            link.lock.acquire(timeout=self.settings.connect_timeout_s + 1)
            if healthy
            else link.lock.acquire(blocking=False)
        )
        if not acquired:
            raise ConnectFailed(link.last_error or "connection attempt in progress")
        try:
            if link.session is not None and not link.session.closed:
                return link.session
            now = time.monotonic()
            if now < link.retry_at:
                # No attempt while backing off: the last real error again, so it is logged once.
                raise ConnectFailed(link.last_error)
            try:
                link.session = self._open(database)
            except ConnectFailed as exc:
                link.failures += 1
                link.retry_at = time.monotonic() + backoff_delay(link.failures)
                link.last_error = str(exc)
                raise
            link.failures = 0
            return link.session
        finally:
            link.lock.release()

    def _open(self, database: str | None) -> Session:
        return connect(self.target.dsn, self.settings, dbname=database)

    def drop_session(self, database: str | None) -> None:
        link = self._link(database)
        with link.lock:
            session, link.session = link.session, None
        if session is not None:
            session.close()

    def close(self) -> None:
        with self._links_lock:
            links = list(self._links.values())
        for link in links:
            with link.lock:
                if link.session is not None:
                    link.session.close()
                    link.session = None

    def note_database_failure(self, database: str, error: Exception) -> None:
        if isinstance(error, QueryFailed) and error.connection_lost:
            self.drop_session(database)
        self._database_errors[database] = str(error)

    # --- the server collector ------------------------------------------------------

    def refresh_server(self) -> ServerInfo:
        session = self.session()
        info = session.one(queries.resolve("server", "info", 13))
        server = ServerInfo(**info)
        found = [r["datname"] for r in session.dicts(queries.resolve("server", "databases", server.major))]
        databases = select_databases(found, self.target.databases)
        previous = self.state.server
        with self.state.lock:
            self.state.server = server
            self.state.databases = databases
            self.state.up = True
            self.state.last_error = None
        if previous is None or previous.role != server.role or previous.version_num != server.version_num:
            log.info(
                "target %s: PostgreSQL %s, %s, %d database(s)",
                self.target.name,
                server.version,
                server.role,
                len(databases),
            )
        for gone in set(self._links) - {None, *databases}:
            self.drop_session(gone)
        with self.state.lock:
            for key in [k for k in self.state.catalog if k[1] not in databases]:
                del self.state.catalog[key]
        return server

    # --- one scheduled run ----------------------------------------------------------

    def run_collector(self, name: str) -> None:
        with snapshot_scope(self.target.name):
            self._run_collector(name)

    def _run_collector(self, name: str) -> None:
        status = self.state.collector(name)
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            snapshot = self._collect(name, now)
            failed = getattr(snapshot, "failed_databases", ())
            if failed:
                snapshot = carry_over(self.state.latest(name), snapshot)
            self.state.record(name, fill_sizes(snapshot, self.state.current().sizes))
            if isinstance(snapshot, SizesSnapshot):
                for counters in ("tables", "database"):  # the latest counters get the new sizes at once
                    self.state.replace_latest(counters, lambda old: fill_sizes(old, snapshot))
            if isinstance(snapshot, IndexesSnapshot):
                self.state.record("index_first_seen", index_first_seen(self.state.current().index_first_seen, snapshot))
            if failed:
                reasons = "; ".join(f"database {db}: {self._database_errors.get(db, 'failed')}" for db in failed)
                raise PartialFailure(f"{reasons} (previous rows kept)")
        except PartialFailure as exc:
            self._failed(name, status, str(exc), down=False)
        except CollectorUnavailable as exc:
            with self.state.lock:
                status.disabled_reason, status.disabled_fix = exc.reason, exc.fix or None
            self._log_change(
                name,
                f"collector {name} is off: {exc.reason}" + (f"; fix: {exc.fix}" if exc.fix else ""),
                logging.WARNING,
            )
        except ConnectFailed as exc:
            self._failed(name, status, f"cannot connect: {exc}", down=True)
        except QueryFailed as exc:
            if exc.connection_lost:
                self.drop_session(None)
            self._failed(name, status, str(exc), down=exc.connection_lost)
        except DatabaseError as exc:
            self._failed(name, status, str(exc), down=False)
        except Exception as exc:  # a bug must not kill the daemon; log it in full once
            log.exception("target %s: collector %s failed unexpectedly", self.target.name, name)
            self._failed(name, status, f"internal error: {type(exc).__name__}: {exc}", down=False)
        else:
            with self.state.lock:
                status.disabled_reason = status.disabled_fix = None
                status.last_success_at = now
                status.last_error = None
            self._log_change(name, "ok")
        finally:
            with self.state.lock:
                status.runs += 1
                status.last_duration_s = time.monotonic() - started

    def _collect(self, name: str, now: datetime) -> Any:
        """One collector's snapshot; raises what ``run_collector`` sorts out."""
        server = self.refresh_server() if name == "server" or self.state.server is None else self.state.server
        if not server.supported:
            raise CollectorUnavailable(
                f"PostgreSQL {server.version} is older than 13, which pgradar needs",
                "upgrade the server to PostgreSQL 13 or later",
            )
        snapshot = collectors.spec(name).collect(_Context(self, server, now))
        if isinstance(snapshot, StatementsSnapshot):
            snapshot = self._after_statements(_Context(self, server, now), snapshot)
        return snapshot

    def _failed(self, name: str, status: CollectorStatus, message: str, down: bool) -> None:
        with self.state.lock:
            status.errors += 1
            status.last_error = message
            if down:
                self.state.up = False
                self.state.last_error = message
        self._log_change(name, f"collector {name} failed: {message}", logging.WARNING)

    def _log_change(self, key: str, message: str, level: int = logging.INFO) -> None:
        """Log when a collector's condition changes, not on every failing poll."""
        previous = self._logged.get(key)
        self._logged[key] = message
        if message == previous or (message == "ok" and previous is None):
            return
        if message == "ok":
            log.info("target %s: %s recovered", self.target.name, key)
        else:
            log.log(level, "target %s: %s", self.target.name, message)

    def classify(self, obs: Observation) -> None:
        """Run every classifier on an observation of this target and keep the active set."""
        status = self.state.collector("classify")
        started = time.monotonic()
        with snapshot_scope(self.target.name):
            findings, errors = classify(obs, self.target.thresholds)
        with self.state.lock:
            self.state.problems = problems.update(self.state.problems, findings, obs.now)
            status.runs += 1
            status.last_duration_s = time.monotonic() - started
            if errors:
                status.errors += 1
                status.last_error = "; ".join(errors)
            else:
                status.last_success_at = obs.now
                status.last_error = None
        for error in errors:
            self._log_change(f"classifier {error.split(':')[0]}", f"classifier failed: {error}", logging.ERROR)

    def _after_statements(self, ctx: _Context, snapshot: StatementsSnapshot) -> StatementsSnapshot:
        texts = collectors.fetch_new_texts(ctx, snapshot)
        previous = self.state.current().statements
        present_texts = {(r.dbid, r.queryid) for r in snapshot.rows}
        with self.state.lock:
            self.state.texts_fetched_total += len(texts)
            for text in texts:
                self.state.statement_texts[(text.dbid, text.queryid)] = text.query
            for gone in [k for k in self.state.statement_texts if k not in present_texts]:
                del self.state.statement_texts[gone]
            # The agent's own statements (DESIGN 4) stop here: their texts stay
            # known (never fetched again) but no interval, total, problem or
            # top-statement list sees them.
            snapshot = without_own(snapshot, self.state.statement_texts)
            present_keys = {r.key for r in snapshot.rows}
            if previous is not None:
                interval = statement_deltas(previous, snapshot)
                self.state.statement_totals.add(interval, present_keys)
                self.state.statement_intervals.append(interval)
        return StatementsSnapshot(snapshot.taken_at, snapshot.rows, snapshot.info, new_texts=len(texts))
