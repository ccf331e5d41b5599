"""Per-table and per-index series are bounded: the most active N, plus every one a problem names."""

from dataclasses import replace
from datetime import timedelta

import factories
import pytest
from factories import T0

from pgradar.agent.model.catalog import IndexesSnapshot, IndexStat, TablesSnapshot, TableStat
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.agent.settings import config as configuration
from pgradar.exporters.prometheus import registry_for
from pgradar.exporters.series import rank_rows, top_with


def table(name: str, reads: int, size: int = 8192) -> TableStat:
    """A table whose only activity is ``reads`` rows read sequentially."""
    return factories.table(
        name, rows=0, relid=hash(name) % 10_000, size_bytes=size, seq_tup_read=reads, idx_scan=0, idx_tup_fetch=0
    )


def index(name: str, scans: int) -> IndexStat:
    return factories.index(
        name, ["a"], relation="t0", indexrelid=1, relid=1, idx_scan=scans, size_bytes=8192, definition=""
    )


def key(r: TableStat) -> str:
    return r.relation


def pick_top(now: list[TableStat], before: list[TableStat] | None, n: int, keep: set[str]) -> list[TableStat]:
    return top_with(rank_rows(now, before, key, lambda r: r.seq_tup_read, lambda r: r.size_bytes), n, key, keep)


def test_pick_top_ranks_by_activity_since_the_oldest_snapshot_then_size() -> None:
    before = [
        table("busy_long_ago", 1_000_000),
        table("busy_now", 10),
        table("big_idle", 0, size=10**9),
        table("small_idle", 0),
    ]
    now = [
        table("busy_long_ago", 1_000_000),
        table("busy_now", 500),
        table("big_idle", 0, size=10**9),
        table("small_idle", 0),
        table("new", 50),
    ]
    picked = pick_top(now, before, 3, keep=set())
    assert [r.relation for r in picked] == ["busy_now", "new", "big_idle"]
    # without history, counters since the last reset rank
    picked = pick_top(now, None, 2, keep=set())
    assert [r.relation for r in picked] == ["busy_long_ago", "busy_now"]


def test_pick_top_keeps_named_rows_and_counts_a_reset_as_it_stands() -> None:
    before = [table("a", 100), table("b", 1_000)]
    now = [table("a", 150), table("b", 70), table("c", 0)]  # b was reset: 70 since then beats a's 50
    picked = pick_top(now, before, 1, keep={"c"})
    assert [r.relation for r in picked] == ["b", "c"]
    assert sorted(pick_top(now, before, 5, keep=set()), key=key) == now


def state_with_relations(tables: int, indexes: int) -> AgentState:
    t = TargetState("main")
    rows = [table(f"t{i}", 0) for i in range(tables)]
    t.record("tables", TablesSnapshot(T0, tuple(rows)))
    busier = [replace(r, seq_tup_read=i) for i, r in enumerate(rows)]  # t{n-1} is the busiest
    t.record("tables", TablesSnapshot(T0 + timedelta(minutes=1), tuple(busier)))
    t.record("indexes", IndexesSnapshot(T0, tuple(index(f"i{i}", i) for i in range(indexes))))
    finding = Finding(
        Kind.UNUSED_INDEX,
        Severity.WARNING,
        "main",
        "i0 is never used",
        "DROP INDEX public.i0;",
        database="app",
        schema="public",
        relation="t0",
        index="i0",
    )
    on_table = Finding(
        Kind.STALE_STATS,
        Severity.WARNING,
        "main",
        "t1 was last analyzed long ago",
        "ANALYZE public.t1;",
        database="app",
        schema="public",
        relation="t1",
    )
    t.problems = {finding.id: ActiveProblem(finding, T0, T0), on_table.id: ActiveProblem(on_table, T0, T0)}
    return AgentState({"main": t})


def test_exporter_bounds_table_and_index_series_and_keeps_problem_objects() -> None:
    registry = registry_for(state_with_relations(50, 40), top_statements=5, top_tables=3, top_indexes=2)
    samples = [s for m in registry.collect() for s in m.samples]
    tables = {s.labels["relation"] for s in samples if s.name == "pgradar_table_live_rows"}
    # the three busiest, and t1 whose problem is the table's; t0 only has an index with a problem
    assert tables == {"t49", "t48", "t47", "t1"}
    indexes = {s.labels["index"] for s in samples if s.name == "pgradar_index_scans_total"}
    assert indexes == {"i39", "i38", "i0"}
    assert registry.get_sample_value("pgradar_tables_tracked", {"target": "main"}) == 50
    assert registry.get_sample_value("pgradar_indexes_tracked", {"target": "main"}) == 40


def test_relation_series_all_adds_the_families_no_panel_reads() -> None:
    extra = {
        "pgradar_table_index_scans_total",
        "pgradar_table_rows_inserted_total",
        "pgradar_table_rows_deleted_total",
        "pgradar_index_rows_read_total",
    }

    def names(relation_series: str) -> set[str]:
        state = state_with_relations(5, 4)
        registry = registry_for(state, 5, 3, 2, relation_series=relation_series)
        return {s.name for m in registry.collect() for s in m.samples}

    lean, full = names("dashboards"), names("all")
    assert not lean & extra and extra <= full
    assert full - lean == extra


def test_limits_for_tables_and_indexes_come_from_the_file() -> None:
    dsn = "postgresql://u@db:5432/postgres"
    cfg = configuration.build({"targets": [{"dsn": dsn}], "limits": {"top_tables": 10, "top_indexes": 20}})
    assert (cfg.top_tables, cfg.top_indexes) == (10, 20)
    default = configuration.build({"targets": [{"dsn": dsn}]})
    assert (default.top_tables, default.top_indexes, default.relation_series) == (200, 200, "dashboards")
    every = configuration.build({"targets": [{"dsn": dsn}], "limits": {"relation_series": "all"}})
    assert every.relation_series == "all"
    with pytest.raises(configuration.ConfigError, match=r"limits\.relation_series: expected one of dashboards, all"):
        configuration.build({"targets": [{"dsn": dsn}], "limits": {"relation_series": "some"}})
    with pytest.raises(configuration.ConfigError, match=r"limits\.top_indexes: expected a positive whole number"):
        configuration.build({"targets": [{"dsn": dsn}], "limits": {"top_indexes": 0}})


def test_parted_render_reuses_relation_series_until_their_snapshot_or_problems_change() -> None:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    state = state_with_relations(50, 40)
    registry = registry_for(state, top_statements=5, top_tables=3, top_indexes=2)
    text = "text/plain; version=0.0.4"
    first = registry.render(generate_latest, text)
    assert sorted(first.splitlines()) == sorted(generate_latest(registry).splitlines())  # the same exposition
    encoded = registry.encoded  # blocks encoded so far; a reused block adds nothing
    assert registry.render(generate_latest, text) == first and registry.encoded == encoded  # nothing changed
    t = state.targets["main"]
    t.problems = {}  # the problem on i0 is gone: t0 and i0 are no longer kept
    second = registry.render(generate_latest, text)
    # tables, indexes and problems again; a reused section is never re-encoded
    assert registry.encoded == encoded + 3 and b'index="i0"' in first and b'index="i0"' not in second
    encoded = registry.encoded
    same_rows = replace(t.current().tables, taken_at=T0 + timedelta(minutes=2))
    t.record("tables", same_rows)
    registry.render(generate_latest, text)
    assert registry.encoded == encoded  # the same rows render the same text
    newer = TablesSnapshot(T0 + timedelta(minutes=3), tuple(replace(r, n_live_tup=7) for r in same_rows.tables))
    t.record("tables", newer)
    assert b"pgradar_table_live_rows" in registry.render(generate_latest, text)
    assert registry.encoded == encoded + 1  # new rows render the tables again, nothing else
    om = registry.render(openmetrics, OPENMETRICS)
    assert om.count(b"# EOF") == 1 and om.endswith(b"# EOF\n")
    assert om.count(b"# TYPE pgradar_table_live_rows gauge") == 1
