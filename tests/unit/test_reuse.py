"""Unchanged rows are shared with the last poll: one copy in the history, not one per poll."""

from operator import attrgetter

from factories import snap, stat, table

from pgradar.agent.model.reuse import reuse_unchanged
from pgradar.agent.registry import STATEMENT_KEY, share_unchanged_statements
from pgradar.agent.state import TargetState

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


def test_a_statements_poll_shares_the_idle_statements_with_the_last_one() -> None:
    class Ctx:
        state = TargetState("t")
        collector = "statements"

    ctx = Ctx()
    first = snap(0, stat(1, 10, 10.0), stat(2, 10, 10.0))
    ctx.state.record("statements", first)
    second = share_unchanged_statements(ctx, snap(1, stat(1, 10, 10.0), stat(2, 12, 14.0)))  # type: ignore[arg-type]
    assert second.rows[0] is first.rows[0]
    assert second.rows[1] is not first.rows[1] and second.rows[1].calls == 12
    assert STATEMENT_KEY(second.rows[1]) == second.rows[1].key
