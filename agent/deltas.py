"""Deltas and rates of statement counters between two snapshots.

pg_stat_statements counters are not monotonic: ``pg_stat_statements_reset()``
zeroes them, and an entry evicted under churn (more statements than
``pg_stat_statements.max``) comes back from zero. The delta of an entry is
therefore its counters minus the previous ones when none went backwards, and
its counters as they stand (all counted since it was created) when the entry
is new, was reset, or went backwards. Accumulating those deltas gives counters
that never go backwards, which is what the exporter publishes.

pandas does the per-key arithmetic: a poll can hold thousands of entries.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from pgradar.agent.derived import per_snapshot
from pgradar.agent.model.statements import (
    COUNTERS,
    StatementDelta,
    StatementInterval,
    StatementKey,
    StatementsSnapshot,
    StatementStat,
)

KEY = ["userid", "dbid", "queryid", "toplevel"]
LABELS = ["database", "username"]


_DELTA_FIELDS = [f.name for f in fields(StatementDelta)]


_COLUMNS = KEY + LABELS + COUNTERS
_ROW_VALUES = operator.attrgetter(*_COLUMNS)


@per_snapshot  # each snapshot is the current side once and the previous side once or more: build it once
def _frame_of(rows: Sequence[StatementStat]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records([_ROW_VALUES(r) for r in rows], columns=_COLUMNS)
    return frame.drop_duplicates(subset=KEY, keep="last").set_index(KEY)


def counter_delta(now: float, then: float | None) -> float:
    """What a cumulative counter counted since ``then``: all of ``now`` when it is new or went backwards.

    The rule of this module's frames, for one counter: the exporter ranks
    tables and indexes by it.
    """
    return now - then if then is not None and now >= then else now


def statement_deltas(previous: StatementsSnapshot, current: StatementsSnapshot) -> StatementInterval:
    cur = _frame_of(current.rows)
    prev = _frame_of(previous.rows)
    whole_reset = (
        previous.info is not None and current.info is not None and previous.info.stats_reset != current.info.stats_reset
    )
    joined = cur.join(prev[COUNTERS].add_suffix("_prev"), how="left")
    prev_cols = [f"{c}_prev" for c in COUNTERS]
    is_new = joined[prev_cols[0]].isna()
    went_back = pd.Series(False, index=joined.index)
    for c in COUNTERS:
        went_back |= joined[c] < joined[f"{c}_prev"].fillna(0)
    restart = is_new | went_back | whole_reset
    out = pd.DataFrame(index=joined.index)
    for c in COUNTERS:
        out[c] = joined[c].where(restart, joined[c] - joined[f"{c}_prev"])
    out[LABELS] = joined[LABELS]
    active = out[out["calls"] > 0].sort_values("total_exec_ms", ascending=False).reset_index()
    deltas = tuple(
        StatementDelta(**{name: _cast(name, row[name]) for name in _DELTA_FIELDS}) for row in active.to_dict("records")
    )
    reset_seen = bool(whole_reset or went_back.any())
    return StatementInterval(previous.taken_at, current.taken_at, deltas, reset_seen)


def rank_statements(intervals: Sequence[StatementInterval], n: int) -> list[StatementDelta]:
    """The ``n`` statements with the most execution time over the recent intervals.

    Ranking over several intervals, not the last one alone, keeps a statement
    that runs every few minutes from flickering in and out of the top N. Each
    comes back as its latest delta (its labels and its latest mean time).
    """
    exec_ms: dict[StatementKey, float] = {}
    latest: dict[StatementKey, StatementDelta] = {}
    for interval in intervals:
        for delta in interval.deltas:
            exec_ms[delta.key] = exec_ms.get(delta.key, 0.0) + delta.total_exec_ms
            latest[delta.key] = delta
    ranked = sorted(exec_ms, key=lambda k: (-exec_ms[k], k))[:n]
    return [latest[k] for k in ranked]


_INT_FIELDS = {f.name for f in fields(StatementStat) if f.type in ("int", int)}


def _cast(name: str, value: Any) -> Any:
    """A frame's value (a numpy scalar) as the field's own type."""
    if name == "toplevel":
        return bool(value)
    if name in _INT_FIELDS:
        return int(value)
    if name in LABELS:
        return str(value)
    return float(value)
