"""Which statements the plan jobs plan or run, and when they must stop.

The generic-plan collector and EXPLAIN ANALYZE on a standby take the same
candidates: the costliest plain reads of user tables lately. Parsing is the
expensive part, so statements are ranked first and parsed only while the top
N is not full. Everything but ``PlanContext`` (what the runtime hands the
jobs) is pure.
"""

from __future__ import annotations

import time
from collections.abc import Container, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from pgradar.agent import sqlshape
from pgradar.agent.collect.db import Session
from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.plans import Candidate, StatementPlan
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.snapshots import SnapshotHistory
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.model.thresholds import Thresholds


class PlanContext(Protocol):
    """What the plans collectors need from the job runner (``runner.JobRun``)."""

    server: ServerInfo
    databases: tuple[str, ...]
    now: datetime
    statement_texts: Mapping[tuple[int, int], str]
    thresholds: Thresholds

    def session(self, database: str | None = None) -> Session: ...

    def kept(self) -> SnapshotHistory:
        """The target's kept snapshots: the statements to choose from, the last cycle's plans."""
        ...


def due(
    candidates: Sequence[Candidate],
    cache: Mapping[tuple[int, int], StatementPlan],
    now: datetime,
    replan_s: float,
    mark: str | None = None,
) -> list[Candidate]:
    """The candidates without a plan, with one older than ``replan_s``, or (given the current ``mark``)
    one made before an index changed; in the given (cost) order."""
    out = []
    for c in candidates:
        cached = cache.get((c.dbid, c.queryid))
        if (
            cached is None
            or (now - cached.planned_at).total_seconds() >= replan_s
            or (mark is not None and cached.index_mark != mark)
        ):
            out.append(c)
    return out


def within_budget(started: float, budget_s: float) -> bool:
    return time.monotonic() - started < budget_s


def worth_planning(text: str) -> bool:
    """A plain read, UPDATE or DELETE of at least one table outside the catalog.

    Other writes and utility statements are never planned. Statements that read
    only the catalog (the agent's own, monitoring tools') or no table at all
    have nothing to advise and would take the top N places on a quiet
    server. A text sqlglot cannot parse is planned (plan-only advice).
    """
    if not sqlshape.is_plannable(text):
        return False
    uses = sqlshape.table_uses(text)
    if uses is None:
        return True
    return any(u.schema not in ("pg_catalog", "information_schema") and not u.table.startswith("pg_") for u in uses)


def candidates(
    history: Sequence[StatementsSnapshot],
    texts: Mapping[tuple[int, int], str],
    *,
    databases: Container[str] | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """Top-level plain reads of user tables (``worth_planning``), costliest first over the kept snapshots.

    The cost is the execution time between the oldest and the latest kept
    snapshot (what is expensive lately), then the total since the
    statistics were reset (so a statement idle for a few polls keeps its
    place and its plan). Statements are ranked first and parsed only while
    the top ``limit`` is not full: parsing every text of a large
    pg_stat_statements each run was most of the agent's time.
    """
    if not history:
        return []
    latest = history[-1]
    recent = {d.key: d.total_exec_ms for d in statement_deltas(history[0], latest).deltas} if len(history) > 1 else {}
    rows = [
        r
        for r in latest.rows
        if r.toplevel and (r.dbid, r.queryid) in texts and (databases is None or r.database in databases)
    ]
    rows.sort(key=lambda r: (-recent.get(r.key, 0.0), -r.total_exec_ms, r.queryid))
    seen: set[tuple[int, int]] = set()
    out: list[Candidate] = []
    for r in rows:
        if limit is not None and len(out) >= limit:
            break
        key = (r.dbid, r.queryid)
        if key not in seen:
            seen.add(key)
            if worth_planning(texts[key]):
                out.append(Candidate(r.database, r.dbid, r.queryid, r.username, texts[key]))
    return out
