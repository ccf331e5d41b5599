"""The exporter renders state with names and labels from the catalogue."""

from datetime import UTC, datetime, timedelta

from factories import snap, stat

from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementTotals
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.catalogue import METRICS
from pgradar.exporters.prometheus import registry_for


def state_with_statements(n: int) -> AgentState:
    t = TargetState("main")
    t.up = True
    t.server = ServerInfo(180006, False, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    before = snap(0, *[stat(q, 1, 1.0) for q in range(n)])
    after = snap(1, *[stat(q, 2, 1.0 + q) for q in range(n)])
    t.record("statements", before)
    t.record("statements", after)
    t.statement_totals = StatementTotals.empty()
    interval = statement_deltas(before, after)
    t.statement_totals.add(interval, {r.key for r in after.rows})
    t.statement_intervals.append(interval)
    t.collector("statements").runs = 2
    t.collector("statements").last_success_at = datetime.now(UTC) - timedelta(seconds=5)
    return AgentState({"main": t})


def test_top_n_bounds_per_statement_series() -> None:
    registry = registry_for(state_with_statements(20), top_statements=5)
    calls = [s for m in registry.collect() if m.name == "pgradar_statement_calls" for s in m.samples]
    assert len(calls) == 5
    assert {s.labels["queryid"] for s in calls} == {"15", "16", "17", "18", "19"}
    assert registry.get_sample_value("pgradar_statements_calls_total", {"target": "main", "database": "app"}) == 20
    # The aggregates cover every statement (the rest is the aggregate minus the top N).
    assert (
        registry.get_sample_value("pgradar_statements_shared_blocks_hit_total", {"target": "main", "database": "app"})
        == 20 * 10
    )
    for name in ("pgradar_statements_shared_blocks_read_total", "pgradar_statements_temp_blocks_written_total"):
        assert registry.get_sample_value(name, {"target": "main", "database": "app"}) == 0
    assert registry.get_sample_value("pgradar_up", {"target": "main"}) == 1.0
    assert (
        registry.get_sample_value("pgradar_server_info", {"target": "main", "version": "18.6", "role": "primary"})
        == 1.0
    )
    assert registry.get_sample_value("pgradar_collector_enabled", {"target": "main", "collector": "statements"}) == 1.0


def test_catalogue_follows_naming_rules() -> None:
    for m in METRICS:
        assert m.name.startswith("pgradar_")
        assert (m.kind == "counter") == m.name.endswith("_total"), m.name
        assert "target" in m.labels
        assert "query" not in m.labels  # query text is never a label


def test_plans_are_exported() -> None:
    from factories import T0

    from pgradar.agent.model.plans import PlansSnapshot, StatementPlan
    from pgradar.agent.plans.walker import walk

    state = state_with_statements(1)
    plan = [{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Total Cost": 12.5, "Plan Rows": 3}}]
    state.targets["main"].record(
        "plans",
        PlansSnapshot(
            T0,
            (
                StatementPlan("app", 5, 42, "u", T0, walk(plan)),
                StatementPlan("app", 5, 43, "u", T0, None, skipped="not a plain SELECT: never planned"),
            ),
            True,
            0.25,
        ),
    )
    registry = registry_for(state, top_statements=5)
    assert registry.get_sample_value("pgradar_explain_statements", {"target": "main", "outcome": "planned"}) == 1
    assert registry.get_sample_value("pgradar_explain_statements", {"target": "main", "outcome": "skipped"}) == 1
    assert registry.get_sample_value("pgradar_explain_budget_exhausted", {"target": "main"}) == 1
    assert (
        registry.get_sample_value("pgradar_statement_plan_cost", {"target": "main", "database": "app", "queryid": "42"})
        == 12.5
    )
