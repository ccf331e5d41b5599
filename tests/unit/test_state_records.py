"""The typed records a target's state hands out are built once per change and never stale."""

from __future__ import annotations

from factories import snap, stat

from pgradar.agent.runtime.state import TargetState


def test_current_and_kept_follow_every_change() -> None:
    t = TargetState("main", keep=3)
    assert t.current().statements is None and t.kept().statements == ()
    first, second = snap(0, stat(1, 1, 1.0)), snap(1, stat(1, 2, 2.0))
    t.record("statements", first)
    assert t.current().statements is first and t.kept().statements == (first,)
    assert t.current() is t.current() and t.kept() is t.kept()  # built once until the next change
    t.record("statements", second)
    assert t.current().statements is second and t.kept().statements == (first, second)
    t.replace_latest("statements", lambda old: first)
    assert t.current().statements is first and t.kept().statements == (first, first)
    t.record_before("statements", second)
    assert t.kept().statements == (second, first, first)
