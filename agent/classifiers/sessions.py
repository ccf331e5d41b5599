"""Sessions: idle transactions, long statements, lock waits.

Sessions are named by pid, user, application and queryid; their statement by
the normalized pg_stat_statements text (``$1`` for literals), never by
pg_stat_activity's raw text, which carries the literals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pgradar.agent.model.activity import SessionsSnapshot, SessionStat, SettingsSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity, human_seconds, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds

MAX_LISTED = 10  # sessions named in one finding's evidence
STATEMENT_CHARS = 300


def _sessions(obs: Observation) -> SessionsSnapshot | None:
    snapshot = obs.snapshots.sessions
    return snapshot if isinstance(snapshot, SessionsSnapshot) else None


def tiered(value: float, warning: float, critical: float) -> Severity | None:
    if value >= critical:
        return Severity.CRITICAL
    if value >= warning:
        return Severity.WARNING
    return None


def statement_of(obs: Observation, s: SessionStat) -> str | None:
    """The normalized text of a session's statement, when pg_stat_statements knows its queryid."""
    if s.queryid is None:
        return None
    text = obs.statement_texts.get((s.dbid, s.queryid))
    return text[:STATEMENT_CHARS] if text else None


def describe(obs: Observation, s: SessionStat) -> dict[str, Any]:
    return {
        "pid": s.pid,
        "user": s.username,
        "application": s.application,
        "client_addr": s.client_addr,
        "state": s.state,
        "queryid": str(s.queryid) if s.queryid is not None else None,
        "statement": statement_of(obs, s),
        "xact_seconds": s.xact_seconds,
        "query_seconds": s.query_seconds,
        "state_seconds": s.state_seconds,
    }


def as_setting(seconds: float) -> str:
    """A time as a setting value PostgreSQL reads ('300s')."""
    return f"{round(seconds)}s"


def _by_key(rows: Iterable[SessionStat], key: Any) -> dict[Any, list[SessionStat]]:
    groups: dict[Any, list[SessionStat]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def _timeout_setting(obs: Observation) -> float:
    settings = obs.snapshots.settings
    return settings.settings.idle_in_transaction_session_timeout_s if isinstance(settings, SettingsSnapshot) else 0.0


def idle_in_transaction(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Sessions idle inside a transaction for at least the warning time, one finding per database.

    They hold their locks and pin the xmin horizon, so vacuum cannot remove
    rows dead since they began. Evidence: how many, the longest idle time,
    and the sessions (pid, user, application, queryid of their last statement).
    """
    snapshot = _sessions(obs)
    if snapshot is None:
        return
    idle = [
        s
        for s in snapshot.sessions
        if s.idle_in_transaction and (s.state_seconds or 0.0) >= t.idle_in_transaction_warning_s
    ]
    timeout = _timeout_setting(obs)
    for database, rows in sorted(_by_key(idle, lambda s: s.database).items()):
        rows.sort(key=lambda s: -(s.state_seconds or 0.0))
        worst = rows[0]
        longest = worst.state_seconds or 0.0
        severity = tiered(longest, t.idle_in_transaction_warning_s, t.idle_in_transaction_critical_s)
        assert severity is not None
        limit = as_setting(t.idle_in_transaction_critical_s)
        setting = (
            f"idle_in_transaction_session_timeout is {human_seconds(timeout)} on the server"
            if timeout
            else "set idle_in_transaction_session_timeout so the server ends them: "
            f"ALTER DATABASE {quote_ident(database)} SET idle_in_transaction_session_timeout = '{limit}';"
        )
        yield Finding(
            Kind.IDLE_IN_TRANSACTION,
            severity,
            obs.target,
            f"{len(rows)} session(s) in {database} idle in transaction, the longest for {human_seconds(longest)} "
            f"(pid {worst.pid}, user {worst.username}, application {worst.application or '-'})",
            f"SELECT pg_terminate_backend({worst.pid}); -- then fix the application that leaves transactions "
            f"open; {setting}",
            {
                "sessions": len(rows),
                "longest_seconds": longest,
                "pids": [s.pid for s in rows[:MAX_LISTED]],
                "idle_in_transaction_session_timeout_s": timeout,
                "oldest": describe(obs, worst),
            },
            database=database,
        )


def long_running_query(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Statements active for at least the warning time, one finding per database and queryid.

    A statement blocked by a lock is lock_contention's, not this rule's: it
    waits rather than runs, and the fix is the blocker.

    Evidence: the sessions running it (pid, user, application, wait event),
    the longest run time, and the statement's normalized text when
    pg_stat_statements knows its queryid (14+, compute_query_id on).
    """
    snapshot = _sessions(obs)
    if snapshot is None:
        return
    running = [
        s
        for s in snapshot.sessions
        if s.state == "active" and not s.blocked and (s.query_seconds or 0.0) >= t.long_query_warning_s
    ]
    for (database, queryid), rows in sorted(
        _by_key(running, lambda s: (s.database, s.queryid)).items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
    ):
        rows.sort(key=lambda s: -(s.query_seconds or 0.0))
        worst = rows[0]
        longest = worst.query_seconds or 0.0
        severity = tiered(longest, t.long_query_warning_s, t.long_query_critical_s)
        assert severity is not None
        what = f"queryid {queryid}" if queryid is not None else "a statement"
        yield Finding(
            Kind.LONG_RUNNING_QUERY,
            severity,
            obs.target,
            f"{what} in {database} has run for {human_seconds(longest)} (pid {worst.pid}, user {worst.username}"
            + (f", waiting on {worst.wait_event_type}/{worst.wait_event}" if worst.wait_event_type else "")
            + ")",
            f"SELECT pg_cancel_backend({worst.pid}); -- if it should not run this long; a limit for its role: "
            f"ALTER ROLE {quote_ident(worst.username)} SET statement_timeout = "
            f"'{as_setting(t.long_query_critical_s)}';",
            {
                "sessions": len(rows),
                "longest_seconds": longest,
                "pids": [s.pid for s in rows[:MAX_LISTED]],
                "wait_event_type": worst.wait_event_type or None,
                "wait_event": worst.wait_event or None,
                "running": describe(obs, worst),
            },
            database=database,
            queryid=str(queryid) if queryid is not None else None,
        )


def root_blockers(sessions: Sequence[SessionStat], blocked: Iterable[SessionStat]) -> list[int]:
    """The pids at the head of the wait chains: blocking others and not blocked themselves."""
    by_pid = {s.pid: s for s in sessions}
    roots: list[int] = []
    for waiter in blocked:
        seen: set[int] = set()
        stack = list(waiter.blocked_by)
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            holder = by_pid.get(pid)
            if holder is not None and holder.blocked_by:
                stack.extend(holder.blocked_by)
            elif pid not in roots:
                roots.append(pid)
    return sorted(roots)


def lock_contention(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Sessions blocked by others' locks for at least the warning time, per database and relation.

    Evidence: the blocked pids and their longest wait, the blocking pids, and
    the session at the head of the chain (its state, transaction age, queryid
    and normalized statement): the one to end if it should not hold the lock.
    The relation is the one the blocked sessions wait on, where the server
    tells it (a row lock wait names its table through the tuple lock).
    """
    snapshot = _sessions(obs)
    if snapshot is None:
        return
    waiting = [s for s in snapshot.sessions if s.blocked and (s.query_seconds or 0.0) >= t.lock_wait_warning_s]

    def key(s: SessionStat) -> tuple[str, str, str]:
        name = snapshot.relation(s.dbid, s.lock_relid)
        return (s.database, name.schema if name else "", name.relation if name else "")

    for (database, schema, relation), rows in sorted(_by_key(waiting, key).items()):
        rows.sort(key=lambda s: -(s.query_seconds or 0.0))
        longest = rows[0].query_seconds or 0.0
        severity = tiered(longest, t.lock_wait_warning_s, t.lock_wait_critical_s)
        assert severity is not None
        roots = root_blockers(snapshot.sessions, rows)
        head = next((s for s in snapshot.sessions if roots and s.pid == roots[0]), None)
        on = f" on {qualified(schema, relation)}" if relation else ""
        blocker = f"pid {roots[0]}" if roots else "another session"
        if head is not None:
            blocker += (
                f" ({head.state}, user {head.username}"
                + (f", queryid {head.queryid}" if head.queryid is not None else "")
                + ")"
            )
        yield Finding(
            Kind.LOCK_CONTENTION,
            severity,
            obs.target,
            f"{len(rows)} session(s) in {database} blocked{on} for up to {human_seconds(longest)} by {blocker}",
            (
                f"SELECT pg_terminate_backend({roots[0]}); -- the session holding the lock, if it should not hold it"
                if roots
                else "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity; -- find the holder"
            )
            + "; lock_timeout keeps waiters from queueing behind it",
            {
                "blocked_sessions": len(rows),
                "longest_wait_seconds": longest,
                "blocked_pids": [s.pid for s in rows[:MAX_LISTED]],
                "blocking_pids": sorted({p for s in rows for p in s.blocked_by})[:MAX_LISTED],
                "root_blocking_pids": roots[:MAX_LISTED],
                "relid": rows[0].lock_relid,
                "blocker": describe(obs, head) if head is not None else None,
            },
            database=database,
            schema=schema or None,
            relation=relation or None,
        )


CLASSIFIERS = (idle_in_transaction, long_running_query, lock_contention)
