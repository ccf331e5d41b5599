"""One watched target's jobs: each collector run under the one error boundary, and classification.

``run_collector`` is the single place that catches errors for a scheduled job
(one try/except per job): whatever a database does, the agent logs it once
per change, records it in the collector's status and carries on. Sessions and
their backoff are the pool's (``pool.SessionPool``); what a collector reads
and what follows a read are the registry's (``registry.COLLECTORS``).
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pgradar.agent.classifiers import classify
from pgradar.agent.collect import queries
from pgradar.agent.collect.bouncer import open_console
from pgradar.agent.collect.collectors import SERVER_WIDE, CollectorUnavailable
from pgradar.agent.collect.db import ConnectFailed, DatabaseError, QueryFailed, Session, SessionSettings, connect
from pgradar.agent.collect.pool import Opener, SessionPool
from pgradar.agent.derive.derived import snapshot_scope
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.snapshots import SnapshotHistory
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.plans.autoexplain import LogTail
from pgradar.agent.runtime import problems
from pgradar.agent.runtime.changes import ChangeLog
from pgradar.agent.runtime.registry import PGBOUNCER, CollectorSpec, names_for, spec
from pgradar.agent.runtime.state import CollectorStatus, TargetState
from pgradar.agent.settings.config import Config, DatabaseFilter, TargetConfig

log = logging.getLogger("pgradar.target")


class PartialFailure(Exception):
    """Some databases of a per-database collector failed; the rest was recorded."""


def select_databases(found: list[str], rule: DatabaseFilter) -> tuple[str, ...]:
    """Databases matching include (all when empty) and not exclude (glob patterns)."""

    def matches(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    return tuple(d for d in found if (not rule.include or matches(d, rule.include)) and not matches(d, rule.exclude))


def read_server(session: Session, rule: DatabaseFilter) -> tuple[ServerInfo, tuple[str, ...]]:
    """The server's information and the databases of it that ``rule`` watches."""
    server = ServerInfo(**session.one(queries.resolve("server", "info", 13)))
    found = [r["datname"] for r in session.dicts(queries.resolve("server", "databases", server.major))]
    return server, select_databases(found, rule)


def session_settings(config: Config) -> SessionSettings:
    return SessionSettings(config.connect_timeout_s, config.statement_timeout_ms, config.lock_timeout_ms)


def opener_for(kind: str, dsn: str, settings: SessionSettings) -> Opener:
    """How a target of this kind is connected to: a hardened session per database, or pgbouncer's console."""
    if kind == PGBOUNCER:
        return lambda database: open_console(dsn, settings)
    return lambda database: connect(dsn, settings, dbname=database)


def sampler_settings(settings: SessionSettings, interval_s: float) -> SessionSettings:
    """The sampler's session limits: a sample that cannot finish in half its interval is cancelled."""
    budget_ms = max(100, int(interval_s * 500))
    return replace(
        settings,
        statement_timeout_ms=min(settings.statement_timeout_ms, budget_ms),
        lock_timeout_ms=min(settings.lock_timeout_ms, budget_ms),
    )


class JobRun:
    """One run of a job: what its collector and ``after`` steps see (the ``registry.JobContext`` protocol)."""

    server: ServerInfo  # left unset for a collector that runs without it (pgbouncer's)

    def __init__(self, runner: TargetRunner, server: ServerInfo | None, now: datetime, collector: str = "") -> None:
        self._runner = runner
        if server is not None:
            self.server = server
        self.now = now
        self.collector = collector
        self.state: TargetState = runner.state
        self.databases: tuple[str, ...] = runner.state.databases
        self.statement_texts: Mapping[tuple[int, int], str] = runner.state.statement_texts
        self.thresholds: Thresholds = runner.target.thresholds
        self.auto_explain_log: LogTail | None = runner.auto_explain_log
        self.explain_analyze: bool = runner.target.explain_analyze
        self.load_interval_s: float = runner.config.interval("load")

    def kept(self) -> SnapshotHistory:
        return self.state.kept()

    def session(self, database: str | None = None) -> Session:
        return self._runner.session(database)

    def database_failed(self, database: str, error: Exception) -> None:
        self._runner.note_database_failure(database, error)

    def sampler_session(self) -> Session:
        return self._runner.sampler.session(None)

    def sampler_failed(self, error: Exception) -> None:
        self._runner.sampler.drop_if_lost(None, error)

    def catalog_cache(self, collector: str, database: str) -> dict[Any, Any]:
        with self.state.lock:
            return self.state.catalog.setdefault((collector, database), {})


class TargetRunner:
    """A target of any kind: its sessions, the collectors the registry gives its kind, their health."""

    def __init__(self, target: TargetConfig, config: Config, state: TargetState) -> None:
        self.target = target
        self.config = config
        self.state = state
        settings = session_settings(config)
        self.pool = SessionPool(opener_for(state.kind, target.dsn, settings), settings)
        # The load sampler's own session: a slow poll on the others never delays a sample.
        sampling = sampler_settings(settings, config.interval("load"))
        self.sampler = SessionPool(opener_for(state.kind, target.dsn, sampling), sampling)
        self.collector_names = names_for(state.kind)
        self.changes = ChangeLog(log, target.name)
        self._database_errors: dict[str, str] = {}
        self.auto_explain_log = LogTail(target.auto_explain_log) if target.auto_explain_log else None

    def session(self, database: str | None = None) -> Session:
        """A live session to ``database`` of this target (None: the DSN's own), or ConnectFailed."""
        return self.pool.session(database)

    def close(self) -> None:
        self.pool.close()
        self.sampler.close()

    def note_database_failure(self, database: str, error: Exception) -> None:
        self.pool.drop_if_lost(database, error)
        self._database_errors[database] = str(error)

    # --- server information --------------------------------------------------------

    def refresh_server(self) -> ServerInfo:
        session = self.session()
        server, databases = read_server(session, self.target.databases)
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
        self.pool.keep_only(databases)
        # What was kept of a database no longer visited goes; not what is kept of the server as a whole
        # ("": database sizes) or read on the DSN's own database (statements), which may be unlisted.
        kept = {*databases, SERVER_WIDE, session.dbname}
        with self.state.lock:
            for key in [k for k in self.state.catalog if k[1] not in kept]:
                del self.state.catalog[key]
        return server

    # --- one scheduled run ----------------------------------------------------------

    def run_collector(self, name: str) -> None:
        with snapshot_scope(self.target.name):
            self._run_collector(spec(name))

    def _run_collector(self, collector: CollectorSpec) -> None:
        name = collector.name
        status = self.state.collector(name)
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            ctx = JobRun(self, self._server_for(collector), now, name)
            snapshot = collector.collect(ctx)
            for step in collector.after:
                snapshot = step(ctx, snapshot)
            self.state.record(name, snapshot)
            failed = getattr(snapshot, "failed_databases", ())
            if failed:
                reasons = "; ".join(f"database {db}: {self._database_errors.get(db, 'failed')}" for db in failed)
                raise PartialFailure(f"{reasons} (previous rows kept)")
        except PartialFailure as exc:
            self._failed(name, status, str(exc), down=False)
        except CollectorUnavailable as exc:
            with self.state.lock:
                status.disabled_reason, status.disabled_fix = exc.reason, exc.fix or None
            self.changes.note(
                name,
                f"collector {name} is off: {exc.reason}" + (f"; fix: {exc.fix}" if exc.fix else ""),
                logging.WARNING,
            )
        except ConnectFailed as exc:
            self._failed(name, status, f"cannot connect: {exc}", down=True)
        except QueryFailed as exc:
            if exc.connection_lost:
                self.pool.drop(None)
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
            self.changes.note(name, "ok")
        finally:
            with self.state.lock:
                status.runs += 1
                status.last_duration_s = time.monotonic() - started

    def _server_for(self, collector: CollectorSpec) -> ServerInfo | None:
        """The server's information a collector runs with; raises what ``run_collector`` sorts out."""
        if not collector.needs_server:
            return None
        refresh = collector.refreshes_server or self.state.server is None
        server = self.refresh_server() if refresh else self.state.server
        assert server is not None
        if not server.supported:
            raise CollectorUnavailable(
                f"PostgreSQL {server.version} is older than 13, which pgradar needs",
                "upgrade the server to PostgreSQL 13 or later",
            )
        return server

    def _failed(self, name: str, status: CollectorStatus, message: str, down: bool) -> None:
        with self.state.lock:
            status.errors += 1
            status.last_error = message
            if down:
                self.state.up = False
                self.state.last_error = message
        self.changes.note(name, f"collector {name} failed: {message}", logging.WARNING)

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
            self.changes.note(f"classifier {error.split(':')[0]}", f"classifier failed: {error}", logging.ERROR)
