"""EXPLAIN of the costliest statements, as generic plans, never executed; and index advice.

A statement from pg_stat_statements is normalized (``$1`` for every
constant), so it is planned generically: ``EXPLAIN (GENERIC_PLAN)`` on 16+,
PREPARE + ``EXPLAIN EXECUTE name(NULL, ...)`` under
``plan_cache_mode = force_generic_plan`` before (the server infers the
parameter types). Only plain reads are planned (``sqlparse.is_plain_select``),
inside a read-only transaction that is rolled back, with the statement's
own search path. EXPLAIN never runs the statement.

For each sequential scan with a filter, the statement's structure (sqlglot)
proposes an index; where hypopg is installed in the database, the index is
created hypothetically, the statement planned again, and the cost reduction
recorded. ``walk`` and the dataclasses are pure; ``plan_statement`` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pgradar.agent import queries, sqlparse
from pgradar.agent.analysis import statement_deltas
from pgradar.agent.db import DatabaseError, QueryFailed, Session
from pgradar.agent.findings import qualified, quote_ident
from pgradar.agent.server import ServerInfo
from pgradar.agent.snapshots import IndexesSnapshot, StatementsSnapshot
from pgradar.agent.thresholds import Thresholds

# --- what a plan says (pure) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqScan:
    schema: str | None
    relation: str
    alias: str | None
    filter: str | None
    plan_rows: float
    total_cost: float
    reltuples: float | None = None  # filled in from the catalog when planned
    workers: int = 0  # a Parallel Seq Scan: its Gather's planned workers (plan_rows is then per process)


@dataclass(frozen=True, slots=True)
class PlanIndex:
    """An index a plan reads (``Index Name`` of a scan node), in its table's schema."""

    schema: str | None
    relation: str
    index: str
    definition: str | None = None  # pg_get_indexdef, from the indexes snapshot when planned


@dataclass(frozen=True, slots=True)
class PlanSummary:
    total_cost: float
    plan_rows: float
    seq_scans: tuple[SeqScan, ...]
    sorts: tuple[str, ...]  # sort keys of each Sort node
    nested_loops: int
    shape_hash: str  # node types, relations and indexes, not costs: changes when the plan does
    shape: str = ""  # the same, for a human: "Aggregate (Index Scan on public.t using t_a_idx)"
    indexes: tuple[PlanIndex, ...] = ()
    relations: tuple[tuple[str | None, str], ...] = ()  # (schema, relation) of every scan node, in plan order


def _with_workers(node: Mapping[str, Any], workers: int = 0) -> Iterator[tuple[Mapping[str, Any], int]]:
    """Every node with the planned workers of the Gather (Merge) above it (0 outside one)."""
    workers = int(node.get("Workers Planned", workers) or 0) if node.get("Node Type", "").startswith("Gather") \
        else workers
    yield node, workers
    for child in node.get("Plans", ()):
        yield from _with_workers(child, workers)


def _shape(node: Mapping[str, Any]) -> list[Any]:
    return [node.get("Node Type"), node.get("Relation Name"), node.get("Index Name"), node.get("Join Type"),
            [_shape(c) for c in node.get("Plans", ())]]


SHAPE_TEXT_MAX = 500  # characters of a plan's shape as text (evidence)


def _shape_text(node: Mapping[str, Any]) -> str:
    """A plan's shape in one line: node type, relation, index, then the children in parentheses."""
    text = str(node.get("Node Type", "?"))
    if node.get("Relation Name"):
        schema = node.get("Schema")
        text += f" on {schema}.{node['Relation Name']}" if schema else f" on {node['Relation Name']}"
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    children = [_shape_text(c) for c in node.get("Plans", ())]
    return f"{text} ({'; '.join(children)})" if children else text


def walk(explain_json: Any) -> PlanSummary:
    """The facts of an ``EXPLAIN (FORMAT JSON)`` result that the classifiers use."""
    document = json.loads(explain_json) if isinstance(explain_json, str) else explain_json
    root = document[0]["Plan"]
    scans, sorts, loops = [], [], 0
    indexes: list[PlanIndex] = []
    relations: list[tuple[str | None, str]] = []
    for node, workers in _with_workers(root):
        kind = node.get("Node Type")
        if kind == "Seq Scan":
            scans.append(SeqScan(node.get("Schema"), node.get("Relation Name", ""), node.get("Alias"),
                                 node.get("Filter"), float(node.get("Plan Rows", 0)), float(node.get("Total Cost", 0)),
                                 workers=workers if node.get("Parallel Aware") else 0))
        elif kind in ("Sort", "Incremental Sort"):
            sorts.append(", ".join(node.get("Sort Key", ())))
        elif kind == "Nested Loop":
            loops += 1
        if node.get("Relation Name"):
            relation = (node.get("Schema"), str(node["Relation Name"]))
            if relation not in relations:
                relations.append(relation)
            if node.get("Index Name"):
                used = PlanIndex(relation[0], relation[1], str(node["Index Name"]))
                if used not in indexes:
                    indexes.append(used)
    shape = hashlib.sha256(json.dumps(_shape(root)).encode()).hexdigest()[:16]
    text = _shape_text(root)
    if len(text) > SHAPE_TEXT_MAX:
        text = text[: SHAPE_TEXT_MAX - 3] + "..."
    return PlanSummary(float(root.get("Total Cost", 0)), float(root.get("Plan Rows", 0)), tuple(scans),
                       tuple(sorts), loops, shape, text, tuple(indexes), tuple(relations))


# --- index advice ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexAdvice:
    schema: str
    relation: str
    columns: tuple[str, ...]
    partitioned: bool
    reltuples: float
    verified: bool | None  # None: hypopg not available, advice unverified
    cost_before: float | None = None
    cost_after: float | None = None
    note: str = ""

    @property
    def gain(self) -> float | None:
        if self.cost_before is None or self.cost_after is None or self.cost_before <= 0:
            return None
        return 1.0 - self.cost_after / self.cost_before

    def definition(self, concurrently: bool = True) -> str:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        how = "CONCURRENTLY " if concurrently and not self.partitioned else ""
        return f"CREATE INDEX {how}ON {qualified(self.schema, self.relation)} ({cols})"


@dataclass(frozen=True, slots=True)
class PlanShape:
    """One plan shape of a statement while it was in force, and what the statement did under it.

    Each cycle the plans collector counts the statement's calls and
    execution time (pg_stat_statements, top level, summed over its users)
    for the shape it was last planned with. A plan that changes between two
    plannings is found at the second: the time in between counts for the old
    shape. If the change happened in it, the old shape's mean is overstated
    and a regression understated, never the other way round.
    """

    shape_hash: str
    shape: str
    total_cost: float
    first_seen: datetime  # the first planning that found it
    last_seen: datetime  # the latest planning that found it
    indexes: tuple[PlanIndex, ...] = ()
    relations: tuple[tuple[str | None, str], ...] = ()
    calls: int = 0
    exec_ms: float = 0.0
    recent_calls: int = 0  # the latest stretch counted (since the statements snapshot counted before)
    recent_exec_ms: float = 0.0
    counted_at: datetime | None = None  # the statements snapshot counted last (None: none yet)
    counter_calls: int = 0  # the statement's counters in that snapshot
    counter_exec_ms: float = 0.0

    @property
    def mean_exec_ms(self) -> float | None:
        return self.exec_ms / self.calls if self.calls else None

    @property
    def recent_mean_exec_ms(self) -> float | None:
        return self.recent_exec_ms / self.recent_calls if self.recent_calls else None


# (statements snapshot taken_at, calls, total_exec_ms) of one (dbid, queryid)
Counters = tuple[datetime, int, float]


def statement_counters(snapshot: StatementsSnapshot | None) -> dict[tuple[int, int], Counters]:
    """Calls and execution time per (dbid, queryid), top-level entries summed over users."""
    out: dict[tuple[int, int], Counters] = {}
    if snapshot is None:
        return out
    for r in snapshot.rows:
        if r.toplevel:
            _, calls, ms = out.get((r.dbid, r.queryid), (snapshot.taken_at, 0, 0.0))
            out[(r.dbid, r.queryid)] = (snapshot.taken_at, calls + r.calls, ms + r.total_exec_ms)
    return out


def count(shape: PlanShape, counters: Counters | None) -> PlanShape:
    """Add what the statement did since ``shape`` was last counted.

    The first sighting only sets where counting starts. Counters that went
    backwards (pg_stat_statements reset, or the entry evicted and back)
    count as they stand, as the statement deltas do.
    """
    if counters is None:
        return shape
    at, calls, exec_ms = counters
    if shape.counted_at is None:
        return replace(shape, counted_at=at, counter_calls=calls, counter_exec_ms=exec_ms)
    if at <= shape.counted_at:
        return shape
    d_calls, d_ms = calls - shape.counter_calls, exec_ms - shape.counter_exec_ms
    if d_calls < 0 or d_ms < 0:
        d_calls, d_ms = calls, exec_ms
    return replace(shape, calls=shape.calls + d_calls, exec_ms=shape.exec_ms + d_ms, recent_calls=d_calls,
                   recent_exec_ms=d_ms, counted_at=at, counter_calls=calls, counter_exec_ms=exec_ms)


def next_shapes(current: PlanShape | None, previous: PlanShape | None, summary: PlanSummary | None,
                indexes: tuple[PlanIndex, ...], counters: Counters | None,
                now: datetime) -> tuple[PlanShape | None, PlanShape | None]:
    """The (current, previous distinct) shapes after a planning found ``summary`` (None: it failed).

    The same shape again carries on counting. Another one becomes the
    current shape, counted from now, and the one it replaces (counted up to
    now) becomes the previous; a shape that comes back starts afresh, so
    what it did before is not mixed with what it does now.
    """
    counted = count(current, counters) if current is not None else None
    if summary is None:
        return counted, previous
    if counted is not None and counted.shape_hash == summary.shape_hash:
        return replace(counted, last_seen=now, total_cost=summary.total_cost,
                       indexes=indexes or counted.indexes), previous
    fresh = count(PlanShape(summary.shape_hash, summary.shape, summary.total_cost, now, now, indexes,
                            summary.relations), counters)
    return fresh, (counted if counted is not None else previous)


@dataclass(frozen=True, slots=True)
class StatementPlan:
    """One statement's generic plan, or why it has none, and its plan shapes over time."""

    database: str
    dbid: int
    queryid: int
    username: str
    planned_at: datetime
    summary: PlanSummary | None
    advice: tuple[IndexAdvice, ...] = ()
    skipped: str | None = None  # not a plain read, or planning failed: why
    parsed: bool = True  # sqlglot read the text (advice needs it)
    index_mark: str = ""  # the indexes when planned (``index_mark``): another mark means replan
    current_shape: PlanShape | None = None
    previous_shape: PlanShape | None = None  # the previous distinct shape, if the plan changed

    @property
    def seq_scans(self) -> tuple[SeqScan, ...]:
        return self.summary.seq_scans if self.summary else ()


@dataclass(frozen=True, slots=True)
class PlansSnapshot:
    taken_at: datetime
    plans: tuple[StatementPlan, ...]
    budget_exhausted: bool = False
    seconds: float = 0.0
    index_mark: str = ""  # fingerprint of the indexes when planned: a new or dropped index replans all


def index_mark(indexes: IndexesSnapshot | None) -> str:
    """Which indexes exist (and are valid): plans made before an index changed are stale."""
    if indexes is None:
        return ""
    keys = sorted((i.database, i.indexrelid, i.is_valid) for i in indexes.indexes)
    return hashlib.sha256(repr(keys).encode()).hexdigest()[:16]


# --- planning (I/O, through db.Session) -----------------------------------------------------


def _q(name: str, server: ServerInfo) -> queries.Query:
    return queries.resolve("explain", name, server.major)


def search_path_for(username: str) -> str:
    """PostgreSQL's default search path, spelt out for the statement's user."""
    return f"{quote_ident(username)}, public"


def _explain(session: Session, server: ServerInfo, text: str) -> Any:
    """The JSON plan of ``text``, inside the caller's transaction; never runs the statement."""
    if server.has_generic_plan:
        return session.with_statement(_q("generic", server), text)[0]["QUERY PLAN"]
    session.dicts(_q("generic_mode", server))
    session.with_statement(_q("prepare", server), text)
    try:
        with session.rolled_back():  # a savepoint: a failure leaves the transaction usable for DEALLOCATE
            n = int(session.one(_q("parameters", server))["n"])
            args = "(" + ", ".join(["NULL"] * n) + ")" if n else ""
            return session.with_statement(_q("execute", server), args)[0]["QUERY PLAN"]
    finally:
        session.with_statement(_q("deallocate", server), "")


def _relation(session: Session, server: ServerInfo, schema: str | None, name: str) -> dict[str, Any] | None:
    rows = session.dicts(_q("relation", server), {"name": qualified(schema, name) if schema else quote_ident(name)})
    return rows[0] if rows else None


def _hypopg_schema(session: Session, server: ServerInfo) -> str | None:
    rows = session.dicts(_q("hypopg", server))
    return str(rows[0]["schema"]) if rows else None


def _advise(session: Session, server: ServerInfo, text: str, summary: PlanSummary,
            uses: Sequence[sqlparse.TableUse]) -> list[IndexAdvice]:
    """An index per filtered sequential scan, from the statement's structure; none an index covers."""
    advice: list[IndexAdvice] = []
    for use in uses:
        columns = sqlparse.propose_index(use)
        if not columns:
            continue
        rel = _relation(session, server, use.schema, use.table)
        if rel is None or rel["relkind"] not in ("r", "p", "m"):
            continue
        scanned = {s.relation for s in summary.seq_scans if s.filter}
        if rel["relation"] not in scanned and rel["relkind"] != "p":
            continue
        existing = [k.split(",") for k in rel["index_keys"]]
        if sqlparse.covered_by(columns, existing, len(use.equality)):
            continue
        candidate = IndexAdvice(rel["schema"], rel["relation"], columns, rel["relkind"] == "p",
                                float(rel["reltuples"]), None)
        if candidate not in advice:
            advice.append(candidate)
    return advice


def _verify(session: Session, server: ServerInfo, text: str, summary: PlanSummary, advice: IndexAdvice,
            hypopg: str) -> IndexAdvice:
    """Plan again with the index created hypothetically (hypopg), in the same rolled-back transaction."""
    try:
        with session.rolled_back():  # a savepoint: a refused index must not abort the whole transaction
            session.dicts(_q("hypopg_create", server), {"definition": advice.definition(concurrently=False)},
                          hypopg=hypopg)
            after = walk(_explain(session, server, text))
    except QueryFailed as exc:
        return replace(advice, note=f"hypopg could not verify it: {exc}")
    finally:
        session.dicts(_q("hypopg_reset", server), hypopg=hypopg)
    return replace(advice, verified=True, cost_before=summary.total_cost, cost_after=after.total_cost)


def plan_statement(session: Session, server: ServerInfo, text: str, username: str, *, database: str, dbid: int,
                   queryid: int, now: datetime, advise: bool = True) -> StatementPlan:
    """Plan one statement in ``session`` (connected to its database); errors become ``skipped``."""
    base = StatementPlan(database, dbid, queryid, username, now, None)
    if not sqlparse.is_plain_select(text):
        return replace(base, skipped="not a plain SELECT: never planned")
    uses = sqlparse.table_uses(text)
    try:
        with session.rolled_back():
            session.dicts(_q("search_path", server), {"path": search_path_for(username)})
            summary = walk(_explain(session, server, text))
            advice: list[IndexAdvice] = []
            if advise and uses and any(s.filter for s in summary.seq_scans):
                advice = _advise(session, server, text, summary, uses)
                hypopg = _hypopg_schema(session, server) if advice else None
                if hypopg is not None:
                    advice = [_verify(session, server, text, summary, a, hypopg) for a in advice]
            scans = tuple(_with_size(session, server, s) for s in summary.seq_scans)
            summary = replace(summary, seq_scans=scans)
    except QueryFailed as exc:
        return replace(base, skipped=f"planning failed: {exc}", parsed=uses is not None)
    return replace(base, summary=summary, advice=tuple(advice), parsed=uses is not None)


def _with_size(session: Session, server: ServerInfo, scan: SeqScan) -> SeqScan:
    rel = _relation(session, server, scan.schema, scan.relation)
    return replace(scan, reltuples=float(rel["reltuples"]) if rel else None)


# --- choosing what to plan (pure) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    database: str
    dbid: int
    queryid: int
    username: str
    text: str


def due(candidates: Sequence[Candidate], cache: Mapping[tuple[int, int], StatementPlan], now: datetime,
        replan_s: float, mark: str | None = None) -> list[Candidate]:
    """The candidates without a plan, with one older than ``replan_s``, or (given the current ``mark``)
    one made before an index changed; in the given (cost) order."""
    out = []
    for c in candidates:
        cached = cache.get((c.dbid, c.queryid))
        if cached is None or (now - cached.planned_at).total_seconds() >= replan_s \
                or (mark is not None and cached.index_mark != mark):
            out.append(c)
    return out


def within_budget(started: float, budget_s: float) -> bool:
    return time.monotonic() - started < budget_s


class PlanContext(Protocol):
    """What the plans collector needs from the runtime (``target._Context``)."""

    server: ServerInfo
    databases: tuple[str, ...]
    now: datetime
    statement_texts: Mapping[tuple[int, int], str]
    thresholds: Thresholds

    def session(self, database: str | None = None) -> Session: ...

    def history(self, collector: str) -> tuple[Any, ...]: ...


def worth_planning(text: str) -> bool:
    """A plain read of at least one table outside the catalog.

    Writes and utility statements are never planned. Statements that read
    only the catalog (the agent's own, monitoring tools') or no table at all
    have nothing to advise and would take the top N places on a quiet
    server. A text sqlglot cannot parse is planned (plan-only advice).
    """
    if not sqlparse.is_plain_select(text):
        return False
    uses = sqlparse.table_uses(text)
    if uses is None:
        return True
    return any(u.schema not in ("pg_catalog", "information_schema") and not u.table.startswith("pg_") for u in uses)


def candidates(history: Sequence[StatementsSnapshot], texts: Mapping[tuple[int, int], str], *,
               databases: Container[str] | None = None, limit: int | None = None) -> list[Candidate]:
    """Top-level plain reads of user tables (``worth_planning``), costliest first over the kept snapshots.

    The cost is the execution time between the oldest and the latest kept
    snapshot (what is expensive lately), then the total since the
    statistics were reset (so a statement idle for a few polls keeps its
    place and its plan). Statements are ranked first and parsed only while
    the top ``limit`` is not full: parsing every text of a 5,000-statement
    pg_stat_statements took 10 s of CPU and most of the agent's time.
    """
    if not history:
        return []
    latest = history[-1]
    recent = {d.key: d.total_exec_ms for d in statement_deltas(history[0], latest).deltas} \
        if len(history) > 1 else {}
    rows = [r for r in latest.rows if r.toplevel and (r.dbid, r.queryid) in texts
            and (databases is None or r.database in databases)]
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


def _with_definitions(used: tuple[PlanIndex, ...], database: str,
                      indexes: IndexesSnapshot | None) -> tuple[PlanIndex, ...]:
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
    previous: PlansSnapshot | None = (ctx.history("plans") or (None,))[-1]
    indexes: IndexesSnapshot | None = (ctx.history("indexes") or (None,))[-1]
    statements: StatementsSnapshot | None = (ctx.history("statements") or (None,))[-1]
    mark = index_mark(indexes)
    counters = statement_counters(statements)
    cache = {(p.dbid, p.queryid): p for p in previous.plans} if previous else {}
    top = candidates(ctx.history("statements"), ctx.statement_texts, databases=ctx.databases,
                     limit=int(t.explain_top_statements))
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
            plan = StatementPlan(c.database, c.dbid, c.queryid, c.username, ctx.now, None,
                                 skipped=f"cannot connect: {exc}")
        else:
            plan = plan_statement(session, ctx.server, c.text, c.username, database=c.database,
                                  dbid=c.dbid, queryid=c.queryid, now=ctx.now)
        old = cache.get(key)
        used = _with_definitions(plan.summary.indexes, c.database, indexes) if plan.summary else ()
        current, prior = next_shapes(old.current_shape if old else None, old.previous_shape if old else None,
                                     plan.summary, used, counters.get(key), ctx.now)
        cache[key] = replace(plan, index_mark=mark, current_shape=current, previous_shape=prior)
        planned.add(key)
    wanted = [(c.dbid, c.queryid) for c in top]
    for key in wanted:
        kept = cache.get(key)
        if kept is not None and key not in planned and kept.current_shape is not None:
            cache[key] = replace(kept, current_shape=count(kept.current_shape, counters.get(key)))
    plans = tuple(cache[k] for k in wanted if k in cache)
    return PlansSnapshot(ctx.now, plans, exhausted, time.monotonic() - started, mark)
