"""The load sampler: one read of pg_stat_activity per interval, on a session of its own.

The session is the sampler's alone (``SamplerContext.sampler_session``), with
a ``statement_timeout`` well under the interval, so a slow poll of another
collector on the target's other sessions never delays a sample, and a sample
that cannot finish in time fails (and is counted) instead of piling up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import QueryFailed, Session
from pgradar.agent.model.load import LoadRow, LoadSample
from pgradar.agent.model.server import ServerInfo


class SamplerContext(Protocol):
    server: ServerInfo
    now: datetime
    load_interval_s: float

    def sampler_session(self) -> Session: ...

    def sampler_failed(self, error: Exception) -> None: ...


def collect_load(ctx: SamplerContext) -> LoadSample:
    """One sample: the active backends (and the holders of the locks they wait for)."""
    session = ctx.sampler_session()
    try:
        rows = session.tuples(queries.resolve("load", "sample", ctx.server.major))
    except QueryFailed as exc:
        ctx.sampler_failed(exc)
        raise
    return LoadSample(
        ctx.now,
        ctx.load_interval_s,
        tuple(
            LoadRow(pid, database, queryid, wtype, event, user, app, active, state, tuple(blocked or ()))
            for pid, database, queryid, wtype, event, user, app, active, state, blocked in rows
        ),
    )
