"""Plan shapes over time and the plan_regression rule, on hand-built plans (no server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from factories import T0, index, observation, snap, stat

from pgradar.agent.classifiers.regressions import plan_regression, recreate_sql
from pgradar.agent.model.plans import PlanIndex, PlanShape, PlansSnapshot, StatementPlan
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.plans.shapes import count, next_shapes, statement_counters
from pgradar.agent.plans.walker import walk

INDEX_SCAN = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Total Cost": 8.5,
            "Plan Rows": 1,
            "Plans": [
                {
                    "Node Type": "Index Scan",
                    "Relation Name": "orders",
                    "Schema": "public",
                    "Alias": "orders",
                    "Index Name": "orders_customer_idx",
                    "Total Cost": 8.3,
                    "Plan Rows": 1,
                }
            ],
        }
    }
]
SEQ_SCAN = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Total Cost": 1900.0,
            "Plan Rows": 1,
            "Plans": [
                {
                    "Node Type": "Seq Scan",
                    "Relation Name": "orders",
                    "Schema": "public",
                    "Alias": "orders",
                    "Filter": "(customer = $1)",
                    "Total Cost": 1890.0,
                    "Plan Rows": 1,
                }
            ],
        }
    }
]
DEFINITION = "CREATE INDEX orders_customer_idx ON public.orders USING btree (customer)"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_walk_names_the_shape_its_indexes_and_relations() -> None:
    summary = walk(INDEX_SCAN)
    assert summary.shape == "Aggregate (Index Scan on public.orders using orders_customer_idx)"
    assert summary.indexes == (PlanIndex("public", "orders", "orders_customer_idx"),)
    assert summary.relations == (("public", "orders"),)
    assert walk(SEQ_SCAN).shape == "Aggregate (Seq Scan on public.orders)" and walk(SEQ_SCAN).indexes == ()


def test_counting_starts_at_the_first_sighting_and_survives_a_reset() -> None:
    shape = PlanShape("h", "Seq Scan on t", 1.0, T0, T0)
    first = count(shape, (T0, 100, 50.0))
    assert (first.calls, first.exec_ms, first.counted_at) == (0, 0.0, T0)  # where counting starts
    second = count(first, (at(30), 130, 80.0))
    assert (second.calls, second.exec_ms, second.recent_calls, second.recent_exec_ms) == (30, 30.0, 30, 30.0)
    assert count(second, (at(30), 999, 999.0)) is second  # the same snapshot is counted once
    after_reset = count(second, (at(60), 10, 5.0))  # counters went backwards: counted as they stand
    assert (after_reset.calls, after_reset.exec_ms) == (40, 35.0)
    assert count(second, None) is second  # not in pg_stat_statements this time


def test_a_new_shape_keeps_the_old_one_and_a_returning_shape_starts_afresh() -> None:
    idx, seq = walk(INDEX_SCAN), walk(SEQ_SCAN)
    current, previous = next_shapes(None, None, idx, idx.indexes, (T0, 0, 0.0), T0)
    assert previous is None and current is not None and current.shape_hash == idx.shape_hash
    current, previous = next_shapes(current, previous, idx, idx.indexes, (at(60), 30, 3.0), at(60))
    assert previous is None and (current.calls, current.last_seen) == (30, at(60))  # same shape: counting on
    current, previous = next_shapes(current, previous, seq, (), (at(120), 60, 6.0), at(120))
    assert previous is not None and previous.shape_hash == idx.shape_hash and previous.calls == 60
    assert current is not None and current.shape_hash == seq.shape_hash and current.calls == 0
    assert current.first_seen == at(120) and current.counted_at == at(120)
    same, kept = next_shapes(current, previous, None, (), (at(180), 90, 306.0), at(180))  # planning failed
    assert kept is previous and same is not None and same.calls == 30 and same.exec_ms == 300.0
    back, old = next_shapes(same, kept, idx, idx.indexes, (at(240), 90, 306.0), at(240))
    assert old is not None and (old.shape_hash, old.calls, old.recent_calls) == (seq.shape_hash, 30, 0)
    assert back is not None and back.shape_hash == idx.shape_hash and back.calls == 0


def test_statement_counters_sum_users_and_skip_nested() -> None:
    nested = replace(stat(42, 5, 50.0), toplevel=False)
    counters = statement_counters(snap(0, stat(42, 10, 20.0), stat(42, 5, 10.0, userid=11), nested))
    assert counters == {(5, 42): (T0, 15, 30.0)}
    assert statement_counters(None) == {}


def shapes(
    old_calls: int = 40,
    old_ms: float = 0.5,
    new_calls: int = 40,
    new_ms: float = 4.0,
    recent: tuple[int, float] | None = None,
) -> tuple[PlanShape, PlanShape]:
    idx, seq = walk(INDEX_SCAN), walk(SEQ_SCAN)
    used = tuple(replace(i, definition=DEFINITION) for i in idx.indexes)
    old = PlanShape(
        idx.shape_hash, idx.shape, idx.total_cost, T0, at(60), used, idx.relations, old_calls, old_calls * old_ms
    )
    recent_calls, recent_ms = recent if recent else (new_calls, new_calls * new_ms)
    new = PlanShape(
        seq.shape_hash,
        seq.shape,
        seq.total_cost,
        at(120),
        at(120),
        (),
        seq.relations,
        new_calls,
        new_calls * new_ms,
        recent_calls,
        recent_ms,
    )
    return old, new


def judge(old: PlanShape | None, new: PlanShape, indexes: tuple = (), thresholds=DEFAULT) -> list:
    plan = StatementPlan("app", 5, 42, "u", at(120), walk(SEQ_SCAN), current_shape=new, previous_shape=old)
    obs = observation(indexes=indexes, plans=PlansSnapshot(at(120), (plan,)))
    obs = replace(obs, statement_texts={(5, 42): "SELECT count(*) FROM orders WHERE customer = $1"})
    return list(plan_regression(obs, thresholds))


def test_a_slower_new_shape_is_reported_with_both_shapes_and_the_index_to_recreate() -> None:
    (found,) = judge(*shapes())
    assert (found.kind, found.severity, found.database, found.queryid) == ("plan_regression", "warning", "app", "42")
    ev = found.evidence
    assert ev["old_shape"] == "Aggregate (Index Scan on public.orders using orders_customer_idx)"
    assert ev["new_shape"] == "Aggregate (Seq Scan on public.orders)"
    assert (ev["old_cost"], ev["new_cost"], ev["old_mean_exec_ms"], ev["new_mean_exec_ms"]) == (8.5, 1900.0, 0.5, 4.0)
    assert (ev["old_calls"], ev["new_calls"], ev["factor"]) == (40, 40, 8.0)
    assert ev["indexes_gone"] == ["public.orders_customer_idx"]
    assert found.recommendation.splitlines()[0] == (
        "CREATE INDEX CONCURRENTLY orders_customer_idx ON public.orders USING btree (customer);"
    )
    (critical,) = judge(*shapes(new_ms=5.0))  # 10x
    assert critical.severity == "critical"


def test_the_threshold_edges_and_the_negative_cases() -> None:
    assert len(judge(*shapes(new_ms=1.0))) == 1  # exactly 2x, at 1 ms
    assert judge(*shapes(new_ms=0.99)) == []  # under 2x
    assert judge(*shapes(old_ms=0.1, new_ms=0.9)) == []  # 9x, but under plan_regression_min_ms
    assert judge(*shapes(old_calls=19)) == [] and judge(*shapes(new_calls=19)) == []  # too few calls
    assert len(judge(*shapes(old_calls=20, new_calls=20))) == 1
    assert judge(None, shapes()[1]) == []  # one shape only: nothing changed
    old, new = shapes()
    assert judge(replace(old, shape_hash=new.shape_hash), new) == []
    assert judge(new, old) == []  # the old shape came back, and it is the faster one


def test_a_recent_recovery_clears_it_and_too_few_recent_calls_do_not() -> None:
    assert judge(*shapes(recent=(25, 25 * 0.6))) == []  # the latest stretch is back near 0.5 ms
    (found,) = judge(*shapes(recent=(5, 5 * 0.6)))  # five calls decide nothing: the whole stretch counts
    assert found.evidence["new_mean_exec_ms"] == 4.0


def test_fix_when_the_index_is_still_there_or_invalid() -> None:
    present = (index("orders_customer_idx", ["customer"]),)
    (found,) = judge(*shapes(), indexes=present)
    assert found.recommendation.splitlines()[0] == "ANALYZE public.orders;"
    assert "random_page_cost" in found.recommendation and found.evidence["indexes_gone"] == []
    invalid = (index("orders_customer_idx", ["customer"], is_valid=False),)
    (found,) = judge(*shapes(), indexes=invalid)
    assert found.recommendation.startswith("REINDEX INDEX CONCURRENTLY public.orders_customer_idx;")


def test_recreate_sql_without_a_definition_and_for_a_partitioned_table() -> None:
    unknown = recreate_sql(PlanIndex("Sales", "Orders", "Orders_idx"))
    assert unknown.startswith('-- the old plan used index "Sales"."Orders_idx" on "Sales"."Orders"')
    unique = recreate_sql(PlanIndex("public", "t", "t_a", "CREATE UNIQUE INDEX t_a ON public.t USING btree (a)"))
    assert unique == "CREATE UNIQUE INDEX CONCURRENTLY t_a ON public.t USING btree (a);"
    parted = recreate_sql(PlanIndex("public", "p", "p_a", "CREATE INDEX p_a ON ONLY public.p USING btree (a)"))
    assert parted == "CREATE INDEX p_a ON ONLY public.p USING btree (a);"
