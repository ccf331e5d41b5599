"""EXPLAIN ANALYZE on a standby, only where a target turns it on: actual rows for row_misestimate.

EXPLAIN ANALYZE runs the statement, so it is held to more than EXPLAIN
(DESIGN 4): the target's ``explain_analyze`` switch (off by default), a
server in recovery (asked in the same transaction, right before), and a
statement that ``sqlshape.not_executable`` clears: a plain read without
``$n`` parameters that calls no function sqlglot does not know. Each runs in
a read-only transaction that is rolled back, with the statement user's
search path, a ``statement_timeout`` no longer than what is left of
``explain_analyze_budget_s`` (nor than the session's own), and only if its
mean time in pg_stat_statements is at most ``explain_analyze_max_mean_ms``.

The plans come back as ``PlanSample`` (source
``explain_analyze``), the same samples the server log gives, so the
``row_misestimate`` rule judges both alike. The candidates are the plans
collector's (the costliest plain reads of user tables), those never run
first, then the longest ago.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from pgradar.agent import sqlshape
from pgradar.agent.collect.db import DatabaseError, QueryFailed, Session
from pgradar.agent.model.plans import AnalyzeSnapshot, Candidate, PlanSample
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.plans import planner
from pgradar.agent.plans.chooser import PlanContext, candidates
from pgradar.agent.plans.shapes import statement_counters
from pgradar.agent.plans.walker import plan_sample

SOURCE = "explain_analyze"
MIN_TIMEOUT_MS = 10  # less of the budget left than this: the rest waits for the next cycle


class NotStandby(Exception):
    """The server answered that it is not in recovery: nothing was run."""


class AnalyzeContext(PlanContext, Protocol):
    """What the collector needs from the runtime (``target._Context``): the plans collector's, and the switch."""

    explain_analyze: bool


def analyze_statement(session: Session, server: ServerInfo, c: Candidate, timeout_ms: int, now: datetime) -> PlanSample:
    """Run one statement under EXPLAIN ANALYZE in a rolled-back read-only transaction; NotStandby on a primary."""
    with session.rolled_back():
        guard = session.one(planner.query("analyze_guard", server), {"ms": timeout_ms})
        if not guard["in_recovery"]:
            raise NotStandby("the server is not in recovery")
        session.dicts(planner.query("search_path", server), {"path": planner.search_path_for(c.username)})
        document = session.with_statement(planner.query("analyze", server), c.text)[0]["QUERY PLAN"][0]
    return plan_sample(document, c.queryid, c.database, c.text, float(document.get("Execution Time", 0.0)), now, SOURCE)


def analyze_statements(ctx: AnalyzeContext) -> AnalyzeSnapshot:
    """EXPLAIN ANALYZE of the top statements that may run, within ``explain_analyze_budget_s``.

    The caller has checked the switch and the role; the role is asked again
    in each transaction (a promotion in between raises NotStandby).
    """
    started = time.monotonic()
    t = ctx.thresholds
    kept = ctx.kept()
    previous = kept.latest.explain_analyze
    history = kept.statements
    counters = statement_counters(history[-1] if history else None)
    top = candidates(history, ctx.statement_texts, databases=ctx.databases, limit=int(t.explain_top_statements))
    samples = {(s.database, s.queryid): s for s in previous.plans} if previous else {}
    # never run first, then the longest ago; the cost order otherwise
    order = sorted(
        top,
        key=lambda c: (
            samples[(c.database, c.queryid)].seen_at.timestamp()
            if (c.database, c.queryid) in samples
            else float("-inf")
        ),
    )
    skipped: list[tuple[int, str]] = []
    ran = 0
    exhausted = False
    for c in order:
        why = sqlshape.not_executable(c.text)
        counted = counters.get((c.dbid, c.queryid))
        mean = counted[2] / counted[1] if counted and counted[1] else None
        if why is None and mean is not None and mean > t.explain_analyze_max_mean_ms:
            why = f"its mean time {mean:.0f} ms is above explain_analyze_max_mean_ms"
        if why is not None:
            skipped.append((c.queryid, why))
            continue
        left_ms = (t.explain_analyze_budget_s - (time.monotonic() - started)) * 1000
        if left_ms < MIN_TIMEOUT_MS:
            exhausted = True
            break
        try:
            samples[(c.database, c.queryid)] = analyze_statement(
                ctx.session(c.database), ctx.server, c, int(left_ms), ctx.now
            )
            ran += 1
        except QueryFailed as exc:  # timed out, a recovery conflict, no privilege: this one only
            skipped.append((c.queryid, f"EXPLAIN ANALYZE failed: {exc}"))
        except DatabaseError as exc:
            skipped.append((c.queryid, f"cannot connect: {exc}"))
    wanted = {(c.database, c.queryid) for c in top}
    plans = tuple(s for k, s in samples.items() if k in wanted)
    return AnalyzeSnapshot(ctx.now, True, plans, tuple(skipped), ran, exhausted, time.monotonic() - started)
