"""Every collector once: what it reads, which kind of target it runs for, and what follows a read.

A collector reads and decides nothing; what the agent keeps from a read
beyond the snapshot itself (the previous rows of a database that failed this
time, the sizes filled into the counters, the first sightings of indexes,
the statement texts and intervals) is declared here, per collector, as
``after`` steps the job runner applies in order before recording the
snapshot. Names and default intervals live in ``jobs`` (a leaf module the
command line reads without importing this one); a unit test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any, Protocol

from pgradar.agent.collect.bouncer import collect_pgbouncer
from pgradar.agent.collect.collectors import (
    collect_activity,
    collect_database,
    collect_foreign_keys,
    collect_indexes,
    collect_replication,
    collect_server,
    collect_sessions,
    collect_settings,
    collect_sizes,
    collect_statements,
    collect_tables,
    fetch_new_texts,
)
from pgradar.agent.collect.load import SamplerContext, collect_load
from pgradar.agent.collect.vacuum import collect_bloat, collect_vacuum
from pgradar.agent.derive.deltas import by_key, statement_deltas
from pgradar.agent.model.catalog import IndexesSnapshot, IndexFirstSeen, SizesSnapshot, carry_over, fill_sizes
from pgradar.agent.model.load import LoadSample
from pgradar.agent.model.reuse import reuse_unchanged
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.plans.analyze import AnalyzeContext
from pgradar.agent.plans.collectors import LogContext, collect_auto_explain, collect_explain_analyze
from pgradar.agent.plans.generic import collect_plans
from pgradar.agent.runtime.state import TargetState

POSTGRESQL = "postgresql"
PGBOUNCER = "pgbouncer"


class JobContext(LogContext, AnalyzeContext, SamplerContext, Protocol):
    """What a collector and its ``after`` steps see: the collect context, the target's state and the job."""

    state: TargetState
    collector: str


After = Callable[[JobContext, Any], Any]


@dataclass(frozen=True, slots=True)
class CollectorSpec:
    name: str
    collect: Callable[[JobContext], Any]
    why: str
    target_kind: str = POSTGRESQL  # the TargetState.kind it runs for
    after: tuple[After, ...] = ()  # applied in order to the snapshot before it is recorded
    refreshes_server: bool = False  # reads ServerInfo and the databases again before collecting
    needs_server: bool = True  # refused (switched off) on a PostgreSQL older than pgradar supports


# --- after steps ------------------------------------------------------------------------


def keep_failed_databases(ctx: JobContext, snapshot: Any) -> Any:
    """The previous rows of the databases that failed this time, so a hiccup does not empty them."""
    if not snapshot.failed_databases:
        return snapshot
    return carry_over(ctx.state.latest(ctx.collector), snapshot)


def with_latest_sizes(ctx: JobContext, snapshot: Any) -> Any:
    """Counters carry the latest sizes: sizes are read less often (file-system calls)."""
    return fill_sizes(snapshot, ctx.state.current().sizes, ctx.state.sized_tables)


def refill_counters(ctx: JobContext, snapshot: SizesSnapshot) -> SizesSnapshot:
    """The latest counters get the new sizes at once, not at their next poll."""
    for counters in ("tables", "database"):
        ctx.state.replace_latest(counters, lambda old: fill_sizes(old, snapshot, ctx.state.sized_tables))
    return snapshot


def index_first_seen(previous: IndexFirstSeen | None, snapshot: IndexesSnapshot) -> IndexFirstSeen:
    """Carry the first sightings forward: an index new since the last poll gets this poll's time.

    On the first poll every index gets None (age unknown). Indexes of a
    database that failed this time keep their entry, so a hiccup does not
    make them look new.
    """
    known = dict(previous.first_seen) if previous is not None else {}
    when = snapshot.taken_at if previous is not None else None
    keys = [(i.database, i.indexrelid) for i in snapshot.indexes]
    kept = [k for k in known if k[0] in snapshot.failed_databases]
    seen = tuple((key, known.get(key, when)) for key in [*keys, *kept])
    return IndexFirstSeen(snapshot.taken_at, seen)


def record_first_seen(ctx: JobContext, snapshot: IndexesSnapshot) -> IndexesSnapshot:
    ctx.state.record("index_first_seen", index_first_seen(ctx.state.current().index_first_seen, snapshot))
    return snapshot


def without_own(snapshot: StatementsSnapshot, own: Collection[tuple[int, int]]) -> StatementsSnapshot:
    """The snapshot without the agent's own statements: ``own`` holds those whose text carries ``queries.MARKER``.

    The text look-up prefers an application's text over a marked one
    (texts.*.sql), so a queryid the application runs keeps its rows even when
    pgradar's EXPLAIN or PREPARE of it was recorded under the same queryid;
    only statements that nobody but the agent ran are left out.
    """
    if not own:
        return snapshot
    rows = tuple(r for r in snapshot.rows if (r.dbid, r.queryid) not in own)
    if len(rows) == len(snapshot.rows):
        return snapshot
    return replace(snapshot, rows=rows)


def keep_statement_texts(ctx: JobContext, snapshot: StatementsSnapshot) -> StatementsSnapshot:
    """Texts fetched once per (dbid, queryid), the agent's own statements left out, the interval since the last poll."""
    state = ctx.state
    present_texts = {(r.dbid, r.queryid) for r in snapshot.rows}
    texts = fetch_new_texts(ctx, present_texts)
    previous = state.current().statements
    with state.lock:
        state.texts_fetched_total += len(texts)
        for text in texts:
            state.keep_text((text.dbid, text.queryid), text.query)
        for gone in [k for k in state.statement_texts if k not in present_texts]:
            state.forget_text(gone)
        # The agent's own statements (DESIGN 4) stop here: their texts stay
        # known (never fetched again) but no interval, total, problem or
        # top-statement list sees them.
        snapshot = without_own(snapshot, state.own_statements)
        if previous is not None:
            interval = statement_deltas(previous, snapshot)
            state.statement_totals.add(interval, by_key(snapshot.rows).keys())
            state.statement_intervals.append(interval)
    return StatementsSnapshot(snapshot.taken_at, snapshot.rows, snapshot.info, new_texts=len(texts))


def count_load(ctx: JobContext, sample: LoadSample) -> LoadSample:
    """The sample into the target's load counters and history (``model/load.py``)."""
    with ctx.state.lock:
        ctx.state.load.add(sample)
    return sample


def target_up(ctx: JobContext, snapshot: Any) -> Any:
    """A target without a server collector is up when its one collector read it."""
    with ctx.state.lock:
        ctx.state.up = True
        ctx.state.last_error = None
    return snapshot


def share_rows(key: Callable[[Any], Hashable]) -> After:
    """An after step: rows equal to the last poll's are the last poll's objects (``model/reuse.py``)."""

    def share_unchanged_rows(ctx: JobContext, snapshot: Any) -> Any:
        previous = ctx.state.latest(ctx.collector)
        if previous is None:
            return snapshot
        return snapshot.with_rows(reuse_unchanged(previous.rows(), snapshot.rows(), key))

    return share_unchanged_rows


# --- the registry ---------------------------------------------------------------------------

BY_TABLE = attrgetter("database", "relid")
BY_INDEX = attrgetter("database", "indexrelid")

COLLECTORS: tuple[CollectorSpec, ...] = (
    CollectorSpec("server", collect_server, "reachability, version, role, databases", refreshes_server=True),
    CollectorSpec("activity", collect_activity, "sessions by state and wait"),
    CollectorSpec("database", collect_database, "pg_stat_database, sizes, XID age", after=(with_latest_sizes,)),
    CollectorSpec(
        "statements",
        collect_statements,
        "pg_stat_statements",
        after=(keep_statement_texts,),
    ),
    CollectorSpec(
        "tables",
        collect_tables,
        "pg_stat_user_tables in every database",
        after=(keep_failed_databases, with_latest_sizes, share_rows(BY_TABLE)),
    ),
    CollectorSpec(
        "indexes",
        collect_indexes,
        "pg_stat_user_indexes in every database",
        after=(keep_failed_databases, share_rows(BY_INDEX), record_first_seen),
    ),
    CollectorSpec("settings", collect_settings, "settings classification needs"),
    CollectorSpec(
        "sizes",
        collect_sizes,
        "table and database sizes (file-system calls, so less often)",
        after=(keep_failed_databases, share_rows(BY_TABLE), refill_counters),
    ),
    CollectorSpec(
        "foreign_keys",
        collect_foreign_keys,
        "foreign keys and the indexes that serve them",
        after=(keep_failed_databases,),
    ),
    CollectorSpec("plans", collect_plans, "generic plans of the costliest statements (EXPLAIN), index advice"),
    CollectorSpec("replication", collect_replication, "standbys, slots, WAL receiver and replay"),
    CollectorSpec("sessions", collect_sessions, "connections, idle transactions, long statements, locks"),
    CollectorSpec("auto_explain", collect_auto_explain, "auto_explain plans from the server log, if named"),
    CollectorSpec(
        "explain_analyze",
        collect_explain_analyze,
        "EXPLAIN ANALYZE of parameterless top reads on a standby, if turned on",
    ),
    CollectorSpec(
        "load",
        collect_load,
        "database load: active sessions by wait event and statement, sampled (own session)",
        after=(count_load,),
    ),
    CollectorSpec(
        "pgbouncer",
        collect_pgbouncer,
        "pgbouncer's admin console: SHOW POOLS, DATABASES, STATS, CONFIG",
        target_kind=PGBOUNCER,
        after=(target_up,),
        needs_server=False,
    ),
    CollectorSpec(
        "vacuum", collect_vacuum, "who holds the xmin horizon back: sessions, prepared xacts, slots, standbys"
    ),
    CollectorSpec("bloat", collect_bloat, "table bloat: estimated from pg_stats, measured (pgstattuple) on candidates"),
)


def spec(name: str) -> CollectorSpec:
    return next(c for c in COLLECTORS if c.name == name)


def names_for(kind: str) -> tuple[str, ...]:
    """The collectors a target of this kind runs, in the registry's order."""
    return tuple(c.name for c in COLLECTORS if c.target_kind == kind)
