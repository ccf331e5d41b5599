"""The plans collector: generic plans of the costliest statements, never executed, with index advice.

Only plain reads are planned (``sqlshape.is_plain_read``), and UPDATE or
DELETE through the read of the same rows, inside a read-only transaction
that is rolled back, with the statement's own search path. Plans are cached
across cycles and planned again when they age or an index changes; each
cycle also carries the plan-shape history (``shapes``) forward.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from pgradar.agent import sqlshape
from pgradar.agent.collect.db import DatabaseError, QueryFailed, Session
from pgradar.agent.model.catalog import IndexesSnapshot
from pgradar.agent.model.findings import qualified
from pgradar.agent.model.plans import IndexAdvice, PartitionedUse, PlanIndex, PlansSnapshot, SeqScan, StatementPlan
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.thresholds import DEFAULT as DEFAULT_THRESHOLDS
from pgradar.agent.plans import advisor, planner
from pgradar.agent.plans.chooser import PlanContext, candidates, due, within_budget
from pgradar.agent.plans.shapes import count, index_mark, next_shapes, statement_counters
from pgradar.agent.plans.walker import all_pruned, walk


def plan_statement(
    session: Session,
    server: ServerInfo,
    text: str,
    username: str,
    *,
    database: str,
    dbid: int,
    queryid: int,
    now: datetime,
    advise: bool = True,
    max_share: float = DEFAULT_THRESHOLDS.index_advice_max_share,
) -> StatementPlan:
    """Plan one statement in ``session`` (connected to its database); errors become ``skipped``.

    Reads and UPDATE/DELETE (``sqlshape.is_plannable``) are planned; a
    write through the read of the same rows (``sqlshape.equivalent_read``:
    EXPLAIN of the write itself needs the write privilege), so nothing that
    writes is ever sent; everything is rolled back. Before 16
    a plan whose partitions were all pruned at executor start is planned
    again without pruning, for the scans the advice needs.
    """
    base = StatementPlan(database, dbid, queryid, username, now, None)
    if not sqlshape.is_plannable(text):
        return replace(base, skipped="not a plain SELECT, UPDATE or DELETE: never planned")
    uses = sqlshape.table_uses(text)
    if not sqlshape.is_plain_read(text):
        read = sqlshape.equivalent_read(text)
        if read is None:
            return replace(base, skipped="a write whose WHERE could not be read: never planned")
        text = read
    try:
        with session.rolled_back():
            session.dicts(planner.query("search_path", server), {"path": planner.search_path_for(username)})
            plan = planner.explain(session, server, text)
            summary, pruning = walk(plan), True
            if not server.has_generic_plan and all_pruned(plan):
                pruning = False
                summary = replace(summary, seq_scans=walk(planner.explain(session, server, text, pruning)).seq_scans)
            if not advisor.wants_first_rows(text):
                summary = replace(summary, seq_scans=tuple(replace(s, limited=False) for s in summary.seq_scans))
            advice: list[IndexAdvice] = []
            if advise and any(s.filter or s.limited for s in summary.seq_scans):
                advice = advisor.advise(session, server, summary, uses, max_share)
                hypopg = planner.hypopg_schema(session, server) if advice else None
                if hypopg is not None:
                    advice = [advisor.verify(session, server, text, summary, a, hypopg, pruning) for a in advice]
                    advice = [advisor.cover(session, server, text, summary, a, hypopg, pruning) for a in advice]
            scans = tuple(_with_size(session, server, s) for s in summary.seq_scans)
            summary = replace(summary, seq_scans=scans)
            partitioned = _partitioned(session, server, uses or ())
    except QueryFailed as exc:
        return replace(base, skipped=f"planning failed: {exc}", parsed=uses is not None)
    return replace(base, summary=summary, advice=tuple(advice), parsed=uses is not None, partitioned=partitioned)


def _partitioned(session: Session, server: ServerInfo, uses: Sequence[sqlshape.TableUse]) -> tuple[PartitionedUse, ...]:
    """The partitioned tables among the statement's tables, with their keys and leaf partitions."""
    found: list[PartitionedUse] = []
    for use in uses:
        rel = planner.relation(session, server, use.schema, use.table)
        if rel is None or rel["relkind"] != "p":
            continue
        name = qualified(rel["schema"], rel["relation"])
        rows = session.dicts(planner.query("partitions", server), {"name": name})
        if not rows:
            continue
        keys = tuple(rows[0]["key_columns"] or ())
        compared = set(use.equality) | set(use.range)
        found.append(
            PartitionedUse(
                rel["schema"],
                rel["relation"],
                keys,
                str(rows[0]["key_definition"]),
                tuple(rows[0]["leaves"] or ()),
                any(k in compared for k in keys if k),
                float(rel["reltuples"]),
            )
        )
    return tuple(found)


def _with_size(session: Session, server: ServerInfo, scan: SeqScan) -> SeqScan:
    rel = planner.relation(session, server, scan.schema, scan.relation)
    return replace(scan, reltuples=float(rel["reltuples"]) if rel else None)


def _with_definitions(
    used: tuple[PlanIndex, ...], database: str, indexes: IndexesSnapshot | None
) -> tuple[PlanIndex, ...]:
    """The indexes a plan reads, with their definitions from the indexes snapshot (to recreate one dropped)."""
    if indexes is None:
        return used
    known = {(i.schema, i.index): i.definition for i in indexes.indexes if i.database == database}
    return tuple(replace(u, definition=known.get((u.schema or "public", u.index), u.definition)) for u in used)


def collect_plans(ctx: PlanContext) -> PlansSnapshot:
    """Plan the top ``explain_top_statements`` statements, within ``explain_budget_s`` per cycle.

    Plans are cached by (database, queryid) in the previous snapshot and
    planned again after ``explain_replan_s``, or at once when an index was
    created, dropped or became valid (so a fix shows on the next pass); a statement that falls out of
    the top N is forgotten. Only statements of the databases the target
    watches are planned. What the budget leaves over waits for the next
    cycle (``budget_exhausted``). Each cycle also counts what every kept
    statement did under its current plan shape (``PlanShape``), and keeps
    the previous distinct shape, for ``plan_regression``.
    """
    started = time.monotonic()
    t = ctx.thresholds
    history = ctx.kept()
    latest = history.latest
    previous, indexes, statements = latest.plans, latest.indexes, latest.statements
    mark = index_mark(indexes)
    counters = statement_counters(statements)
    cache = {(p.dbid, p.queryid): p for p in previous.plans} if previous else {}
    top = candidates(
        history.statements, ctx.statement_texts, databases=ctx.databases, limit=int(t.explain_top_statements)
    )
    exhausted = False
    planned: set[tuple[int, int]] = set()
    for c in due(top, cache, ctx.now, t.explain_replan_s, mark):
        if not within_budget(started, t.explain_budget_s):
            exhausted = True
            break
        key = (c.dbid, c.queryid)
        try:
            session = ctx.session(c.database)
        except DatabaseError as exc:
            plan = StatementPlan(
                c.database, c.dbid, c.queryid, c.username, ctx.now, None, skipped=f"cannot connect: {exc}"
            )
        else:
            plan = plan_statement(
                session,
                ctx.server,
                c.text,
                c.username,
                database=c.database,
                dbid=c.dbid,
                queryid=c.queryid,
                now=ctx.now,
                max_share=t.index_advice_max_share,
            )
        old = cache.get(key)
        used = _with_definitions(plan.summary.indexes, c.database, indexes) if plan.summary else ()
        current, prior = next_shapes(
            old.current_shape if old else None,
            old.previous_shape if old else None,
            plan.summary,
            used,
            counters.get(key),
            ctx.now,
        )
        cache[key] = replace(plan, index_mark=mark, current_shape=current, previous_shape=prior)
        planned.add(key)
    wanted = [(c.dbid, c.queryid) for c in top]
    if planned:
        advisor.verify_merged(ctx, cache)
    for key in wanted:
        kept = cache.get(key)
        if kept is not None and key not in planned and kept.current_shape is not None:
            cache[key] = replace(kept, current_shape=count(kept.current_shape, counters.get(key)))
    plans = tuple(cache[k] for k in wanted if k in cache)
    return PlansSnapshot(ctx.now, plans, exhausted, time.monotonic() - started, mark)
