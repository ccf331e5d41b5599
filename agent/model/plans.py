"""What plans say, and what the agent keeps of them: generic plans, executed plans, deadlock reports.

Three sources give plans: the generic plans pgradar asks for (never
executed), EXPLAIN ANALYZE on a standby, and auto_explain's plans in the
server log. The last two carry actual rows and share one sample type, so the
``row_misestimate`` rule judges them alike. Everything here is pure: the
walker that builds these lives in ``pgradar.agent.plans.walker``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pgradar.agent.model.findings import qualified, quote_ident


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


# --- a generic plan --------------------------------------------------------------------


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
    # query patterns (``walker.patterns_of``): the root's row width, and the plan facts of classifiers.patterns
    width: float = 0.0
    subplans: tuple[SubPlanRun, ...] = ()
    limit_input: str | None = None  # the shape below the outermost Limit, when one is at or near the root
    subplans_removed: int = 0  # Append/MergeAppend children pruned (13-15 generic plans: at executor start)


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
    # a partitioned table's partitions at every level, top down: (schema, relation, parent schema,
    # parent relation, leaf), for the script that builds its index without locking writes
    partitions: tuple[tuple[str, str, str, str, bool], ...] = ()

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


# --- plan shapes over time -------------------------------------------------------------


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


# --- the plans collector's snapshot ----------------------------------------------------


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
    index_mark: str = ""  # the indexes when planned (``shapes.index_mark``): another mark means replan
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


@dataclass(frozen=True, slots=True)
class Candidate:
    """A statement the plan sources may plan or run: the costliest plain reads of user tables."""

    database: str
    dbid: int
    queryid: int
    username: str
    text: str


# --- executed plans: auto_explain's and EXPLAIN ANALYZE's --------------------------------

_LITERAL = re.compile(r"'(?:[^']|'')*'|\$\d+|\b\d+(?:\.\d+)?\b")


def blank_literals(text: str) -> str:
    """A statement with its literals and parameters blanked (``?``), whitespace collapsed."""
    return " ".join(_LITERAL.sub("?", text).split())


def literal_free(text: str) -> str:
    """A text with every literal and parameter blanked, for matching a logged text to a normalized one."""
    return blank_literals(text).rstrip(";").lower()


@dataclass(frozen=True, slots=True)
class PlanNode:
    node_type: str
    schema: str | None
    relation: str | None  # the scanned relation, or the first one below a join
    plan_rows: float  # per loop, as the planner estimated
    actual_rows: float  # per loop, as executed
    loops: float
    condition: str | None  # Filter / Index Cond / Hash Cond, for the evidence

    @property
    def factor(self) -> float:
        """How many times the estimate is off, in either direction (>= 1)."""
        high, low = max(self.plan_rows, self.actual_rows), min(self.plan_rows, self.actual_rows)
        return high / max(low, 1.0)


@dataclass(frozen=True, slots=True)
class PlanSample:
    queryid: int | None
    database: str | None  # known from jsonlog; else found through the queryid
    query: str  # the text as logged (with literals), cut short
    duration_ms: float
    nodes: tuple[PlanNode, ...]
    seen_at: datetime
    source: str = "auto_explain"  # or "explain_analyze": run by pgradar on a standby (plans.analyze)

    @property
    def key(self) -> str:
        return str(self.queryid) if self.queryid is not None else literal_free(self.query)


@dataclass(frozen=True, slots=True)
class DeadlockReport:
    """One ``deadlock detected`` report of the server log, literals blanked."""

    database: str | None  # known from jsonlog (or a log_line_prefix with %d); else None
    seen_at: datetime
    statements: tuple[str, ...]  # each process's statement, as "Process n: ..." says it
    relations: tuple[str, ...]  # relations the report names ('in relation "accounts"')
    waits: tuple[str, ...]  # "Process n waits for ShareLock on transaction m; blocked by process k."

    def to_json(self) -> dict[str, object]:
        return {
            "database": self.database,
            "seen_at": self.seen_at.isoformat(),
            "statements": list(self.statements),
            "relations": list(self.relations),
            "waits": list(self.waits),
        }


@dataclass(frozen=True, slots=True)
class TimeoutCancel:
    """One statement the server cancelled for ``statement_timeout`` (``ERROR: canceling statement due to
    statement timeout`` with its ``STATEMENT:`` line, which ``log_min_error_statement = error`` writes)."""

    database: str | None  # from jsonlog, or a log_line_prefix with %d (db=)
    user: str | None  # from jsonlog, or a log_line_prefix with %u (user=)
    application: str | None  # from jsonlog, or a log_line_prefix with %a (app=)
    seen_at: datetime
    statement: str  # literals blanked, cut short; '' when the log has no STATEMENT line

    def to_json(self) -> dict[str, object]:
        return {
            "database": self.database,
            "user": self.user,
            "application": self.application,
            "seen_at": self.seen_at.isoformat(),
            "statement": self.statement,
        }


@dataclass(frozen=True, slots=True)
class AutoExplainSnapshot:
    taken_at: datetime
    path: str | None  # None: no log configured for this target
    plans: tuple[PlanSample, ...]  # the latest plan of each statement kept
    bytes_read: int = 0
    deadlocks: tuple[DeadlockReport, ...] = ()  # the latest deadlock reports, oldest first
    timeouts: tuple[TimeoutCancel, ...] = ()  # the latest statement_timeout cancellations, oldest first


@dataclass(frozen=True, slots=True)
class AnalyzeSnapshot:
    taken_at: datetime
    enabled: bool  # the target's explain_analyze switch
    plans: tuple[PlanSample, ...]  # the latest sample of each top statement run, kept across cycles
    skipped: tuple[tuple[int, str], ...] = ()  # (queryid, why) of top statements not run this cycle
    ran: int = 0  # statements executed under EXPLAIN ANALYZE this cycle
    budget_exhausted: bool = False
    seconds: float = 0.0
