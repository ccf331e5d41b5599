"""Statement deltas survive resets and evictions; totals never go backwards."""

from datetime import timedelta
from itertools import pairwise

from factories import T0, snap, stat

from pgradar.agent.derive.deltas import rank_statements, statement_deltas
from pgradar.agent.model.statements import StatementTotals


def by_query(interval):
    return {d.queryid: d for d in interval.deltas}


def test_plain_difference() -> None:
    d = by_query(statement_deltas(snap(0, stat(1, 10, 100.0, 10)), snap(1, stat(1, 15, 160.0, 15))))
    assert (d[1].calls, d[1].total_exec_ms, d[1].rows, d[1].shared_blks_hit) == (5, 60.0, 5, 50)
    assert d[1].mean_exec_ms == 12.0


def test_new_entry_counts_from_zero() -> None:
    d = by_query(statement_deltas(snap(0, stat(1, 10, 1.0)), snap(1, stat(1, 10, 1.0), stat(2, 3, 9.0))))
    assert 1 not in d  # idle statements are not in the interval
    assert d[2].calls == 3


def test_counter_that_went_back_is_taken_as_restarted() -> None:
    interval = statement_deltas(snap(0, stat(1, 100, 1000.0)), snap(1, stat(1, 4, 40.0)))
    assert by_query(interval)[1].calls == 4
    assert interval.reset_seen


def test_reset_seen_through_stats_reset_even_when_counters_grew_past() -> None:
    before = snap(0, stat(1, 5, 50.0), reset=T0)
    after = snap(1, stat(1, 9, 90.0), reset=T0 + timedelta(seconds=30))
    assert by_query(statement_deltas(before, after))[1].calls == 9


def test_totals_never_go_backwards_across_reset_and_eviction() -> None:
    snaps = [
        snap(0, stat(1, 10, 10.0), stat(2, 10, 10.0)),
        snap(1, stat(1, 20, 20.0), stat(2, 12, 12.0)),
        snap(2, stat(1, 3, 3.0)),  # reset: 1 restarted, 2 evicted
        snap(3, stat(1, 8, 8.0), stat(2, 1, 1.0)),
    ]  # 2 back from zero
    totals = StatementTotals.empty()
    seen = []
    for prev, cur in pairwise(snaps):
        totals.add(statement_deltas(prev, cur), {r.key for r in cur.rows})
        seen.append(totals.by_database["app"]["calls"])
    assert seen == [12.0, 15.0, 21.0]
    assert seen == sorted(seen)
    assert totals.counters[(10, 5, 1, True)]["calls"] == 10 + 3 + 5


def test_forgotten_when_gone_from_pgss() -> None:
    totals = StatementTotals.empty()
    totals.add(statement_deltas(snap(0), snap(1, stat(7, 2, 2.0))), {(10, 5, 7, True)})
    totals.add(statement_deltas(snap(1, stat(7, 2, 2.0)), snap(2)), set())
    assert totals.counters == {}
    assert totals.by_database["app"]["calls"] == 2.0


def test_rank_uses_several_intervals() -> None:
    i1 = statement_deltas(snap(0), snap(1, stat(1, 1, 500.0), stat(2, 1, 10.0)))
    i2 = statement_deltas(snap(1, stat(1, 1, 500.0), stat(2, 1, 10.0)), snap(2, stat(1, 1, 500.0), stat(2, 2, 30.0)))
    assert [d.queryid for d in rank_statements([i1, i2], 2)] == [1, 2]
    assert [d.queryid for d in rank_statements([i2], 2)] == [2]
    assert [d.queryid for d in rank_statements([i1, i2], 1)] == [1]


def test_a_delta_is_built_positionally_in_the_order_its_fields_are_declared() -> None:
    """statement_deltas builds StatementDelta from the key, the labels and COUNTERS in that order."""
    from dataclasses import fields

    from pgradar.agent.model.statements import COUNTERS, StatementDelta

    key = ["userid", "dbid", "queryid", "toplevel"]
    assert [f.name for f in fields(StatementDelta)] == [*key, "database", "username", *COUNTERS]


def test_costliest_first_and_integer_counters_stay_integers() -> None:
    interval = statement_deltas(
        snap(0, stat(1, 10, 100.0, 10), stat(2, 10, 100.0, 10)),
        snap(1, stat(1, 11, 101.5, 12), stat(2, 13, 190.0, 13), stat(3, 2, 5.0, 2)),
    )
    assert [d.queryid for d in interval.deltas] == [2, 3, 1]
    assert not interval.reset_seen
    first = interval.deltas[0]
    assert (first.calls, first.rows, first.total_exec_ms) == (3, 3, 90.0)
    assert type(first.calls) is int and type(first.total_exec_ms) is float


def test_changed_queryids_are_the_new_entries_and_those_that_ran_or_were_planned() -> None:
    from pgradar.agent.collect.collectors import changed_queryids

    held = {r.key: r for r in (stat(1, 10, 100.0), stat(2, 10, 100.0), stat(3, 10, 100.0))}

    def stamp(queryid: int, calls: int, exec_ms: float, plan_ms: float = 0.0) -> tuple[object, ...]:
        return (10, 5, queryid, True, calls, exec_ms, plan_ms)

    stamps = [stamp(1, 10, 100.0), stamp(2, 11, 104.0), stamp(3, 10, 100.0, 2.5), stamp(4, 1, 1.0)]
    assert changed_queryids(stamps, held) == [2, 3, 4]
    assert changed_queryids([stamp(1, 10, 100.0)], held) == []


def test_rank_among_the_entries_still_held_fills_the_places_evicted_ones_took() -> None:
    i1 = statement_deltas(snap(0), snap(1, stat(1, 1, 900.0), stat(2, 1, 800.0), stat(3, 1, 10.0)))
    assert [d.queryid for d in rank_statements([i1], 2)] == [1, 2]
    held = {(10, 5, 3, True), (10, 5, 2, True)}  # 1 was evicted since
    assert [d.queryid for d in rank_statements([i1], 2, among=held)] == [2, 3]
