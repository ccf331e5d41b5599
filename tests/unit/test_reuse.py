"""Unchanged rows are shared with the last poll: one copy in the history, not one per poll."""

from operator import attrgetter

from factories import table

from pgradar.agent.model.reuse import reuse_unchanged

BY_TABLE = attrgetter("database", "relid")


def test_equal_rows_are_the_previous_objects_and_changed_or_new_ones_their_own() -> None:
    before = (table("a", relid=1, seq_scan=5), table("b", relid=2, seq_scan=5))
    now = (table("a", relid=1, seq_scan=5), table("b", relid=2, seq_scan=6), table("c", relid=3))
    shared = reuse_unchanged(before, now, BY_TABLE)
    assert shared == now
    assert shared[0] is before[0]
    assert shared[1] is now[1] and shared[2] is now[2]


def test_nothing_before_keeps_every_row() -> None:
    now = (table("a", relid=1),)
    assert reuse_unchanged((), now, BY_TABLE) == now
