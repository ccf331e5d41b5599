"""Plan-shape history: what each statement did under each plan, for ``plan_regression``.

A statement keeps its current shape and the previous distinct one. Each
cycle adds what pg_stat_statements counted since the last cycle to the
current shape; a planning that finds another shape starts counting afresh.
Which indexes exist is fingerprinted (``index_mark``) so plans made before an
index changed are planned again. Everything here is pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.plans import Counters, PlanIndex, PlanShape, PlanSummary

if TYPE_CHECKING:
    from pgradar.agent.model.catalog import IndexesSnapshot, IndexStat
    from pgradar.agent.model.statements import StatementsSnapshot


def index_mark(indexes: IndexesSnapshot | None) -> str:
    """Which indexes exist (and are valid): plans made before an index changed are stale."""
    if indexes is None:
        return ""
    return _mark_of(indexes.indexes)


@per_snapshot  # sorted and hashed once per indexes poll, not at every plans run
def _mark_of(indexes: Sequence[IndexStat]) -> str:
    keys = sorted((i.database, i.indexrelid, i.is_valid) for i in indexes)
    return hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


def statement_counters(snapshot: StatementsSnapshot | None) -> Mapping[tuple[int, int], Counters]:
    """Calls and execution time per (dbid, queryid), top-level entries summed over users."""
    if snapshot is None:
        return {}
    return _counters_of(snapshot)


@per_snapshot  # the plans and the EXPLAIN ANALYZE runs both ask it of the same statements poll
def _counters_of(snapshot: StatementsSnapshot) -> Mapping[tuple[int, int], Counters]:
    out: dict[tuple[int, int], Counters] = {}
    for r in snapshot.rows:
        if r.toplevel:
            _, calls, ms = out.get((r.dbid, r.queryid), (snapshot.taken_at, 0, 0.0))
            out[(r.dbid, r.queryid)] = (snapshot.taken_at, calls + r.calls, ms + r.total_exec_ms)
    return out


def count(shape: PlanShape, counters: Counters | None) -> PlanShape:
    """Add what the statement did since ``shape`` was last counted.

    The first sighting only sets where counting starts. Counters that went
    backwards (pg_stat_statements reset, or the entry evicted and back)
    count as they stand, as the statement deltas do.
    """
    if counters is None:
        return shape
    at, calls, exec_ms = counters
    if shape.counted_at is None:
        return replace(shape, counted_at=at, counter_calls=calls, counter_exec_ms=exec_ms)
    if at <= shape.counted_at:
        return shape
    d_calls, d_ms = calls - shape.counter_calls, exec_ms - shape.counter_exec_ms
    if d_calls < 0 or d_ms < 0:
        d_calls, d_ms = calls, exec_ms
    return replace(
        shape,
        calls=shape.calls + d_calls,
        exec_ms=shape.exec_ms + d_ms,
        recent_calls=d_calls,
        recent_exec_ms=d_ms,
        counted_at=at,
        counter_calls=calls,
        counter_exec_ms=exec_ms,
    )


def next_shapes(
    current: PlanShape | None,
    previous: PlanShape | None,
    summary: PlanSummary | None,
    indexes: tuple[PlanIndex, ...],
    counters: Counters | None,
    now: datetime,
) -> tuple[PlanShape | None, PlanShape | None]:
    """The (current, previous distinct) shapes after a planning found ``summary`` (None: it failed).

    The same shape again carries on counting. Another one becomes the
    current shape, counted from now, and the one it replaces (counted up to
    now) becomes the previous; a shape that comes back starts afresh, so
    what it did before is not mixed with what it does now.
    """
    counted = count(current, counters) if current is not None else None
    if summary is None:
        return counted, previous
    if counted is not None and counted.shape_hash == summary.shape_hash:
        return replace(
            counted, last_seen=now, total_cost=summary.total_cost, indexes=indexes or counted.indexes
        ), previous
    fresh = count(
        PlanShape(summary.shape_hash, summary.shape, summary.total_cost, now, now, indexes, summary.relations), counters
    )
    return fresh, (counted if counted is not None else previous)
