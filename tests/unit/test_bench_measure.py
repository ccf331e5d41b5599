"""The benchmark's pure parts: exposition parsing, targets, the table (bench/measure.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "measure.py"
_SPEC = importlib.util.spec_from_file_location("bench_measure", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
measure = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_measure"] = measure  # dataclasses look their module up by name
_SPEC.loader.exec_module(measure)

OPENMETRICS = """\
# HELP pgradar_up 1 when the last attempt to reach the target's server succeeded.
# TYPE pgradar_up gauge
pgradar_up{target="main"} 1.0
# TYPE pgradar_collector_last_success_timestamp_seconds gauge
pgradar_collector_last_success_timestamp_seconds{collector="statements",target="main"} 1.7637e+09
pgradar_collector_last_success_timestamp_seconds{collector="indexes",target="main"} 0.0
pgradar_table_live_rows{database="app",relation="we\\"ird, {name}",schema="s 1",target="main"} 42.0
go_goroutines 12
# EOF
"""


def test_parse_samples_reads_names_labels_and_values() -> None:
    samples = measure.parse_samples(OPENMETRICS)
    assert len(samples) == 5 == measure.series_count(OPENMETRICS)
    assert samples[0] == ("pgradar_up", {"target": "main"}, 1.0)
    assert samples[3] == (
        "pgradar_table_live_rows",
        {"database": "app", "relation": 'we"ird, {name}', "schema": "s 1", "target": "main"},
        42.0,
    )
    assert samples[4] == ("go_goroutines", {}, 12.0)
    assert measure.sample(
        samples, "pgradar_collector_last_success_timestamp_seconds", collector="statements"
    ) == pytest.approx(1.7637e9)
    assert measure.sample(samples, "pgradar_missing") is None


def test_collectors_succeeded_needs_a_timestamp() -> None:
    assert measure.collectors_succeeded(measure.parse_samples(OPENMETRICS)) == {"statements": True, "indexes": False}


def _rows(ours: dict, peer: dict, new: int | None = 5) -> dict:
    return {r.key: r for r in measure.evaluate(ours, peer, new)}


def test_targets_pass_at_the_limit_and_fail_above() -> None:
    rows = _rows(
        {
            "scrape_latency_median_s": 0.01,
            "series": 11.0,
            "peak_rss_bytes": 60.0,
            "first_complete_pass_s": 60.0,
            "texts_after_first_poll": 5.0,
        },
        {"scrape_latency_median_s": 1.0, "series": 100.0, "peak_rss_bytes": 100.0},
    )
    assert rows["scrape_latency_median_s"].passed is True
    assert rows["scrape_latency_median_s"].ratio == pytest.approx(0.01)
    assert rows["series"].passed is False
    assert rows["peak_rss_bytes"].passed is True
    assert rows["first_complete_pass_s"].passed is True
    assert rows["texts_after_first_poll"].passed is True
    assert rows["scrape_latency_max_s"].passed is None  # informational


def test_unmeasured_figures_are_neither_pass_nor_fail() -> None:
    rows = _rows({"agent_cpu_s_per_min": 1.0, "texts_after_first_poll": 6.0}, {"agent_cpu_s_per_min": 0.0}, new=None)
    assert rows["agent_cpu_s_per_min"].ratio is None and rows["agent_cpu_s_per_min"].passed is None
    assert rows["first_complete_pass_s"].passed is None
    assert rows["texts_after_first_poll"].passed is None
    assert _rows({"texts_after_first_poll": 6.0}, {}, new=5)["texts_after_first_poll"].passed is False


def test_table_prints_every_target_with_its_verdict() -> None:
    text = measure.table(
        measure.evaluate({"series": 10.0, "peak_rss_bytes": 3 * 2**20}, {"series": 100.0, "peak_rss_bytes": 2 * 2**20})
    )
    lines = text.splitlines()
    assert len(lines) == 2 + len(measure.TARGETS)
    series = next(line for line in lines if "series exported" in line)
    assert "10.0%" in series and "pass" in series
    rss = next(line for line in lines if "peak RSS" in line)
    assert "3.0 MiB" in rss and "FAIL" in rss


def test_growth_divides_full_by_small() -> None:
    small = {
        "catalog": {"tables": 200, "statements": 400},
        "agents": {"pgradar": {"series": 1000.0, "agent_cpu_s_per_min": 0.5}},
    }
    full = {
        "catalog": {"tables": 2600, "statements": 5000},
        "agents": {"pgradar": {"series": 2000.0, "agent_cpu_s_per_min": 2.0}},
    }
    rows = {name: r for name, _, _, r in measure.growth(small, full)}
    assert rows["catalog tables"] == pytest.approx(13)
    assert rows["pgradar series"] == pytest.approx(2)
    assert rows["pgradar agent_cpu_s_per_min"] == pytest.approx(4)
    assert rows["pgradar peak_rss_bytes"] is None
    assert "x13.00" in measure.growth_table(measure.growth(small, full))


def test_steady_span_is_whole_cycles_of_the_longest_interval_from_minute_two() -> None:
    assert measure.steady_span(1000.0, 1600.0) == (1120.0, 1420.0)  # a 600 s window: one 300 s cycle
    assert measure.steady_span(1000.0, 1720.0) == (1120.0, 1720.0)  # 720 s: two cycles
    assert measure.steady_span(1000.0, 1300.0) == (1120.0, None)  # too short to hold one cycle


def test_per_object_cost_holds_its_goal_in_the_growth_table() -> None:
    assert measure.per_thousand(0.05, 2000, scale=1000.0) == pytest.approx(25.0)
    assert measure.per_thousand(None, 2000) is None and measure.per_thousand(1.0, 0) is None
    key = "steady_db_backend_cpu_ms_per_min_per_1000_objects"

    def result(tables: int, cost: float) -> dict:
        return {"catalog": {"tables": tables}, "agents": {"pgradar": {key: cost}}}

    near = measure.growth_table(measure.growth(result(200, 10.0), result(2600, 14.0)))
    far = measure.growth_table(measure.growth(result(200, 10.0), result(2600, 16.0)))
    spread = measure.growth_table(measure.growth(result(200, 10.0), result(2600, 2.0)))  # a fixed cost spread out
    assert "<= x1.5: pass" in next(line for line in near.splitlines() if key in line)
    assert "<= x1.5: FAIL" in next(line for line in far.splitlines() if key in line)
    assert "<= x1.5: pass" in next(line for line in spread.splitlines() if key in line)


def test_series_by_family_counts_sample_lines_most_first() -> None:
    text = 'a{x="1"} 1\na{x="2"} 2\n# HELP b b\nb 3\nc_total{y="1"} 4\nc_total{y="2"} 5\nc_total{y="3"} 6\n'
    assert measure.series_by_family(text) == {"c_total": 3, "a": 2, "b": 1}
    assert list(measure.series_by_family(text, top=1)) == ["c_total"]


def test_lateness_of_reads_one_collectors_gauge_for_every_target() -> None:
    text = (
        'pgradar_collector_lateness_seconds{collector="load",target="a"} 0.25\n'
        'pgradar_collector_lateness_seconds{collector="load",target="b"} 1.5\n'
        'pgradar_collector_lateness_seconds{collector="tables",target="a"} 9.0\n'
    )
    assert sorted(measure.lateness_of(text, "load")) == [0.25, 1.5]
    assert measure.lateness_of(text, "vacuum") == []
