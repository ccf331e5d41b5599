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

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pgradar.agent import indexmerge, queries, sqlparse
from pgradar.agent.db import DatabaseError, QueryFailed, Session
from pgradar.agent.deltas import statement_deltas
from pgradar.agent.findings import qualified, quote_ident
from pgradar.agent.model.catalog import IndexesSnapshot
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.thresholds import DEFAULT as DEFAULT_THRESHOLDS
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
    sort_keys: tuple[str, ...] = ()  # a Sort right above it (nothing else between) sorts its rows by these
    limited: bool = False  # a Limit above that Sort: the statement wants the first rows of the order
    output: tuple[str, ...] = ()  # what it returns (VERBOSE ``Output``): the columns a covering index needs

    @property
    def rows(self) -> float:
        """The rows the scan keeps, all workers together (DESIGN 7: parallel estimates are per worker)."""
        return self.plan_rows * parallel_divisor(self.workers)

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
    # query patterns (``patterns_of``): the root's row width, and the plan facts of classifiers.patterns
    width: float = 0.0
    subplans: tuple[SubPlanRun, ...] = ()
    limit_input: str | None = None  # the shape below the outermost Limit, when one is at or near the root
    subplans_removed: int = 0  # Append/MergeAppend children pruned (13-15 generic plans: at executor start)


@dataclass(frozen=True, slots=True)
class SubPlanRun:
    """A SubPlan (not an InitPlan) and how often the plan runs it.

    A SubPlan is run once per row of the node whose expression holds it
    (its parent), unless it is hashed (``hashed SubPlan n`` in that
    expression): then it runs once and is probed. ``outer_rows`` is the
    parent's row estimate times its loops, the planner's count of runs (a
    filter runs it for rows it then drops, so the real count is higher).
    """

    name: str
    parent: str  # the parent's node type and relation, for a human
    outer_rows: float
    hashed: bool
    run_cost: float  # the SubPlan's estimated cost per run
    seq_scans: tuple[str, ...]  # relations the SubPlan reads sequentially on every run
    correlated: tuple[tuple[str, str], ...] = ()  # (relation, column) compared with an outer column in those scans


def _nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _with_workers(node: Mapping[str, Any], workers: int = 0) -> Iterator[tuple[Mapping[str, Any], int]]:
    """Every node with the planned workers of the Gather (Merge) above it (0 outside one)."""
    workers = (
        int(node.get("Workers Planned", workers) or 0) if node.get("Node Type", "").startswith("Gather") else workers
    )
    yield node, workers
    for child in node.get("Plans", ()):
        yield from _with_workers(child, workers)


def _shape(node: Mapping[str, Any]) -> list[Any]:
    return [
        node.get("Node Type"),
        node.get("Relation Name"),
        node.get("Index Name"),
        node.get("Join Type"),
        [_shape(c) for c in node.get("Plans", ())],
    ]


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


# nodes a sort order (and a Limit's "first rows") passes through unchanged, down to one table's scan
_ORDER_KEEPING = frozenset(
    ("Limit", "Sort", "Incremental Sort", "Gather Merge", "Gather", "Result", "Subquery Scan", "Append", "Seq Scan")
)


def parallel_divisor(workers: int, leader_participates: bool = True) -> float:
    """What the planner divided a parallel scan's rows by: its workers, plus the leader's share.

    PostgreSQL's ``get_parallel_divisor``: with ``parallel_leader_participation``
    on, the leader counts as ``1 - 0.3 * workers`` of a process while that
    is positive (200,000 rows over one worker show as 117,647: 1.7
    processes). A scan outside a parallel plan: 1.
    """
    if workers <= 0:
        return 1.0
    return workers + (max(0.0, 1.0 - 0.3 * workers) if leader_participates else 0.0)


def _scan_contexts(
    node: Mapping[str, Any], sort: tuple[str, ...], limited: bool, out: dict[int, tuple[tuple[str, ...], bool]]
) -> None:
    """For each Seq Scan: the sort keys and Limit right above it."""
    kind = node.get("Node Type")
    if kind not in _ORDER_KEEPING:
        sort, limited = (), False
    if kind == "Limit":
        limited = True
    elif kind in ("Sort", "Incremental Sort"):
        sort = tuple(node.get("Sort Key", ()))
    out[id(node)] = (sort, limited and bool(sort))
    for child in node.get("Plans", ()):
        _scan_contexts(child, sort, limited, out)


def walk(explain_json: Any) -> PlanSummary:
    """The facts of an ``EXPLAIN (FORMAT JSON)`` result that the classifiers use."""
    document = json.loads(explain_json) if isinstance(explain_json, str) else explain_json
    root = document[0]["Plan"]
    scans, sorts, loops = [], [], 0
    indexes: list[PlanIndex] = []
    relations: list[tuple[str | None, str]] = []
    contexts: dict[int, tuple[tuple[str, ...], bool]] = {}
    _scan_contexts(root, (), False, contexts)
    for node, workers in _with_workers(root):
        kind = node.get("Node Type")
        if kind == "Seq Scan":
            sort, limited = contexts[id(node)]
            scans.append(
                SeqScan(
                    node.get("Schema"),
                    node.get("Relation Name", ""),
                    node.get("Alias"),
                    node.get("Filter"),
                    float(node.get("Plan Rows", 0)),
                    float(node.get("Total Cost", 0)),
                    sort_keys=sort,
                    limited=limited,
                    output=tuple(node.get("Output", ())),
                    workers=workers if node.get("Parallel Aware") else 0,
                )
            )
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
    return PlanSummary(
        float(root.get("Total Cost", 0)),
        float(root.get("Plan Rows", 0)),
        tuple(scans),
        tuple(sorts),
        loops,
        shape,
        text,
        tuple(indexes),
        tuple(relations),
        float(root.get("Plan Width", 0)),
        *patterns_of(root),
        sum(int(n.get("Subplans Removed", 0)) for n in _nodes(root)),
    )


_EXPRESSIONS = (
    "Filter",
    "Join Filter",
    "Hash Cond",
    "Merge Cond",
    "Index Cond",
    "Recheck Cond",
    "One-Time Filter",
    "Output",
    "Sort Key",
    "Group Key",
)


def _node_name(node: Mapping[str, Any]) -> str:
    name = str(node.get("Node Type", "?"))
    if node.get("Relation Name"):
        schema = node.get("Schema")
        name += f" on {schema}.{node['Relation Name']}" if schema else f" on {node['Relation Name']}"
    return name


def _subplans(node: Mapping[str, Any], loops: float, out: list[SubPlanRun]) -> None:
    """SubPlans below ``node`` (run ``loops`` times), with the rows each is run for."""
    rows = float(node.get("Plan Rows", 0)) * loops
    expressions = " ".join(str(v) for k in _EXPRESSIONS for v in ([node[k]] if k in node else ()))
    for child in node.get("Plans", ()):
        relationship = child.get("Parent Relationship")
        child_loops = loops
        if relationship == "SubPlan":
            name = str(child.get("Subplan Name", "SubPlan"))
            hashed = re.search(rf"hashed {re.escape(name)}(?!\d)", expressions) is not None or name.startswith("hashed")
            scans = [n for n in _nodes(child) if n.get("Node Type") == "Seq Scan"]
            seq = tuple(dict.fromkeys(_node_name(n).removeprefix("Seq Scan on ") for n in scans))
            correlated = tuple(dict.fromkeys(pair for n in scans for pair in _correlated_columns(n)))
            out.append(
                SubPlanRun(name, _node_name(node), rows, hashed, float(child.get("Total Cost", 0)), seq, correlated)
            )
            child_loops = 1.0 if hashed else max(rows, 1.0)
        elif relationship == "Inner" and node.get("Node Type") == "Nested Loop":
            outer = next((c for c in node.get("Plans", ()) if c.get("Parent Relationship") == "Outer"), None)
            child_loops = loops * max(float(outer.get("Plan Rows", 1)) if outer else 1.0, 1.0)
        _subplans(child, child_loops, out)


_COLUMN_EQUALS = re.compile(r'("(?:[^"]|"")+"|\w+)\.("(?:[^"]|"")+"|\w+) = ("(?:[^"]|"")+"|\w+)\.("(?:[^"]|"")+"|\w+)')


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _correlated_columns(scan: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Columns of a scan inside a SubPlan compared with a column of another alias (an outer row's), by
    VERBOSE's qualified names: ``(l.order_id = o.id)``."""
    alias, relation = scan.get("Alias"), _node_name(scan).removeprefix("Seq Scan on ")
    for m in _COLUMN_EQUALS.finditer(str(scan.get("Filter", ""))):
        left, right = _unquote(m[1]), _unquote(m[3])
        if left == alias and right != alias:
            yield relation, _unquote(m[2])
        elif right == alias and left != alias:
            yield relation, _unquote(m[4])


_PASS_THROUGH = ("Result", "Unique", "Aggregate", "Gather", "Gather Merge")


def patterns_of(root: Mapping[str, Any]) -> tuple[tuple[SubPlanRun, ...], str | None]:
    """The SubPlans of a plan, and what its outermost Limit reads (for the query-pattern rules)."""
    found: list[SubPlanRun] = []
    _subplans(root, 1.0, found)
    node: Mapping[str, Any] | None = root
    limit_input = None
    while node is not None:
        if node.get("Node Type") == "Limit":
            children = [c for c in node.get("Plans", ()) if c.get("Parent Relationship") == "Outer"]
            limit_input = _shape_text(children[0]) if children else None
            break
        if node.get("Node Type") not in _PASS_THROUGH:
            break
        node = next(iter(node.get("Plans", ())), None)
    if limit_input is not None and len(limit_input) > SHAPE_TEXT_MAX:
        limit_input = limit_input[: SHAPE_TEXT_MAX - 3] + "..."
    return tuple(found), limit_input


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
    equality: int = 0  # the leading columns compared for equality: any order of them serves (``onefix``)
    include: tuple[str, ...] = ()  # INCLUDE columns: only where hypopg showed an index-only scan would follow
    merged: tuple[str, ...] = ()  # the merged index (``indexmerge``) hypopg found serves this statement too
    alone: bool = False  # hypopg found the merged index does not serve it: recommended apart
    table_columns: int = 0  # the table's width (columns), to judge whether a covering index is worth it

    @property
    def gain(self) -> float | None:
        if self.cost_before is None or self.cost_after is None or self.cost_before <= 0:
            return None
        return 1.0 - self.cost_after / self.cost_before

    def definition(self, concurrently: bool = True) -> str:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        how = "CONCURRENTLY " if concurrently and not self.partitioned else ""
        include = f" INCLUDE ({', '.join(quote_ident(c) for c in self.include)})" if self.include else ""
        return f"CREATE INDEX {how}ON {qualified(self.schema, self.relation)} ({cols}){include}"


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
    return replace(
        shape,
        calls=shape.calls + d_calls,
        exec_ms=shape.exec_ms + d_ms,
        recent_calls=d_calls,
        recent_exec_ms=d_ms,
        counted_at=at,
        counter_calls=calls,
        counter_exec_ms=exec_ms,
    )


def next_shapes(
    current: PlanShape | None,
    previous: PlanShape | None,
    summary: PlanSummary | None,
    indexes: tuple[PlanIndex, ...],
    counters: Counters | None,
    now: datetime,
) -> tuple[PlanShape | None, PlanShape | None]:
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
        return replace(
            counted, last_seen=now, total_cost=summary.total_cost, indexes=indexes or counted.indexes
        ), previous
    fresh = count(
        PlanShape(summary.shape_hash, summary.shape, summary.total_cost, now, now, indexes, summary.relations), counters
    )
    return fresh, (counted if counted is not None else previous)


@dataclass(frozen=True, slots=True)
class PartitionedUse:
    """A partitioned table a statement reads: its key, its partitions, and whether the WHERE clause compares
    a key column itself with a value (the text's side of pruning, which holds on every version)."""

    schema: str
    relation: str
    key_columns: tuple[str | None, ...]  # None where the key is an expression
    key_definition: str  # "RANGE (at)"
    leaves: tuple[str, ...]  # "schema.relation" of each leaf partition
    key_constrained: bool  # the WHERE compares a key column with a value (=, IN, range)
    reltuples: float = 0.0

    @property
    def partitions(self) -> int:
        return len(self.leaves)


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
    partitioned: tuple[PartitionedUse, ...] = ()  # partitioned tables it reads (partition_pruning_missed)

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


def _explain(session: Session, server: ServerInfo, text: str, pruning: bool = True) -> Any:
    """The JSON plan of ``text``, inside the caller's transaction; never runs the statement.

    ``pruning=False`` (before 16 only) plans every partition: the generic
    plan with NULL parameters prunes them all at executor start (DESIGN 7).
    """
    if server.has_generic_plan:
        return session.with_statement(_q("generic", server), text)[0]["QUERY PLAN"]
    session.dicts(_q("generic_mode", server))
    session.with_statement(_q("prepare", server), text)
    try:
        with session.rolled_back():  # a savepoint: a failure leaves the transaction usable for DEALLOCATE
            if not pruning:
                session.dicts(_q("no_pruning", server))
            n = int(session.one(_q("parameters", server))["n"])
            args = "(" + ", ".join(["NULL"] * n) + ")" if n else ""
            return session.with_statement(_q("execute", server), args)[0]["QUERY PLAN"]
    finally:
        # in a savepoint of its own: with a hypothetical index on a partitioned table (hypopg, 15) the
        # prepared statement can be gone by now, and a failed DEALLOCATE must not abort the transaction
        with contextlib.suppress(QueryFailed), session.rolled_back():  # DEALLOCATE is not undone by the rollback
            session.with_statement(_q("deallocate", server), "")


def _relation(session: Session, server: ServerInfo, schema: str | None, name: str) -> dict[str, Any] | None:
    rows = session.dicts(_q("relation", server), {"name": qualified(schema, name) if schema else quote_ident(name)})
    return rows[0] if rows else None


def _hypopg_schema(session: Session, server: ServerInfo) -> str | None:
    rows = session.dicts(_q("hypopg", server))
    return str(rows[0]["schema"]) if rows else None


def order_by_selectivity(columns: tuple[str, ...], equality: int, distinct: Mapping[str, float]) -> tuple[str, ...]:
    """The equality columns most selective first (most distinct values, pg_stats), the rest as they were.

    Any order of the equality columns serves a statement comparing them
    all; the most selective first also serves best the statements that
    compare only it. A column holding one value only is left out (it
    selects nothing). Without statistics for every one of them the order
    written in the statement stays.
    """
    head = columns[:equality]
    if len(head) < 2 or any(distinct.get(c) is None for c in head):
        return columns
    ranked = sorted(head, key=lambda c: -distinct[c])  # stable: ties keep the statement's order
    kept = [c for c in ranked if distinct[c] > 1] or ranked[:1]  # a column of one value selects nothing
    return (*kept, *columns[equality:])


def unselective(share: float | None, use: sqlparse.TableUse, limited: bool, max_share: float) -> bool:
    """An equality filter keeps more than ``max_share`` of the table: no index serves that read.

    The generic plan's estimate of ``col = $1`` comes from the column's
    statistics (its distinct values), so it tells; that of a range
    (``created > $1``) is a fixed default (a third), which says nothing of
    the data, so a filter with a range is not judged. Nor is one where the
    statement wants the first rows in an order the index gives (equality
    columns then the sort columns, under a Limit): the index scan stops
    after those rows however many match.
    """
    if share is None or share <= max_share or use.range:
        return False
    return not (limited and use.order)


@dataclass(frozen=True, slots=True)
class _Table:
    """One table the plan scans sequentially (partitions under their partitioned table)."""

    schema: str
    relation: str
    relkind: str
    reltuples: float
    index_keys: tuple[tuple[str, ...], ...]
    scans: tuple[SeqScan, ...]
    columns: int = 0

    @property
    def share(self) -> float | None:
        """The share of the table the filtered scans keep (None: no filter)."""
        filtered = [s for s in self.scans if s.filter]
        if not filtered or self.reltuples <= 0:
            return None
        return sum(s.rows for s in filtered) / self.reltuples

    @property
    def limited(self) -> bool:
        return any(s.limited for s in self.scans)


def _scanned_tables(session: Session, server: ServerInfo, summary: PlanSummary) -> dict[tuple[str, str], _Table]:
    """The tables whose sequential scans advice may serve: filtered, or sorted under a Limit."""
    tables: dict[tuple[str, str], _Table] = {}
    roots: dict[tuple[str, str], dict[str, Any] | None] = {}  # a partitioned table's partitions share one look-up
    for scan in summary.seq_scans:
        if not scan.filter and not scan.limited:
            continue
        rel = _relation(session, server, scan.schema, scan.relation)
        if rel is not None and rel.get("root"):
            root = (str(rel["root_schema"]), str(rel["root"]))
            if root not in roots:
                roots[root] = _relation(session, server, *root)
            rel = roots[root]
        if rel is None or rel["relkind"] not in ("r", "p", "m"):
            continue
        key = (str(rel["schema"]), str(rel["relation"]))
        known = tables.get(key)
        scans = (*known.scans, scan) if known else (scan,)
        tables[key] = _Table(
            key[0],
            key[1],
            str(rel["relkind"]),
            float(rel["reltuples"]),
            tuple(tuple(k.split(",")) for k in rel["index_keys"]),
            scans,
            int(rel["columns"]),
        )
    return tables


def _advise(
    session: Session,
    server: ServerInfo,
    summary: PlanSummary,
    uses: Sequence[sqlparse.TableUse] | None,
    max_share: float,
) -> list[IndexAdvice]:
    """An index per table the plan scans sequentially for a filter or a sorted Limit; none an index covers.

    The columns come from the statement's text where it names the table,
    else from the plan's own filter and sort keys (``sqlparse.plan_use``:
    views, inlined CTEs, subqueries, writes). A filter that keeps most of
    the table gets none (``unselective``); equality columns are ordered by
    pg_stats (``order_by_selectivity``).
    """
    advice: list[IndexAdvice] = []
    tables = _scanned_tables(session, server, summary)
    from_text: dict[tuple[str, str], sqlparse.TableUse] = {}
    for use in uses or ():
        rel = _relation(session, server, use.schema, use.table)
        if rel is not None and (str(rel["schema"]), str(rel["relation"])) in tables:
            from_text.setdefault((str(rel["schema"]), str(rel["relation"])), use)
    for key, table in tables.items():
        use = from_text.get(key)
        if use is None or not sqlparse.propose_index(use):
            scan = table.scans[0]
            use = sqlparse.plan_use(
                scan.schema, scan.relation, scan.alias, scan.filter, scan.sort_keys if scan.limited else ()
            )
        if use is None or unselective(table.share, use, table.limited, max_share):
            continue
        columns, equality = sqlparse.propose_index(use), sqlparse.equality_count(use)
        if not columns:
            continue
        if equality > 1:
            stats = session.dicts(
                _q("column_stats", server),
                {"schema": table.schema, "relation": table.relation, "reltuples": table.reltuples},
            )
            ordered = order_by_selectivity(columns, equality, {r["column_name"]: r["n_distinct"] for r in stats})
            columns, equality = ordered, equality - (len(columns) - len(ordered))
        if sqlparse.covered_by(columns, [list(k) for k in table.index_keys], equality):
            continue
        candidate = IndexAdvice(
            table.schema,
            table.relation,
            columns,
            table.relkind == "p",
            table.reltuples,
            None,
            equality=equality,
            table_columns=table.columns,
        )
        if candidate not in advice:
            advice.append(candidate)
    return advice


def _verify(
    session: Session,
    server: ServerInfo,
    text: str,
    summary: PlanSummary,
    advice: IndexAdvice,
    hypopg: str,
    pruning: bool = True,
) -> IndexAdvice:
    """Plan again with the index created hypothetically (hypopg), in the same rolled-back transaction."""
    try:
        with session.rolled_back():  # a savepoint: a refused index must not abort the whole transaction
            session.dicts(
                _q("hypopg_create", server), {"definition": advice.definition(concurrently=False)}, hypopg=hypopg
            )
            after = walk(_explain(session, server, text, pruning))
    except QueryFailed as exc:
        return replace(advice, note=f"hypopg could not verify it: {exc}")
    finally:
        session.dicts(_q("hypopg_reset", server), hypopg=hypopg)
    return replace(advice, verified=True, cost_before=summary.total_cost, cost_after=after.total_cost)


MAX_INCLUDE = 3  # columns a covering index may carry besides its keys
WIDE_TABLE_COLUMNS = 10  # a table this wide is worth covering (as select_star_min_columns judges width)
_PLAIN_COLUMN = re.compile(r'^(?:(?:"[^"]+"|[a-z_][a-z0-9_$]*)\.)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)$')


def covering_columns(advice: IndexAdvice, summary: PlanSummary) -> tuple[str, ...]:
    """The columns the statement reads from the table besides the index's keys, when a covering index fits.

    Only for a plain table of ``WIDE_TABLE_COLUMNS`` columns or more and at
    least twice as wide as what the statement reads, scanned for plain columns (an expression in the output, or a
    filter on a column the index does not hold, and there is nothing to
    cover), and at most ``MAX_INCLUDE`` of them.
    """
    scans = [s for s in summary.seq_scans if s.relation == advice.relation and (s.schema in (None, advice.schema))]
    if advice.partitioned or not scans:
        return ()
    read: list[str] = []
    for scan in scans:
        use = sqlparse.plan_use(scan.schema, scan.relation, scan.alias, scan.filter)
        if use is None or not set(use.equality + use.range + use.join) <= set(advice.columns):
            return ()
        for item in scan.output:
            match = _PLAIN_COLUMN.match(item)
            if match is None:
                return ()
            name = match.group(1)
            name = name[1:-1].replace('""', '"') if name.startswith('"') else name
            if name not in advice.columns and name not in read:
                read.append(name)
    if (
        not read
        or len(read) > MAX_INCLUDE
        or advice.table_columns < max(WIDE_TABLE_COLUMNS, 2 * (len(advice.columns) + len(read)))
    ):
        return ()
    return tuple(read)


def _cover(
    session: Session,
    server: ServerInfo,
    text: str,
    summary: PlanSummary,
    advice: IndexAdvice,
    hypopg: str,
    pruning: bool,
) -> IndexAdvice:
    """The verified advice with INCLUDE columns, when hypopg shows an index-only scan would follow and cost less."""
    include = covering_columns(advice, summary)
    if not include or not advice.verified or advice.cost_after is None:
        return advice
    covering = replace(advice, include=include)
    try:
        with session.rolled_back():
            session.dicts(
                _q("hypopg_create", server), {"definition": covering.definition(concurrently=False)}, hypopg=hypopg
            )
            plan = _explain(session, server, text, pruning)
    except QueryFailed:
        return advice
    finally:
        session.dicts(_q("hypopg_reset", server), hypopg=hypopg)
    document = json.loads(plan) if isinstance(plan, str) else plan
    only = any(
        n.get("Node Type") == "Index Only Scan" and n.get("Relation Name") == advice.relation
        for n in _nodes(document[0]["Plan"])
    )
    cost = float(document[0]["Plan"].get("Total Cost", 0))
    return replace(covering, cost_after=cost) if only and cost < advice.cost_after else advice


def all_pruned(explain_json: Any) -> bool:
    """The plan scans nothing because every partition was pruned (``Subplans Removed``, no scan left)."""
    document = json.loads(explain_json) if isinstance(explain_json, str) else explain_json
    nodes = list(_nodes(document[0]["Plan"]))
    return any(n.get("Subplans Removed") for n in nodes) and not any(n.get("Relation Name") for n in nodes)


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

    Reads and UPDATE/DELETE (``sqlparse.is_plannable``) are planned; a
    write through the read of the same rows (``sqlparse.equivalent_read``:
    EXPLAIN of the write itself needs the write privilege), so nothing that
    writes is ever sent; everything is rolled back. Before 16
    a plan whose partitions were all pruned at executor start is planned
    again without pruning, for the scans the advice needs.
    """
    base = StatementPlan(database, dbid, queryid, username, now, None)
    if not sqlparse.is_plannable(text):
        return replace(base, skipped="not a plain SELECT, UPDATE or DELETE: never planned")
    uses = sqlparse.table_uses(text)
    if not sqlparse.is_plain_select(text):
        read = sqlparse.equivalent_read(text)
        if read is None:
            return replace(base, skipped="a write whose WHERE could not be read: never planned")
        text = read
    try:
        with session.rolled_back():
            session.dicts(_q("search_path", server), {"path": search_path_for(username)})
            plan = _explain(session, server, text)
            summary, pruning = walk(plan), True
            if not server.has_generic_plan and all_pruned(plan):
                pruning = False
                summary = replace(summary, seq_scans=walk(_explain(session, server, text, pruning)).seq_scans)
            if not wants_first_rows(text):
                summary = replace(summary, seq_scans=tuple(replace(s, limited=False) for s in summary.seq_scans))
            advice: list[IndexAdvice] = []
            if advise and any(s.filter or s.limited for s in summary.seq_scans):
                advice = _advise(session, server, summary, uses, max_share)
                hypopg = _hypopg_schema(session, server) if advice else None
                if hypopg is not None:
                    advice = [_verify(session, server, text, summary, a, hypopg, pruning) for a in advice]
                    advice = [_cover(session, server, text, summary, a, hypopg, pruning) for a in advice]
            scans = tuple(_with_size(session, server, s) for s in summary.seq_scans)
            summary = replace(summary, seq_scans=scans)
            partitioned = _partitioned(session, server, uses or ())
    except QueryFailed as exc:
        return replace(base, skipped=f"planning failed: {exc}", parsed=uses is not None)
    return replace(base, summary=summary, advice=tuple(advice), parsed=uses is not None, partitioned=partitioned)


def wants_first_rows(text: str) -> bool:
    """A LIMIT or FETCH with a count: only then does an index on the sort keys stop early.

    An OFFSET alone also puts a Limit node over the Sort, but the statement
    still reads the whole order (``ORDER BY payload OFFSET 59999``): an index
    on the sort keys would not save that work. Unparsable text keeps the plan's word.
    """
    paging = sqlparse.paging(text)
    return paging is None or (paging.limit is not None and paging.limit != "ALL")


def _partitioned(session: Session, server: ServerInfo, uses: Sequence[sqlparse.TableUse]) -> tuple[PartitionedUse, ...]:
    """The partitioned tables among the statement's tables, with their keys and leaf partitions."""
    found: list[PartitionedUse] = []
    for use in uses:
        rel = _relation(session, server, use.schema, use.table)
        if rel is None or rel["relkind"] != "p":
            continue
        name = qualified(rel["schema"], rel["relation"])
        rows = session.dicts(_q("partitions", server), {"name": name})
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
    """A plain read, UPDATE or DELETE of at least one table outside the catalog.

    Other writes and utility statements are never planned. Statements that read
    only the catalog (the agent's own, monitoring tools') or no table at all
    have nothing to advise and would take the top N places on a quiet
    server. A text sqlglot cannot parse is planned (plan-only advice).
    """
    if not sqlparse.is_plannable(text):
        return False
    uses = sqlparse.table_uses(text)
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
    the top ``limit`` is not full: parsing every text of a 5,000-statement
    pg_stat_statements took 10 s of CPU and most of the agent's time.
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


def _with_definitions(
    used: tuple[PlanIndex, ...], database: str, indexes: IndexesSnapshot | None
) -> tuple[PlanIndex, ...]:
    """The indexes a plan reads, with their definitions from the indexes snapshot (to recreate one dropped)."""
    if indexes is None:
        return used
    known = {(i.schema, i.index): i.definition for i in indexes.indexes if i.database == database}
    return tuple(replace(u, definition=known.get((u.schema or "public", u.index), u.definition)) for u in used)


def _merged_cost(session: Session, server: ServerInfo, text: str, username: str, definition: str) -> float | None:
    """The statement's estimated cost with one hypothetical index (hypopg), or None when it cannot tell."""
    if not sqlparse.is_plain_select(text):
        text = sqlparse.equivalent_read(text) or ""
    hypopg = None
    try:
        with session.rolled_back():
            session.dicts(_q("search_path", server), {"path": search_path_for(username)})
            hypopg = _hypopg_schema(session, server)
            if hypopg is None or not text:
                return None
            pruning = server.has_generic_plan or not all_pruned(_explain(session, server, text))
            session.dicts(_q("hypopg_create", server), {"definition": definition}, hypopg=hypopg)
            return walk(_explain(session, server, text, pruning)).total_cost
    except QueryFailed:
        return None
    finally:
        if hypopg is not None:
            with contextlib.suppress(QueryFailed):
                session.dicts(_q("hypopg_reset", server), hypopg=hypopg)


def verify_merged(ctx: PlanContext, plans: dict[tuple[int, int], StatementPlan]) -> None:
    """Where one index serves several statements' advice (``indexmerge``), check it with hypopg for each.

    Each statement's own index was verified when it was planned; the index
    recommended once for the table may be wider or in another order. Each
    statement it would serve is planned again with that index: if the cost
    does not drop by ``index_advice_min_gain`` the advice stays apart
    (``alone``), recommended on its own; else it records the merged index.
    Only verified advice (hypopg installed) takes part.
    """
    groups: dict[tuple[str, str, str], list[tuple[indexmerge.Candidate, tuple[int, int], int]]] = {}
    for key, plan in plans.items():
        for j, a in enumerate(plan.advice):
            if a.verified:
                groups.setdefault((plan.database, a.schema, a.relation), []).append(
                    (indexmerge.Candidate(a.columns, a.equality, a.include, a.alone), key, j)
                )
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (-len(m[0].columns), -len(m[0].include), str(m[1][1])))  # as onefix ranks
        indexmerge.merge_group([m[0] for m in members])
        for candidate, key, j in members:
            owner = candidate.served_by
            plan = plans[key]
            advice = plan.advice[j]
            if (
                owner is None
                or (owner.columns, owner.include) == (advice.columns, advice.include)
                or advice.merged == owner.columns
            ):
                continue
            text = ctx.statement_texts.get(key)
            try:
                session = ctx.session(plan.database)
            except DatabaseError:
                continue
            merged = replace(advice, columns=owner.columns, include=owner.include)
            cost = (
                _merged_cost(session, ctx.server, text, plan.username, merged.definition(concurrently=False))
                if text
                else None
            )
            if cost is None:
                continue
            before = advice.cost_before or 0.0
            serves = before > 0 and 1.0 - cost / before >= ctx.thresholds.index_advice_min_gain
            changed = (
                replace(advice, merged=owner.columns)
                if serves
                else replace(
                    advice, alone=True, note=f"the merged index ({', '.join(owner.columns)}) does not serve it (hypopg)"
                )
            )
            plans[key] = replace(plan, advice=tuple(changed if i == j else a for i, a in enumerate(plan.advice)))


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
    top = candidates(
        ctx.history("statements"), ctx.statement_texts, databases=ctx.databases, limit=int(t.explain_top_statements)
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
        verify_merged(ctx, cache)
    for key in wanted:
        kept = cache.get(key)
        if kept is not None and key not in planned and kept.current_shape is not None:
            cache[key] = replace(kept, current_shape=count(kept.current_shape, counters.get(key)))
    plans = tuple(cache[k] for k in wanted if k in cache)
    return PlansSnapshot(ctx.now, plans, exhausted, time.monotonic() - started, mark)
