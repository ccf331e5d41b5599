"""``pgradar check`` as a gate in CI and before a deploy: which window is judged, and what counts.

The statement rules (temp_spill, low_cache_hit, n_plus_one, select_star,
non_sargable_predicate) read an interval of pg_stat_statements counters.
The long-running agent gets one from two polls. One pass of ``check`` has
one poll, so it judges the counters as they stand: everything since they
began counting. That window is said, because a rule's count threshold
(``statement_min_calls``, ``n_plus_one_min_calls``) reads the count in it:

- 17+: the oldest entry's ``stats_since`` (entries evicted or reset one by
  one start again);
- 14 to 16: ``pg_stat_statements_info.stats_reset``;
- 13: the server start (a ``pg_stat_statements_reset()`` on 13 leaves no
  trace; the window is then longer than said, and the counts smaller than
  the window suggests, which can only hide a finding, never invent one).

Rate thresholds stay rates (per call, per transaction, share of time).
Transactions per database (n_plus_one's calls per transaction) come from
the COMMIT and ROLLBACK statements pg_stat_statements counted in the window,
or from pg_stat_database where that counts more, whose counters may cover a
longer window than pg_stat_statements': they are scaled to the statement
window, assuming an even rate. With ``--baseline`` the window starts at the baseline and every
counter (statements, tables, indexes, databases) is the difference.

This module also builds the typed ``CheckResult``: findings scoped
(``--kinds``, ``--exclude-kinds``, ``--database``) and marked when accepted
(``ignore:``), on the findings' own fields; ``apply_window`` and
``identity_of`` are the only parts that touch a target's state or session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from pgradar.agent.collect import counters
from pgradar.agent.derive.baseline import (
    Identity,
    TargetBaseline,
    database_resets,
    databases_before,
    indexes_since,
    statements_before,
    tables_before,
)
from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.activity import DatabaseSnapshot
from pgradar.agent.model.catalog import IndexFirstSeen
from pgradar.agent.model.check import CheckedFinding, CheckedTarget, CheckResult, TargetStatus

# Scope and Window are the gate's words, named from here too (``gate.Scope``, ``gate.Window``).
from pgradar.agent.model.check import Scope as Scope
from pgradar.agent.model.check import Window as Window
from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, Kind, TextPolicy
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.ignores import IgnoreRule


class ScopeError(ValueError):
    """A bad --kinds/--exclude-kinds name: one line, exit 2."""


def kind_list(text: str | None, flag: str) -> tuple[Kind, ...]:
    """Comma-separated kind names, each checked against the kind list."""
    if text is None:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    kinds = [(name, Kind.named(name)) for name in names]
    unknown = [name for name, kind in kinds if kind is None]
    if unknown or not names:
        raise ScopeError(
            f"{flag}: unknown kind {', '.join(map(repr, unknown)) or repr(text)} (known: {', '.join(Kind)})"
        )
    return tuple(kind for _, kind in kinds if kind is not None)


def scope_from(kinds: str | None, exclude: str | None, database: str | None) -> Scope:
    chosen = kind_list(kinds, "--kinds") or tuple(Kind)
    dropped = set(kind_list(exclude, "--exclude-kinds"))
    left = tuple(k for k in chosen if k not in dropped)
    if not left:
        raise ScopeError("--kinds/--exclude-kinds: no kind left to judge")
    return Scope(left, database)


def cumulative_window(server: ServerInfo, snapshot: StatementsSnapshot, oldest_entry: datetime | None) -> Window:
    """Since when pg_stat_statements' counters count, on this server (see the module docstring)."""
    if oldest_entry is not None:
        return Window(oldest_entry, snapshot.taken_at, "oldest pg_stat_statements entry (stats_since)")
    if snapshot.info is not None and snapshot.info.stats_reset is not None:
        return Window(snapshot.info.stats_reset, snapshot.taken_at, "pg_stat_statements reset (stats_reset)")
    return Window(server.started_at, snapshot.taken_at, "server start")


def databases_at(current: DatabaseSnapshot, window: Window, server_started: datetime | None) -> DatabaseSnapshot:
    """pg_stat_database as estimated at the window's start, for calls per transaction over the window.

    Each database's counters count since its own reset (or the server
    start); the part that falls inside the statement window is taken in
    proportion to time. An unknown start counts everything (fewer calls per
    transaction: quieter, never noisier). Deadlocks are evidence in one pass:
    all of them since that start count, and the finding says since when.
    """
    since = window.since or current.taken_at
    rows = []
    for d in current.databases:
        start = d.stats_reset or server_started
        span = (current.taken_at - start).total_seconds() if start is not None else 0.0
        inside = min(1.0, (current.taken_at - since).total_seconds() / span) if span > 0 else 1.0
        before = 1.0 - max(0.0, inside)
        rows.append(
            replace(
                d,
                xact_commit=round(d.xact_commit * before),
                xact_rollback=round(d.xact_rollback * before),
                deadlocks=0,  # every deadlock since the database's reset (or the server start) counts
                deadlocks_since=start,
            )
        )
    return DatabaseSnapshot(since, tuple(rows))


def identity_of(runner: TargetRunner) -> Identity:
    """The current identity of one target's counters (one query; raises the session's DatabaseError)."""
    server = counters.server_identity(runner.session())
    latest = runner.state.current()
    statements = latest.statements
    return Identity(
        server.system_identifier,
        server.started_at,
        statements.info.stats_reset if statements is not None and statements.info else None,
        database_resets(latest.database),
    )


def apply_window(state: TargetState, window: Window, saved: TargetBaseline | None) -> bool:
    """Give the statement rules one interval over ``window`` (and, with a baseline, the other counters' start).

    The interval is the current counters minus the baseline's, or minus
    nothing (cumulative). Returns False when there is nothing to judge
    (pg_stat_statements not read).
    """
    with state.lock:
        latest = state.current()
        current = latest.statements
        if current is None or window.since is None:
            return False
        previous = (
            statements_before(saved, current)
            if saved is not None
            else StatementsSnapshot(window.since, (), current.info, new_texts=0)
        )
        interval = statement_deltas(previous, current)
        state.statement_intervals.append(replace(interval, started_at=window.since))
        databases = latest.database
        if databases is not None:
            start = (
                databases_before(saved, databases)
                if saved is not None
                else databases_at(databases, window, state.server.started_at if state.server else None)
            )
            state.record_before("database", start)
        if saved is not None:
            tables = latest.tables
            if tables is not None:
                state.record_before("tables", tables_before(saved, tables))
            indexes = latest.indexes
            if indexes is not None:
                state.replace_latest("indexes", lambda old: indexes_since(saved, old))
                # unused_index measures its window from the first sighting: the baseline's moment
                state.record(
                    "index_first_seen",
                    IndexFirstSeen(
                        indexes.taken_at,
                        tuple(((i.database, i.indexrelid), saved.taken_at) for i in indexes.indexes),
                        "baseline",
                    ),
                )
    return True


# --- the result ------------------------------------------------------------------------


def check_result(
    statuses: Sequence[TargetStatus],
    problems: Sequence[ActiveProblem],
    windows: Mapping[str, Window],
    scope: Scope,
    rules: Sequence[IgnoreRule],
    generated_at: datetime,
    text_policy: TextPolicy = DEFAULT_TEXT_POLICY,
) -> CheckResult:
    """The pass judged: findings in scope, each accepted or not, and the window of each server.

    A server without a window had its statements unread; a pgbouncer has none
    to read. The first rule that accepts a finding is the one named.
    """
    findings = []
    for p in problems:
        if not scope.keeps(p.finding):
            continue
        rule = next((r for r in rules if r.matches(p.finding)), None)
        findings.append(CheckedFinding(p.finding, p.first_seen, rule.describe() if rule else None))
    targets = tuple(CheckedTarget(s, None if s.is_pgbouncer else windows.get(s.name)) for s in statuses)
    return CheckResult(generated_at, targets, tuple(findings), scope, text_policy)
