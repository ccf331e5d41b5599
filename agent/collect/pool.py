"""One target's sessions: one per database, each with its own lock and backoff.

A target that is down is retried with exponential backoff, and connection
attempts never pile up behind a dead host: every collector of a target asks
for its sessions here, in worker threads the other targets need too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pgradar.agent.collect.db import ConnectFailed, QueryFailed, Session, SessionSettings

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0

# (database or None for the DSN's own) -> a new session, or ConnectFailed
Opener = Callable[[str | None], Session]


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


class SessionPool:
    """The sessions of one target, opened on demand by ``open`` and dropped when lost."""

    def __init__(self, open_session: Opener, settings: SessionSettings) -> None:
        self._open = open_session
        self.settings = settings
        self._links: dict[str | None, _Link] = {}
        self._links_lock = threading.Lock()

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

    def drop(self, database: str | None) -> None:
        """Close ``database``'s session; the next ``session`` call connects again."""
        link = self._link(database)
        with link.lock:
            session, link.session = link.session, None
        if session is not None:
            session.close()

    def drop_if_lost(self, database: str | None, error: Exception) -> None:
        """A query that failed because the connection went away leaves no dead session behind."""
        if isinstance(error, QueryFailed) and error.connection_lost:
            self.drop(database)

    def keep_only(self, databases: tuple[str, ...]) -> None:
        """Drop the sessions of databases no longer watched (dropped, or filtered out)."""
        with self._links_lock:
            gone = set(self._links) - {None, *databases}
        for database in gone:
            self.drop(database)

    def close(self) -> None:
        with self._links_lock:
            links = list(self._links.values())
        for link in links:
            with link.lock:
                if link.session is not None:
                    link.session.close()
                    link.session = None
