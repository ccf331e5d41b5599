"""What ``pgradar check`` reads besides the collectors: whose counters, and since when they count.

A baseline file is refused against another cluster or a restarted one, so
the gate reads the server's identity; a one-pass check judges statement
counters since the oldest pg_stat_statements entry began counting (17+).
Both are one query over a session of the target, SQL in ``sql/server`` and
``sql/statements`` like every other read.
"""

from __future__ import annotations

from datetime import datetime

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import QueryFailed, Session
from pgradar.agent.model.server import ServerIdentity, ServerInfo


def server_identity(session: Session) -> ServerIdentity:
    """The cluster's system identifier and start time (raises the session's DatabaseError)."""
    query = queries.resolve("server", "identity", 13)
    rows = session.rows(query, ServerIdentity)
    if len(rows) != 1:
        raise QueryFailed(f"{query.source} returned {len(rows)} rows, expected 1")
    return rows[0]


def oldest_statement_entry(session: Session, server: ServerInfo) -> datetime | None:
    """min(stats_since) of pg_stat_statements on 17+; None before 17, without the extension or without entries."""
    if not server.has_pgss_stats_since or server.pgss_schema is None:
        return None
    rows = session.tuples(queries.resolve("statements", "since", server.major), pgss=server.pgss_schema)
    since = rows[0][0] if rows else None
    return since if isinstance(since, datetime) else None
