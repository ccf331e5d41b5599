"""`pgradar` with a few stand-in classifiers, for the dashboards and alerts end-to-end test.

The classifier set of this branch is empty (the classifiers arrive with the
classification and replication/pools work), so nothing would fill
``pgradar_problem``. These rules are deliberately simple but honest: they read
the real snapshots and report what is really there. Everything after them
(active problems, the exporter, Prometheus, the rules, the panels) is the real
thing. Once the real classifiers have landed, the test can run the plain CLI.

Run as ``python stand_in_agent.py run --dsn ...`` (same arguments as ``pgradar``).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator

from pgradar.agent import target
from pgradar.agent.classifiers import classify
from pgradar.agent.findings import Finding, qualified
from pgradar.agent.observation import Observation
from pgradar.agent.thresholds import Thresholds


def invalid_or_unused_indexes(obs: Observation, thresholds: Thresholds) -> Iterator[Finding]:
    """Invalid indexes (critical); valid, non-unique indexes never scanned (warning)."""
    snapshot = obs.latest("indexes")
    for i in snapshot.indexes if snapshot else ():
        where = {"database": i.database, "schema": i.schema, "relation": i.relation, "index": i.index}
        name = qualified(i.schema, i.index)
        if not i.is_valid:
            yield Finding("invalid_index", "critical", obs.target, f"index {name} is invalid",
                          f"DROP INDEX CONCURRENTLY {name};", {"is_valid": False}, **where)
        elif i.idx_scan == 0 and not (i.is_unique or i.is_primary):
            yield Finding("unused_index", "warning", obs.target, f"index {name} is never scanned",
                          f"DROP INDEX CONCURRENTLY {name};", {"idx_scan": 0}, **where)


def duplicate_indexes(obs: Observation, thresholds: Thresholds) -> Iterator[Finding]:
    """A valid index with the same definition (name aside) as another one of the same table."""
    snapshot = obs.latest("indexes")
    seen: dict[tuple[str, int, str], str] = {}
    for i in sorted(snapshot.indexes if snapshot else (), key=lambda i: i.index):
        shape = re.sub(r"INDEX \S+ ON", "INDEX ON", i.definition)
        key = (i.database, i.relid, shape)
        if i.is_valid and key in seen:
            yield Finding("duplicate_index", "warning", obs.target, f"{i.index} duplicates {seen[key]}",
                          f"DROP INDEX CONCURRENTLY {qualified(i.schema, i.index)};", {"same_as": seen[key]},
                          database=i.database, schema=i.schema, relation=i.relation, index=i.index)
        seen.setdefault(key, i.index)


def connections(obs: Observation, thresholds: Thresholds) -> Iterator[Finding]:
    """Server connections (no pool) above the warning share of the usable limit."""
    activity, settings = obs.latest("activity"), obs.latest("settings")
    if activity is None or settings is None:
        return
    limit = settings.settings.max_connections - settings.settings.reserved_connections
    if activity.total_sessions > thresholds.connections_warning_ratio * limit:
        yield Finding("pool_saturation", "warning", obs.target, f"{activity.total_sessions} of {limit} connections",
                      "raise max_connections or pool the clients", {"sessions": activity.total_sessions})


STAND_INS = (invalid_or_unused_indexes, duplicate_indexes, connections)

if __name__ == "__main__":
    target.classify = functools.partial(classify, classifiers=STAND_INS)
    from pgradar.agent.cli import main

    sys.exit(main())
