"""Deadlocks: pg_stat_database's counter, and the reports in the server log (DESIGN 3.2).

The counter says that and where (which database); only the server log says
which statements and relations took part, so the log evidence is added when
a target reads its log (``auto_explain_log``, ``agent.plans.autoexplain``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pgradar.agent.model.activity import DatabaseSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity, human_seconds
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import AutoExplainSnapshot, DeadlockReport
from pgradar.agent.model.thresholds import Thresholds

REPORTS_IN_EVIDENCE = 3


def _base(history: Sequence[DatabaseSnapshot], window_s: float) -> DatabaseSnapshot:
    """The newest kept snapshot at least ``window_s`` before the latest; else the oldest kept."""
    latest = history[-1]
    older = [s for s in history[:-1] if (latest.taken_at - s.taken_at).total_seconds() >= window_s]
    return older[-1] if older else history[0]


def deadlocks(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """Deadlocks counted in a database during the window.

    Rule: pg_stat_database.deadlocks of a database grew between the newest
    kept database snapshot at least ``deadlocks_window_s`` old (or the
    oldest kept one, when none is that old) and the latest: warning, and
    critical from ``deadlocks_critical`` in the window. A counter that went
    back (statistics reset) counts from zero. The server counts a deadlock
    when the victim's session flushes its statistics (at the latest when it
    ends), so it can show a poll late; the window keeps it in view that
    long. One pass of ``check`` (no ``--window``, no ``--baseline``) counts
    every deadlock since the database's ``stats_reset`` (or the server
    start), as the statement rules judge counters since their reset, and
    says since when (``window_since``, ``window_source``); with
    ``--baseline`` the growth since the baseline.
    Evidence: the count and the window; with the server log read, the
    latest reports of that database in the window: each process's
    statement (literals blanked), the relations and the lock waits.
    Fix: take locks in one order everywhere (``SELECT ... FOR UPDATE`` of
    the rows in a fixed order, e.g. ``ORDER BY id``, before updating them),
    and keep transactions short.
    """
    history: Sequence[DatabaseSnapshot] = obs.history.database
    if len(history) < 2:
        return
    latest = history[-1]
    base = _base(history, t.deadlocks_window_s)
    before = {s.database: s for s in base.databases}
    log: AutoExplainSnapshot | None = obs.snapshots.auto_explain
    reports: tuple[DeadlockReport, ...] = log.deadlocks if log is not None else ()
    for now in latest.databases:
        prev = before.get(now.database)
        if prev is None:
            continue
        reset = now.deadlocks < prev.deadlocks or now.stats_reset != prev.stats_reset
        count = now.deadlocks if reset else now.deadlocks - prev.deadlocks
        if count <= 0:
            continue
        since = prev.deadlocks_since or base.taken_at
        seconds = (latest.taken_at - since).total_seconds()
        source = (
            "window"
            if prev.deadlocks_since is None
            else ("stats_reset" if prev.deadlocks_since == now.stats_reset else "server start")
        )
        seen = [r for r in reports if r.database in (now.database, None) and r.seen_at >= since]
        seen = seen[-REPORTS_IN_EVIDENCE:]
        relations = sorted({rel for r in seen for rel in r.relations})
        on = f" on {', '.join(relations)}" if relations else ""
        statements = [s for r in seen for s in r.statements]
        yield Finding(
            Kind.DEADLOCKS,
            Severity.CRITICAL if count >= t.deadlocks_critical else Severity.WARNING,
            obs.target,
            summary=(
                f"{count} deadlock{'s' if count != 1 else ''} in database {now.database} in the last "
                f"{human_seconds(seconds)}{on}"
                + ("" if seen else " (statements: read the server log, or set auto_explain_log)")
            ),
            recommendation=(
                "Take row locks in one order in every transaction that touches these rows: "
                "SELECT ... FROM <table> WHERE id = ANY($1) ORDER BY id FOR UPDATE; first, then "
                "update them; keep those transactions short (no user or network wait inside), "
                "and retry the victim's transaction (SQLSTATE 40P01)"
            ),
            evidence={
                "deadlocks": count,
                "window_seconds": round(seconds, 1),
                "window_since": since.isoformat(timespec="seconds"),
                "window_source": source,
                "stats_reset_in_window": reset,
                "relations": relations,
                "statements": statements[: 2 * REPORTS_IN_EVIDENCE],
                "reports": [r.to_json() for r in seen],
                "evidence_from": "pg_stat_database.deadlocks" + (" and the server log" if seen else ""),
            },
            database=now.database,
        )


CLASSIFIERS = (deadlocks,)
