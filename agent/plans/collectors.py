"""The two collectors that read plans: auto_explain's log and EXPLAIN ANALYZE on a standby.

They sit with the plan code rather than in ``collect`` because they run it
(the log parser, the analyze loop); the registry schedules them like any other.
"""

from __future__ import annotations

from typing import Protocol

from pgradar.agent.collect.collectors import CollectContext, CollectorUnavailable
from pgradar.agent.collect.db import DatabaseError
from pgradar.agent.model.plans import AnalyzeSnapshot, AutoExplainSnapshot
from pgradar.agent.plans.analyze import AnalyzeContext, NotStandby, analyze_statements
from pgradar.agent.plans.autoexplain import LogTail


class LogContext(CollectContext, Protocol):
    auto_explain_log: LogTail | None  # the target's server log, when the user named one


def collect_auto_explain(ctx: LogContext) -> AutoExplainSnapshot:
    """New auto_explain plans from the server log (targets[i].auto_explain_log); empty when none is set."""
    tail = ctx.auto_explain_log
    if tail is None:
        return AutoExplainSnapshot(ctx.now, None, ())
    try:
        read = tail.read(ctx.now)
    except OSError as exc:
        raise DatabaseError(f"cannot read the auto_explain log {tail.path}: {exc.strerror or exc}") from None
    return AutoExplainSnapshot(ctx.now, tail.path, tail.plans, read, tail.deadlocks, tail.timeouts)


ANALYZE_ON_PRIMARY = (
    "explain_analyze is on for this target, but it is a primary: ignored, nothing is run "
    "(EXPLAIN ANALYZE executes the statement, so pgradar runs it only on a standby)"
)
ANALYZE_ON_PRIMARY_FIX = "set explain_analyze on the standby targets only"


def collect_explain_analyze(ctx: AnalyzeContext) -> AnalyzeSnapshot:
    """EXPLAIN ANALYZE of the top statements, only with targets[i].explain_analyze on and on a standby.

    Off (the default): an empty snapshot, no query at all. On a primary the
    collector is switched off with a message the runtime logs once; it is
    asked again each interval, so a demoted server starts.
    """
    if not ctx.explain_analyze:
        return AnalyzeSnapshot(ctx.now, False, ())
    if not ctx.server.in_recovery:
        raise CollectorUnavailable(ANALYZE_ON_PRIMARY, ANALYZE_ON_PRIMARY_FIX)
    try:
        return analyze_statements(ctx)
    except NotStandby:
        raise CollectorUnavailable(ANALYZE_ON_PRIMARY, ANALYZE_ON_PRIMARY_FIX) from None
