"""Which candidate indexes of one table one index serves (DESIGN 3.2, one cause, one fix); pure.

An index serves a candidate when it leads with the candidate's columns, the
candidate's equality columns in any order (``sqlshape.covered_by``). The
candidates of a table are taken widest first: each is served by a kept one
if it can be, else kept. Where a candidate of equality columns only (a
foreign key) would be served if a kept index put its equality columns in
another order, the kept index is reordered, provided everything it already
serves is still served: equality columns may come in any order for the
statements that compare them all. A candidate marked ``alone`` (hypopg
found the merged index does not serve its statement) is merged only into
an index that leads with its very columns, in its order, and holds its
INCLUDE columns: building it beside that one would build what
``duplicate_index`` reports.

Used twice: by the plans collector, to verify with hypopg that the merged
index serves each statement, and by ``classifiers.onefix``, to recommend each
index once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pgradar.agent import sqlshape


@dataclass(slots=True)
class Candidate:
    columns: tuple[str, ...]
    equality: int
    include: tuple[str, ...] = ()
    alone: bool = False
    served_by: Candidate | None = None
    serves: list[Candidate] = field(default_factory=list)


def serves(index: Sequence[str], candidate: Candidate) -> bool:
    """``index`` leads with the candidate's columns (its equality columns in any order)."""
    return sqlshape.covered_by(candidate.columns, [list(index)], candidate.equality)


def reordered(kept: Candidate, candidate: Candidate) -> tuple[str, ...] | None:
    """``kept``'s columns with ``candidate``'s (equality only) first, if that still serves all it serves."""
    if candidate.equality != len(candidate.columns):
        return None
    head = kept.columns[: kept.equality]
    if not set(candidate.columns) <= set(head):
        return None
    columns = (*candidate.columns, *(c for c in head if c not in candidate.columns), *kept.columns[kept.equality :])
    if all(serves(columns, other) for other in (kept, *kept.serves)):
        return columns
    return None


def same_lead(kept: Candidate, candidate: Candidate) -> bool:
    """``kept`` leads with the candidate's columns in its order and holds its INCLUDE columns."""
    n = len(candidate.columns)
    return kept.columns[:n] == candidate.columns and set(candidate.include) <= {*kept.columns, *kept.include}


def merge_group(ranked: Sequence[Candidate]) -> None:
    """Set ``served_by`` / ``serves`` (and reorder kept columns) for one table's candidates, best first."""
    kept: list[Candidate] = []
    for c in ranked:
        fits = same_lead if c.alone else (lambda k, c: serves(k.columns, c))
        owner = next((k for k in kept if fits(k, c)), None)
        if owner is None and not c.alone:
            for k in kept:
                columns = reordered(k, c)
                if columns is not None:
                    k.columns, owner = columns, k
                    break
        if owner is None:
            kept.append(c)
        else:
            c.served_by = owner
            owner.serves.append(c)
