"""Statements cancelled by statement_timeout: the worst statements pg_stat_statements never sees (DESIGN 3.2).

pg_stat_statements records a statement at executor end, so one cancelled by
``statement_timeout`` leaves no trace there, however often it runs. The
server log has each cancellation (``agent.plans.autoexplain`` reads it when
a target names its log); without a log this kind is not seen, and ``check``
says so.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pgradar.agent.classifiers.plans import index_candidate, worth_recommending
from pgradar.agent.model.activity import SettingsSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity, evidence_text, human_seconds
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import AutoExplainSnapshot, PlansSnapshot, StatementPlan, TimeoutCancel, literal_free
from pgradar.agent.model.thresholds import Thresholds

STATEMENTS_IN_EVIDENCE = 5


def fingerprint(statement: str) -> str:
    """The text's fingerprint, the finding's object when no queryid has the same text: ``text:`` and 16 hex."""
    return "text:" + hashlib.sha256(literal_free(statement).encode()).hexdigest()[:16]


def queryids_by_text(texts: Mapping[tuple[int, int], str]) -> dict[str, tuple[int, int]]:
    """Each normalized statement text, literals blanked, with one (dbid, queryid) that has it."""
    out: dict[str, tuple[int, int]] = {}
    for key, text in sorted(texts.items()):
        out.setdefault(literal_free(text), key)
    return out


def timeout_in_force(settings: SettingsSnapshot | None) -> str | None:
    """The server's statement_timeout as pg_settings says it (a role or database may set its own)."""
    if settings is None:
        return None
    for name, value, unit in settings.settings.raw:
        if name == "statement_timeout":
            return f"{value}{unit}" if value != "0" else "0 (off)"
    return None


def _plan_for(plans: PlansSnapshot | None, key: tuple[int, int] | None) -> StatementPlan | None:
    if plans is None or key is None:
        return None
    return next((p for p in plans.plans if (p.dbid, p.queryid) == key and p.summary is not None), None)


def statement_timeout(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """Statements the server cancelled for statement_timeout in the window, one finding per statement.

    Rule: the server log read for this target (``auto_explain_log``) has at
    least ``statement_timeout_min_cancels`` cancellations (``canceling
    statement due to statement timeout``) of one statement text (literals
    blanked) seen in the last ``statement_timeout_window_s`` (a one-pass
    ``check`` reads the log's latest part: those). Warning; critical from
    ``statement_timeout_critical`` in the window. The object is the
    database and the queryid whose normalized text is the same (the
    statement also finished sometimes), else the text's fingerprint.
    Evidence: the count, the roles and applications where the log says
    them, the server's statement_timeout, the text with literals blanked;
    where the statement has a generic plan (its queryid was planned), its
    sequential scans and the index that serves them, merged with every
    other index advice (``onefix``).
    Fix: the index, or a rewrite that reads less; or a timeout that suits
    the statement (``SET LOCAL statement_timeout``) where the work is
    expected to be long.
    """
    log: AutoExplainSnapshot | None = obs.snapshots.auto_explain
    if log is None or log.path is None or not log.timeouts:
        return
    since = obs.now - timedelta(seconds=t.statement_timeout_window_s)
    groups: dict[tuple[str | None, str], list[TimeoutCancel]] = defaultdict(list)
    for c in log.timeouts:
        if c.seen_at >= since and c.statement:
            groups[(c.database, literal_free(c.statement))].append(c)
    known = queryids_by_text(obs.statement_texts)
    names = {d.dbid: d.database for d in obs.statement_intervals[-1].deltas} if obs.statement_intervals else {}
    timeout = timeout_in_force(obs.snapshots.settings)
    plans: PlansSnapshot | None = obs.snapshots.plans
    for (database, text), cancels in groups.items():
        if len(cancels) < t.statement_timeout_min_cancels:
            continue
        key = known.get(text)
        if key is not None and database is not None and names.get(key[0], database) != database:
            key = None  # the same text in another database
        plan = _plan_for(plans, key)
        advice = [a for a in plan.advice if worth_recommending(a, t)] if plan is not None else []
        candidates = [index_candidate(a) for a in advice]
        scans = [s.filter or f"{s.relation}, sorted" for s in plan.seq_scans if s.filter or s.limited] if plan else []
        roles = sorted({c.user for c in cancels if c.user})
        apps = sorted({c.application for c in cancels if c.application})
        where = database or (names.get(key[0]) if key is not None else None)
        who = f" by {', '.join(roles)}" if roles else ""
        evidence: dict[str, Any] = {
            "cancelled": len(cancels),
            "window_seconds": t.statement_timeout_window_s,
            "roles": roles,
            "applications": apps,
            "statement_timeout": timeout,
            "query": evidence_text(cancels[-1].statement),
            "fingerprint": fingerprint(text),
            "seq_scans": scans[:3],
            "evidence_from": "the server log" + (" and the statement's generic plan" if plan is not None else ""),
            "cancels": [c.to_json() for c in cancels[-STATEMENTS_IN_EVIDENCE:]],
        }
        if candidates:
            evidence["index_candidates"] = candidates
        fix = "\n".join(str(c["sql"]) for c in candidates)
        fix += ("\n" if fix else "") + (
            "-- the statement reads more than its timeout allows: index what it filters on (its plan: "
            "`pgradar explain --query`), or rewrite it to read less; where the work is meant to be long, "
            "give that transaction its own timeout (SET LOCAL statement_timeout = ...)"
        )
        yield Finding(
            Kind.STATEMENT_TIMEOUT,
            Severity.CRITICAL if len(cancels) >= t.statement_timeout_critical else Severity.WARNING,
            obs.target,
            summary=(
                f"{len(cancels)} call{'s' if len(cancels) != 1 else ''} of a statement cancelled by statement_timeout"
                f" ({timeout or 'unknown'}){who} in database {where or '(not in the log)'} in the last "
                f"{human_seconds(t.statement_timeout_window_s)}: {evidence_text(cancels[-1].statement)}"
            ),
            recommendation=fix,
            evidence=evidence,
            database=where,
            schema=advice[0].schema if advice else None,
            relation=advice[0].relation if advice else None,
            queryid=str(key[1]) if key is not None else fingerprint(text),
        )


CLASSIFIERS = (statement_timeout,)
