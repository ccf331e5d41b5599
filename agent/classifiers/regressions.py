"""plan_regression: a statement whose plan shape changed and whose mean time rose with it.

The plans collector keeps, per statement, the current plan shape and the
previous distinct one, each with the calls and execution time counted while
it was in force (``model.plans.PlanShape``); this module compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pgradar.agent.model.catalog import IndexesSnapshot, IndexStat
from pgradar.agent.model.findings import Finding, Kind, Severity, evidence_text, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import PlanIndex, PlanShape, PlansSnapshot, StatementPlan
from pgradar.agent.model.thresholds import Thresholds

_CREATE_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX ")


def _table(schema: str | None, relation: str) -> str:
    return qualified(schema, relation) if schema else quote_ident(relation)


def recreate_sql(index: PlanIndex) -> str:
    """The CREATE INDEX that brings back an index the old plan used (CONCURRENTLY where allowed)."""
    if index.definition is None:
        return (
            f"-- the old plan used index {_table(index.schema, index.index)} on "
            f"{_table(index.schema, index.relation)}, which no longer exists; pgradar never saw its definition: "
            f"recreate it as it was (CREATE INDEX CONCURRENTLY {quote_ident(index.index)} ON "
            f"{_table(index.schema, index.relation)} (...);)"
        )
    if " ON ONLY " in index.definition:  # a partitioned table's own index: CONCURRENTLY is not supported
        return index.definition + ";"
    return _CREATE_INDEX.sub(lambda m: f"CREATE {m[1] or ''}INDEX CONCURRENTLY ", index.definition, count=1) + ";"


def _definition(obs: Observation, database: str, index: PlanIndex) -> PlanIndex:
    """The index with a definition from any kept indexes snapshot, when planning did not record one."""
    if index.definition is not None:
        return index
    history: Sequence[IndexesSnapshot] = obs.history.indexes
    for snapshot in reversed(history):
        for i in snapshot.indexes:
            if (i.database, i.schema, i.index) == (database, index.schema or "public", index.index):
                return PlanIndex(index.schema, index.relation, index.index, i.definition)
    return index


def _fix(obs: Observation, plan: StatementPlan, old: PlanShape, new: PlanShape) -> tuple[str, list[str]]:
    """The recommendation, and the indexes of the old plan that are gone (named in the evidence)."""
    indexes: IndexesSnapshot | None = obs.snapshots.indexes
    now_used = {(i.schema, i.index) for i in new.indexes}
    lines: list[str] = []
    gone: list[str] = []
    if indexes is not None and not indexes.failed_databases:
        present: dict[tuple[str, str], IndexStat] = {
            (i.schema, i.index): i for i in indexes.indexes if i.database == plan.database
        }
        for used in old.indexes:
            if (used.schema, used.index) in now_used:
                continue
            found = present.get((used.schema or "public", used.index))
            name = _table(used.schema, used.index)
            if found is None:
                gone.append(name)
                lines.append(recreate_sql(_definition(obs, plan.database, used)))
            elif not found.is_valid:
                gone.append(name)
                lines.append(f"REINDEX INDEX CONCURRENTLY {name};  -- invalid: the planner cannot use it")
    if lines:
        lines.append("-- the old plan read through it; the new one does without")
        return "\n".join(lines), gone
    tables = list(dict.fromkeys(_table(schema, relation) for schema, relation in new.relations))
    lines = [f"ANALYZE {t};" for t in tables] or ["-- ANALYZE the tables the statement reads"]
    lines.append(
        "-- then, if the planner keeps the new plan: pgradar compared the mean execution time of this "
        "statement under each plan shape (pg_stat_statements), not the plans' costs; look for what moved "
        "the planner (a changed setting such as random_page_cost, effective_cache_size or work_mem, "
        "data growth, a new column statistic) and check the statement with EXPLAIN (ANALYZE, BUFFERS)"
    )
    return "\n".join(lines), gone


def plan_regression(obs: Observation, t: Thresholds) -> Iterable[Finding]:
    """A statement whose plan shape changed and whose mean time rose by ``plan_regression_factor``.

    Rule: the statement has a previous distinct plan shape, both shapes
    were in force for at least ``plan_regression_min_calls`` calls (counted
    from pg_stat_statements while each was the planned one), and its mean
    execution time under the new shape is at least
    ``plan_regression_factor`` times that under the old one and at least
    ``plan_regression_min_ms``. The new shape's mean is over its latest
    counted stretch when that had ``plan_regression_min_calls`` calls (a
    recovery shows at once), else over all the time since the change.
    Critical at ``plan_regression_critical_factor``. The finding goes away
    when the old shape comes back (it becomes the new one, and is faster)
    or the mean time drops back.
    Evidence: both shapes (compact text and hash), both costs, both mean
    times, calls under each, when each was seen.
    Fix: when an index the old plan read is gone (or invalid), the CREATE
    INDEX that recreates it (its definition as pgradar saw it); else
    ANALYZE of the new plan's tables and what to look at in the settings.
    """
    plans: PlansSnapshot | None = obs.snapshots.plans
    if plans is None:
        return
    for plan in plans.plans:
        old, new = plan.previous_shape, plan.current_shape
        if old is None or new is None or old.shape_hash == new.shape_hash:
            continue
        old_mean, whole_mean = old.mean_exec_ms, new.mean_exec_ms
        if (
            old_mean is None
            or whole_mean is None
            or old.calls < t.plan_regression_min_calls
            or new.calls < t.plan_regression_min_calls
        ):
            continue
        recent = new.recent_mean_exec_ms if new.recent_calls >= t.plan_regression_min_calls else None
        new_mean = recent if recent is not None else whole_mean
        factor = new_mean / max(old_mean, 1e-6)
        if factor < t.plan_regression_factor or new_mean < t.plan_regression_min_ms:
            continue
        severity: Severity = Severity.CRITICAL if factor >= t.plan_regression_critical_factor else Severity.WARNING
        fix, gone = _fix(obs, plan, old, new)
        evidence: dict[str, Any] = {
            "old_shape": old.shape,
            "new_shape": new.shape,
            "old_cost": old.total_cost,
            "new_cost": new.total_cost,
            "old_mean_exec_ms": round(old_mean, 3),
            "new_mean_exec_ms": round(new_mean, 3),
            "new_mean_exec_ms_since_change": round(whole_mean, 3),
            "factor": round(factor, 2),
            "old_calls": old.calls,
            "new_calls": new.calls,
            "old_seen": [old.first_seen.isoformat(), old.last_seen.isoformat()],
            "new_since": new.first_seen.isoformat(),
            "old_shape_hash": old.shape_hash,
            "new_shape_hash": new.shape_hash,
            "indexes_gone": gone,
            "query": evidence_text(obs.statement_texts.get((plan.dbid, plan.queryid))),
        }
        yield Finding(
            Kind.PLAN_REGRESSION,
            severity,
            obs.target,
            summary=(
                f"statement {plan.queryid}: the plan changed from {_clip(old.shape)} to {_clip(new.shape)} and "
                f"its mean time rose {factor:.1f}x ({old_mean:.3g} ms over {old.calls} calls -> "
                f"{new_mean:.3g} ms over {new.calls if recent is None else new.recent_calls} calls)"
            ),
            recommendation=fix,
            evidence=evidence,
            database=plan.database,
            queryid=str(plan.queryid),
        )


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


CLASSIFIERS = (plan_regression,)
