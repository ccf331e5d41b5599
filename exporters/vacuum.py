"""The vacuum series: who holds the xmin horizon (by kind), autovacuum workers, the most bloated relations.

Rendered from the vacuum and bloat snapshots; the holder kind is the only
label the horizon series carry (four values), and bloat is kept to the
``TOP_BLOATED`` tables and indexes so a large catalog adds a bounded number
of series.
"""

from __future__ import annotations

from typing import Protocol

from pgradar.agent.runtime.state import TargetState

TOP_BLOATED = 20


class Families(Protocol):
    def add(self, name: str, value: float | None, **labels: str) -> None: ...


def render_vacuum(f: Families, t: TargetState) -> None:
    latest = t.current()
    vacuum = latest.vacuum
    if vacuum is not None:
        ages: dict[str, tuple[float, int]] = {}
        for h in vacuum.holders:
            held = h.held_seconds if h.held_seconds is not None else h.seen_seconds
            old = ages.get(h.holder, (0.0, 0))
            ages[h.holder] = (max(old[0], held), max(old[1], h.xmin_age))
        for holder, (seconds, xids) in sorted(ages.items()):
            f.add("pgradar_xmin_horizon_age_seconds", seconds, target=t.name, holder=holder)
            f.add("pgradar_xmin_horizon_age_xids", xids, target=t.name, holder=holder)
        f.add("pgradar_autovacuum_workers_busy", sum(r.autovacuum for r in vacuum.running), target=t.name)
    bloat = latest.bloat
    if bloat is None:
        return
    tables = sorted((b for b in bloat.tables if b.wasted_bytes), key=lambda b: -(b.wasted_bytes or 0))
    for b in tables[:TOP_BLOATED]:
        e = b.estimate
        labels = {"target": t.name, "database": e.database, "schema": e.schema, "relation": e.relation}
        f.add("pgradar_table_bloat_bytes", b.wasted_bytes, **labels)
    indexes = sorted((b for b in bloat.indexes if b.wasted_bytes), key=lambda b: -(b.wasted_bytes or 0))
    for i in indexes[:TOP_BLOATED]:
        x = i.estimate
        labels = {"target": t.name, "database": x.database, "schema": x.schema, "relation": x.relation}
        f.add("pgradar_index_bloat_bytes", i.wasted_bytes, index=x.index, **labels)
