"""The vacuum collectors: who holds the xmin horizon back (every 15 s), and bloat (every hour).

One statement (vacuum/holders) lists every holder the server knows; the
collector adds how long pgradar has seen each one hold the same xmin, for
the holders whose start the server does not record (a slot before 17, a
standby's feedback). That memory lives in the target's catalog cache and
forgets a holder as soon as it lets go or moves on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

from pgradar.agent.collect import queries
from pgradar.agent.collect.collectors import CollectContext, each_database
from pgradar.agent.collect.db import Session
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.model.vacuum import (
    BloatSnapshot,
    HorizonHolder,
    IndexBloat,
    IndexBloatEstimate,
    Measured,
    TableBloat,
    TableBloatEstimate,
    VacuumProgress,
    VacuumSnapshot,
)


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
    running = session.rows(queries.resolve("vacuum", "progress", ctx.server.major), VacuumProgress)
    # Kept under the database the agent connects to: the cache forgets databases no longer selected.
    seen = with_seen(rows, ctx.catalog_cache("vacuum", session.dbname), ctx.now)
    return VacuumSnapshot(ctx.now, tuple(seen), tuple(running))


# --- bloat ----------------------------------------------------------------------------


class BloatContext(CollectContext, Protocol):
    thresholds: Thresholds


Estimate = TypeVar("Estimate", TableBloatEstimate, IndexBloatEstimate)


def measure_candidates(estimates: Sequence[Estimate], t: Thresholds) -> list[Estimate]:
    """The tables worth pgstattuple's read, most wasted first: near the thresholds by the estimate, or unestimated.

    Half the thresholds, so an estimate a little low is still checked; a
    table without an estimate (no readable statistics) is measured when it
    is large enough to matter; none above ``bloat_measure_max_bytes``.
    """

    def near(e: Estimate) -> bool:
        if e.size_bytes > t.bloat_measure_max_bytes or e.size_bytes < t.bloat_min_bytes / 2:
            return False
        if e.wasted_bytes is None:
            return e.size_bytes >= t.bloat_min_bytes
        return e.wasted_bytes >= t.bloat_min_bytes / 2 and e.wasted_bytes >= e.size_bytes * t.bloat_ratio / 2

    return sorted(
        filter(near, estimates), key=lambda e: -(e.wasted_bytes if e.wasted_bytes is not None else e.size_bytes)
    )


def collect_bloat(ctx: BloatContext) -> BloatSnapshot:
    """Every table's and B-tree index's estimated bloat; pgstattuple's figure for the candidates, within a budget.

    The estimates read only the catalog and pg_stats. The measured figures
    read pages (pgstattuple_approx: a table's pages that are not all-visible;
    pgstattuple: its TOAST table; pgstatindex: the whole index), so they are
    asked only for the candidates (``measure_candidates``), most wasted first,
    until ``bloat_measure_budget_s`` of this poll is spent, and only in the
    databases where the extension is created; the others keep the estimate.
    """
    server = ctx.server
    deadline = time.monotonic() + ctx.thresholds.bloat_measure_budget_s
    unmeasured: list[str] = []

    def q(name: str) -> queries.Query:
        return queries.resolve("bloat", name, server.major)

    def fetch(session: Session) -> list[TableBloat | IndexBloat]:
        tables = session.rows(q("tables"), TableBloatEstimate)
        indexes = session.rows(q("indexes"), IndexBloatEstimate)
        schema = session.dicts(q("extension"))
        if not schema:
            unmeasured.append(session.dbname)
            return [*(TableBloat(e) for e in tables), *(IndexBloat(e) for e in indexes)]
        ext = schema[0]["schema"]
        measured: dict[tuple[str, int], Measured] = {}
        candidates: list[TableBloatEstimate | IndexBloatEstimate] = [
            *measure_candidates(tables, ctx.thresholds),
            *measure_candidates(indexes, ctx.thresholds),
        ]
        candidates.sort(key=lambda e: -(e.size_bytes if e.wasted_bytes is None else e.wasted_bytes))
        for e in candidates:
            if time.monotonic() >= deadline:
                break
            if isinstance(e, TableBloatEstimate):
                params = {"relid": e.relid, "toast_relid": e.toast_relid, "fillfactor": e.fillfactor}
                measured[("t", e.relid)] = session.rows(q("measure"), Measured, params, pgstattuple=ext)[0]
            else:
                params = {"indexrelid": e.indexrelid, "fillfactor": e.fillfactor}
                measured[("i", e.indexrelid)] = session.rows(q("measure_index"), Measured, params, pgstattuple=ext)[0]
        return [
            *(TableBloat(e, measured.get(("t", e.relid))) for e in tables),
            *(IndexBloat(e, measured.get(("i", e.indexrelid))) for e in indexes),
        ]

    rows, failed = each_database(ctx, fetch)
    return BloatSnapshot(
        ctx.now,
        tuple(r for r in rows if isinstance(r, TableBloat)),
        tuple(failed),
        tuple(r for r in rows if isinstance(r, IndexBloat)),
        tuple(unmeasured),
    )
