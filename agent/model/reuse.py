"""Rows that did not change since the last poll are kept as the last poll's objects.

Most of a catalog is idle between two polls: of thousands of indexes a
handful are scanned, and most statements do not run. The history keeps several
polls of each collector; sharing the unchanged rows holds one copy of each
instead of one per poll, and the new poll's equal copy is freed at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

R = TypeVar("R")


def reuse_unchanged(previous: Sequence[R], current: Sequence[R], key: Callable[[R], Hashable]) -> tuple[R, ...]:
    """``current`` with each row equal to the previous poll's row of its key replaced by that row."""
    if not previous:
        return tuple(current)
    before = {key(r): r for r in previous}
    shared = []
    for row in current:
        old = before.get(key(row))
        shared.append(old if old is not None and (old is row or old == row) else row)
    return tuple(shared)
