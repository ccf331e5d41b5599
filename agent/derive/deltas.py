"""Deltas and rates of statement counters between two snapshots.

pg_stat_statements counters are not monotonic: ``pg_stat_statements_reset()``
zeroes them, and an entry evicted under churn (more statements than
``pg_stat_statements.max``) comes back from zero. The delta of an entry is
therefore its counters minus the previous ones when none went backwards, and
its counters as they stand (all counted since it was created) when the entry
is new, was reset, or went backwards. Accumulating those deltas gives counters
that never go backwards, which is what the exporter publishes.

A poll holds up to ``pg_stat_statements.max`` entries and the subtraction
is one dictionary look-up and a dozen subtractions each: plain tuples, with
no data-frame library loaded in the agent for it.
"""

from __future__ import annotations

import operator
from collections.abc import Container, Mapping, Sequence
from typing import Any

from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.statements import (
    COUNTERS,
    StatementDelta,
    StatementInterval,
    StatementKey,
    StatementsSnapshot,
    StatementStat,
)

_COUNTER_VALUES = operator.attrgetter(*COUNTERS)
_KEY = operator.attrgetter("userid", "dbid", "queryid", "toplevel")  # StatementStat.key, in C
CounterValues = tuple[Any, ...]  # a row's COUNTERS in order: ints and floats as the fields declare them
_CALLS = COUNTERS.index("calls")


@per_snapshot  # each snapshot is the current side once and the previous side once or more: index it once
def by_key(rows: Sequence[StatementStat]) -> Mapping[StatementKey, StatementStat]:
    """The rows by statement key; of two rows with one key (never seen, but cheap to bear) the last."""
    return {_KEY(r): r for r in rows}


def counter_delta(now: float, then: float | None) -> float:
    """What a cumulative counter counted since ``then``: all of ``now`` when it is new or went backwards.

    The rule of this module, for one counter: the exporter ranks tables and
    indexes by it.
    """
    return now - then if then is not None and now >= then else now


def counters_since(now: CounterValues, then: CounterValues | None) -> tuple[CounterValues, bool]:
    """(what an entry counted since ``then``, whether it restarted).

    All of ``now`` when the entry is new or any counter went backwards.
    """
    if then is None:
        return now, False
    counted = tuple(map(operator.sub, now, then))
    if min(counted) < 0:
        return now, True
    return counted, False


def statement_deltas(previous: StatementsSnapshot, current: StatementsSnapshot) -> StatementInterval:
    before = by_key(previous.rows)
    whole_reset = (
        previous.info is not None and current.info is not None and previous.info.stats_reset != current.info.stats_reset
    )
    deltas: list[StatementDelta] = []
    went_back = False
    for key, row in by_key(current.rows).items():
        previous_row = before.get(key)
        if previous_row is row and not whole_reset:
            continue  # the same row object: the poll kept it, as it does every idle entry
        now = _COUNTER_VALUES(row)
        then = None if whole_reset or previous_row is None else _COUNTER_VALUES(previous_row)
        if now == then:
            continue  # idle since the last poll, as most entries are
        counted, restarted = counters_since(now, then)
        went_back = went_back or restarted
        if counted[_CALLS] > 0:
            deltas.append(StatementDelta(*key, row.database, row.username, *counted))
    deltas.sort(key=lambda d: d.total_exec_ms, reverse=True)
    return StatementInterval(previous.taken_at, current.taken_at, tuple(deltas), whole_reset or went_back)


def rank_statements(
    intervals: Sequence[StatementInterval], n: int, among: Container[StatementKey] | None = None
) -> list[StatementDelta]:
    """The ``n`` statements with the most execution time over the recent intervals.

    Ranking over several intervals, not the last one alone, keeps a statement
    that runs every few minutes from flickering in and out of the top N. Each
    comes back as its latest delta (its labels and its latest mean time).
    ``among``: only these keys (the entries pg_stat_statements still holds),
    so that statements evicted under churn do not take the places.
    """
    exec_ms: dict[StatementKey, float] = {}
    latest: dict[StatementKey, StatementDelta] = {}
    for interval in intervals:
        for delta in interval.deltas:
            if among is not None and delta.key not in among:
                continue
            exec_ms[delta.key] = exec_ms.get(delta.key, 0.0) + delta.total_exec_ms
            latest[delta.key] = delta
    ranked = sorted(exec_ms, key=lambda k: (-exec_ms[k], k))[:n]
    return [latest[k] for k in ranked]
