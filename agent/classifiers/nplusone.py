"""N+1: a lookup by key that runs once per row of another statement, or many times per transaction.

ORMs write it (a lazy load in a loop); its cost is the round trips, whatever the rows per call
and the time of each, so the rule reads the call pattern: the child's calls against its parent's
rows in the same interval, or its calls per committed transaction. A slow child is also an index
problem, which ``seq_scan`` reports; the fix here is the batched load.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pgradar.agent.classifiers.grouped import StatementGroup, statement_groups
from pgradar.agent.model.activity import DatabaseSnapshot
from pgradar.agent.model.catalog import ForeignKeysSnapshot
from pgradar.agent.model.findings import (
    Finding,
    Kind,
    Severity,
    evidence_text,
    quote_ident,
)
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.statements import StatementDelta, StatementInterval
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.sqlshape import Lookup, batched, group_key, is_read, lookup


def latest_interval(obs: Observation) -> StatementInterval | None:
    return obs.statement_intervals[-1] if obs.statement_intervals else None


def text_of(obs: Observation, d: StatementDelta) -> str | None:
    return obs.statement_texts.get((d.dbid, d.queryid))


# --- n_plus_one --------------------------------------------------------------------------


def committed_in(obs: Observation, interval: StatementInterval) -> dict[str, float]:
    """Transactions committed per database during the interval, from pg_stat_database.

    The two database snapshots taken closest to the interval's start and
    end give the delta, scaled to the interval's length when they span a
    different time (the collectors run on their own schedules).
    """
    history: Sequence[DatabaseSnapshot] = obs.history.database
    if len(history) < 2:
        return {}

    def closest(moment: datetime, among: Sequence[DatabaseSnapshot]) -> DatabaseSnapshot:
        return min(among, key=lambda s: abs((s.taken_at - moment).total_seconds()))

    first = closest(interval.started_at, history[:-1])
    last = closest(interval.ended_at, [s for s in history if s.taken_at > first.taken_at])
    span = (last.taken_at - first.taken_at).total_seconds()
    if span <= 0:
        return {}
    scale = interval.seconds / span
    start = {s.database: s.xact_commit for s in first.databases}
    out = {}
    for s in last.databases:
        if s.database in start and s.xact_commit >= start[s.database]:
            out[s.database] = (s.xact_commit - start[s.database]) * scale
    return out


ForeignKeyLink = tuple[str, str, str]  # (referencing table, its column, referenced table)


def foreign_key_links(obs: Observation) -> dict[str, set[ForeignKeyLink]] | None:
    """Per database, every (table, column, referenced table) of its foreign keys; None when not read yet."""
    snapshot: ForeignKeysSnapshot | None = obs.snapshots.foreign_keys
    if snapshot is None:
        return None
    links: dict[str, set[ForeignKeyLink]] = {}
    for fk in snapshot.foreign_keys:
        for column in fk.columns:
            links.setdefault(fk.database, set()).add((fk.relation, column, fk.referenced_relation))
    return links


def drives(parent_tables: Sequence[str], child: Lookup, links: set[ForeignKeyLink] | None) -> bool:
    """The parent's rows can be what the child looks up, by the foreign keys between their tables.

    One-to-many (a collection): the child's key column references a table
    the parent reads (``orders.customer_id`` under a page of customers);
    many-to-one: a table the parent reads references the child's table. A
    child whose tables no foreign key touches, or a catalog not read yet,
    leaves the counts alone to decide.
    """
    if not links:
        return True
    child_tables = {table for _, table in child.tables}
    if not any(r in child_tables or ref in child_tables for r, _, ref in links):
        return True
    parents = set(parent_tables)
    return any(
        (table == r and column == c and ref in parents) or (table == ref and r in parents)
        for table, column in child.keys
        for r, c, ref in links
    )


def _batched(child: Lookup, text: str) -> str:
    """The child as one statement for all the parent's keys: its key compared with an array of them."""
    rewritten = batched(text)
    if rewritten is not None:
        return f"{rewritten};\n-- $1: the keys of the parent's rows, as one array"
    table, column = child.keys[0]
    return f"SELECT ... FROM {quote_ident(table)} WHERE {quote_ident(column)} = ANY($1); -- the parent rows' keys"


_TRANSACTION_ENDS = ("commit", "end", "rollback", "abort")
# A lookup runs at most once per row of its parent; a page counted just before the window opened can
# leave its last lookups inside it.
_WINDOW_EDGE = 1.1


def match_parents(
    children: Sequence[tuple[StatementGroup, tuple[tuple[str, str], ...], Sequence[StatementGroup]]],
) -> dict[int, StatementGroup]:
    """Each lookup's parent (by ``id`` of the lookup's group): the candidate whose rows are closest to its
    calls, and a parent's rows drive one lookup per table: of two lookups of one table that claim the
    same parent (the lazy load of ``order.customer`` and a frequent lookup of customers by id), the
    closer in count keeps it."""
    best: dict[int, StatementGroup] = {}
    for g, _, parents in children:
        if parents:
            best[id(g)] = min(parents, key=lambda p: abs(math.log(p.rows / g.calls)))
    for g, keys, _ in children:
        parent = best.get(id(g))
        tables = {table for table, _ in keys}
        for other, other_keys, _ in children:
            if (
                other is not g
                and parent is not None
                and best.get(id(other)) is parent
                and tables & {table for table, _ in other_keys}
                and abs(math.log(parent.rows / other.calls)) < abs(math.log(parent.rows / g.calls))
            ):
                del best[id(g)]
                break
    return best


def transactions_in(obs: Observation, interval: StatementInterval) -> dict[str, int]:
    """Transactions per database that ended with a COMMIT, END or ROLLBACK statement in the interval.

    pg_stat_statements counts them as they run (with track_utility, the
    default), while pg_stat_database counts a session's commits only when
    it reports, up to ten seconds after it goes idle on 15+: a window that
    ends right after a burst of autocommit statements sees few
    transactions, and every statement would look many to a transaction.
    Autocommit statements are one transaction each and end with no
    statement: where none is counted here, calls per transaction are not
    judged.
    """
    out: dict[str, int] = {}
    for g in statement_groups(obs, interval.deltas):
        key = group_key(g.text) if g.text is not None else ""
        if key.split(" ", 1)[0] in _TRANSACTION_ENDS and not key.startswith("rollback to"):
            out[g.database] = out.get(g.database, 0) + g.calls
    return out


def n_plus_one(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """The same lookup run once per row of another statement, or many times per transaction (N+1).

    ORMs write it with every lazy load (SQLAlchemy's default ``lazy="select"``,
    Django's related managers): one ``SELECT ... WHERE key = $1`` per row of
    the page that came before. Its cost is the round trips, which
    pg_stat_statements does not time, so the rule reads the call pattern,
    whatever the lookup's rows per call (a collection returns several) and
    its time (a slow one is also an index problem: the seq_scan findings
    carry that fix). A statement text (its queryids grouped) is an N+1 when,
    in the latest interval, it is a SELECT run at least
    ``n_plus_one_min_calls`` times that compares a column with one
    parameter for equality (``$1::INTEGER = orders.customer_id`` reads so
    too; a batched load with ``IN (...)`` or ``= ANY($1)`` does not), and
    either

    - it runs at least ``n_plus_one_calls_per_xact`` times per transaction
      of its database (explicit transactions, whose COMMIT or ROLLBACK
      pg_stat_statements counts, or pg_stat_database's commits where more:
      ``transactions_in``), or
    - a parent is found: another SELECT of the same database that returns
      many rows per call (at least ``n_plus_one_calls_per_xact``), this one
      called at most once per row of it (10% over: a page counted before
      the window opened) and at least once per two (an ORM's identity map
      skips rows it holds), and, where foreign keys touch the lookup's
      tables, one links the two (``drives``); a parent drives one lookup
      per table (``match_parents``).

    Both signals, or a parent linked by a foreign key: warning; one alone:
    info. A workload where each statement runs once per transaction
    (pgbench), or a frequent lookup no page of rows drives, has neither.
    Evidence: calls, calls per second, rows per call, mean
    time, calls per transaction, the parent statement, every queryid.
    Fix: one statement for the whole set (a join with the parent, or the key
    compared with an array of the parent's keys, ``= ANY($1)``: what
    SQLAlchemy's ``selectinload`` and Django's ``prefetch_related`` send).
    """
    interval = latest_interval(obs)
    if interval is None:
        return
    groups = [g for g in statement_groups(obs, interval.deltas) if g.text is not None and is_read(g.text)]
    xacts = committed_in(obs, interval)
    explicit = transactions_in(obs, interval)
    links = foreign_key_links(obs)
    children = []
    for g in groups:
        child = lookup(g.text) if g.text is not None and g.calls >= t.n_plus_one_min_calls else None
        if child is None or not child.keys:
            continue
        known = links.get(g.database, set()) if links is not None else None
        parents = [
            p
            for p in groups
            if p is not g
            and p.database == g.database
            and p.calls
            and p.rows_per_call >= t.n_plus_one_calls_per_xact
            and p.rows / 2 <= g.calls <= p.rows * _WINDOW_EDGE
            and (shape := lookup(p.text or "")) is not None
            and drives([table for _, table in shape.tables], child, known)
        ]
        children.append((g, child, known, parents))
    matched = match_parents([(g, child.keys, parents) for g, child, _, parents in children])
    for g, child, known, _ in children:
        parent = matched.get(id(g))
        ended = explicit.get(g.database, 0)  # none: autocommit, or unknown; not judged per transaction
        committed = max(ended, xacts.get(g.database) or 0) if ended else None
        per_xact = g.calls / committed if committed else None
        by_xact = per_xact is not None and per_xact >= t.n_plus_one_calls_per_xact
        if not by_xact and parent is None:
            continue
        linked = parent is not None and bool(known)
        evidence: dict[str, Any] = {
            "calls": g.calls,
            "calls_per_second": round(g.calls / interval.seconds, 2),
            "rows_per_call": round(g.rows_per_call, 3),
            "mean_exec_ms": round(g.mean_exec_ms, 4),
            "transactions_committed": round(committed) if committed is not None else None,
            "calls_per_transaction": round(per_xact, 2) if per_xact is not None else None,
            "lookup_keys": [f"{table}.{column}" for table, column in child.keys],
            "queryids": g.queryid_list,
            "query": evidence_text(g.text),
            "parent_queryid": str(parent.queryid) if parent else None,
            "parent_rows": parent.rows if parent else None,
            "parent_calls": parent.calls if parent else None,
            "parent_query": evidence_text(parent.text) if parent else None,
            "interval_seconds": round(interval.seconds, 1),
        }
        of_parent = f" once per row of statement {parent.queryid}" if parent else ""
        yield Finding(
            Kind.N_PLUS_ONE,
            Severity.WARNING if (by_xact and parent) or linked else Severity.INFO,
            obs.target,
            summary=(
                f"statement {g.queryid} ran {g.calls} times in {interval.seconds:.0f}s{of_parent}, "
                f"{g.rows_per_call:.1f} rows per call"
                + (f", {per_xact:.0f} calls per transaction" if per_xact is not None else "")
            ),
            recommendation=(
                f"{_batched(child, g.text or '')}\n"
                "-- or join it into the parent query; in the ORM, load the relation for the whole page "
                "at once (SQLAlchemy: selectinload(); Django: prefetch_related() / select_related()); "
                f"one round trip instead of {g.calls}"
            ),
            evidence=evidence,
            database=g.database,
            queryid=str(g.queryid),
        )


CLASSIFIERS = (n_plus_one,)
