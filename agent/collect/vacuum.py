"""The vacuum collector: who holds the xmin horizon back, read every 15 s with the sessions.

One statement (vacuum/holders) lists every holder the server knows; the
collector adds how long pgradar has seen each one hold the same xmin, for
the holders whose start the server does not record (a slot before 17, a
standby's feedback). That memory lives in the target's catalog cache and
forgets a holder as soon as it lets go or moves on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pgradar.agent.collect import queries
from pgradar.agent.collect.collectors import CollectContext
from pgradar.agent.model.vacuum import HorizonHolder, VacuumSnapshot


def with_seen(
    holders: list[HorizonHolder], first_seen: dict[tuple[str, str, int], datetime], now: datetime
) -> list[HorizonHolder]:
    """Each holder with the seconds since it was first seen holding its xmin; ``first_seen`` is kept current."""
    current = {h.key for h in holders}
    for gone in [k for k in first_seen if k not in current]:
        del first_seen[gone]
    out = []
    for h in holders:
        since = first_seen.setdefault(h.key, now)
        out.append(replace(h, seen_seconds=max(0.0, (now - since).total_seconds())))
    return out


def collect_vacuum(ctx: CollectContext) -> VacuumSnapshot:
    session = ctx.session()
    rows = session.rows(queries.resolve("vacuum", "holders", ctx.server.major), HorizonHolder)
    # Kept under the database the agent connects to: the cache forgets databases no longer selected.
    return VacuumSnapshot(ctx.now, tuple(with_seen(rows, ctx.catalog_cache("vacuum", session.dbname), ctx.now)))
