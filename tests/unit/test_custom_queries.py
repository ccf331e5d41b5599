"""Custom SQL collectors without a server: reading both formats, naming, validation, rows into series.

The fixture is postgres_exporter's example queries.yaml in its documented format; the names and
label keys expected here are the ones postgres_exporter 0.11 gives for it (the integration test
compares them with the real exporter on a real server).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pgradar.agent.derive import custom_series as series
from pgradar.agent.model import custom_queries as model
from pgradar.agent.settings import custom_queries as custom
from pgradar.agent.settings.config import ConfigError, Overrides, build
from pgradar.agent.settings.custom_checks import check_set
from pgradar.commands.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "custom_queries" / "queries.yaml"
DSN = "postgresql://pgradar@db-0:5432/postgres"
DEFAULTS = custom.Defaults()

TABLE_LABELS = ("target", "server", "datname", "schemaname", "relname")
EXPECTED = {  # metric -> label keys, for the example file
    "pg_replication_lag": ("target", "server"),
    "pg_postmaster_start_time_seconds": ("target", "server"),
    **{
        f"pg_stat_user_tables_{c}": TABLE_LABELS
        for c in (
            "seq_scan",
            "seq_tup_read",
            "idx_scan",
            "idx_tup_fetch",
            "n_tup_ins",
            "n_tup_upd",
            "n_tup_del",
            "n_tup_hot_upd",
            "n_live_tup",
            "n_dead_tup",
            "n_mod_since_analyze",
            "last_vacuum",
            "last_autovacuum",
            "last_analyze",
            "last_autoanalyze",
            "vacuum_count",
            "autovacuum_count",
            "analyze_count",
            "autoanalyze_count",
        )
    },
    **{
        f"pg_statio_user_tables_{c}": TABLE_LABELS
        for c in (
            "heap_blks_read",
            "heap_blks_hit",
            "idx_blks_read",
            "idx_blks_hit",
            "toast_blks_read",
            "toast_blks_hit",
            "tidx_blks_read",
            "tidx_blks_hit",
        )
    },
    "pg_process_idle_seconds": ("target", "server", "application_name"),
    "pg_settings_checkpoint_timeout_milliseconds": ("target", "server", "name"),
    "pg_database_state_state": ("target", "server", "datname"),
    "pg_future_only_one": ("target", "server"),
}


def example() -> list[model.CustomQuery]:
    data, problems = custom.read_file(str(FIXTURE))
    assert problems == []
    queries, errors = custom.parse_source(data, "queries.yaml", DEFAULTS)
    assert errors == []
    return queries


def test_the_example_file_keeps_postgres_exporter_names_and_label_keys() -> None:
    queries = example()
    made = {c.metric: (*q.extra_labels, *q.labels) for q in queries for c in q.columns if c.metric}
    assert {m: set(labels) for m, labels in made.items()} == {m: set(labels) for m, labels in EXPECTED.items()}
    by_name = {q.name: q for q in queries}
    assert by_name["pg_stat_user_tables"].column("seq_scan").kind == "untyped"  # a counter without _total
    assert by_name["pg_stat_user_tables"].column("n_live_tup").kind == "gauge"
    assert by_name["pg_settings_checkpoint"].interval_s == 30  # cache_seconds
    assert by_name["pg_replication"].interval_s == model.DEFAULT_INTERVAL_S
    assert by_name["pg_settings_checkpoint"].column("unused").metric == ""  # DISCARD
    assert dict(by_name["pg_database_state"].column("state").mapping) == {"open": 1.0, "closed": 0.0}
    assert not by_name["pg_future_only"].versions.contains(model.server_semver(180001))
    assert by_name["pg_database_state"].versions.contains(model.server_semver(130023))
    assert all(q.databases is None and q.exporter_format for q in queries)  # the DSN's database, like master: true


def test_native_names_follow_the_exporter_conventions() -> None:
    queries, errors = custom.parse_native(
        [
            {
                "name": "orders",
                "prefix": "app_",
                "sql": "SELECT 1",
                "databases": "all",
                "on": "primary",
                "server_version": ">=14",
                "interval": 30,
                "timeout": 2,
                "max_series": 10,
                "columns": [
                    {"name": "status", "usage": "label"},
                    {"name": "backlog", "usage": "gauge", "help": "Orders waiting"},
                    {"name": "shipped", "usage": "counter", "help": "Orders shipped"},
                    {"name": "sent", "usage": "counter", "unit": "kB", "help": "Data sent"},
                    {"name": "wait", "usage": "duration", "help": "Oldest wait"},  # milliseconds by default
                    {"name": "age_seconds", "usage": "duration", "unit": "s", "help": "Age"},
                    {"name": "size", "usage": "gauge", "unit": "bytes", "help": "Size"},
                    {"name": "health", "usage": "mapped", "mapping": {"ok": 1, "bad": 0}, "help": "Health"},
                    {"name": "note", "usage": "discard"},
                ],
            }
        ],
        "config",
        DEFAULTS,
    )
    assert errors == []
    (q,) = queries
    assert q.metric_names() == (
        "app_orders_backlog",
        "app_orders_shipped_total",
        "app_orders_sent_bytes_total",
        "app_orders_wait_seconds",
        "app_orders_age_seconds",
        "app_orders_size_bytes",
        "app_orders_health",
    )
    assert q.extra_labels == ("target", "database") and q.every_database
    assert q.column("wait").scale == 0.001 and q.column("sent").scale == 1024
    assert (q.interval_s, q.timeout_s, q.on, q.max_series) == (30, 2, "primary", 10)


def _native(**overrides: object) -> dict[str, object]:
    query: dict[str, object] = {
        "name": "q",
        "sql": "SELECT 1 AS n",
        "columns": [{"name": "n", "usage": "gauge", "help": "n"}],
    }
    query.update(overrides)
    return query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            _native(columns=[{"name": "n", "usage": "guage", "help": "n"}]),
            "config: query q.columns.n.usage: unknown usage 'guage'",
        ),
        (
            _native(
                columns=[{"name": "n", "usage": "gauge", "help": "x"}, {"name": "n", "usage": "counter", "help": "y"}]
            ),
            "config: query q: column 'n' is listed twice",
        ),
        (_native(name="bad-name"), "config: custom_queries[0].name: 'bad-name' is not a name"),
        (_native(columns=[{"name": "n-1", "usage": "gauge", "help": "n"}]), "makes 'q_n-1', not a valid metric name"),
        (
            _native(columns=[{"name": "target", "usage": "label"}, {"name": "n", "usage": "gauge", "help": "n"}]),
            "config: query q: label column 'target' collides with the label pgradar adds",
        ),
        (
            _native(
                databases=["app"],
                columns=[{"name": "database", "usage": "label"}, {"name": "n", "usage": "gauge", "help": "n"}],
            ),
            "label column 'database' collides",
        ),
        (_native(prefix="pgradar_"), "in pgradar's own namespace"),
        (_native(columns=[{"name": "n", "usage": "gauge"}]), "config: query q.columns.n.help: missing"),
        (_native(timeout=30), "config: query q.timeout: 30s is above the sessions' statement_timeout (10s"),
        (_native(interval=0), "config: query q.interval: expected a positive number, got 0"),
        (_native(on="replica"), "config: query q.on: expected one of primary, standby, any"),
        (_native(server_version=">=fourteen"), "config: query q.server_version: '>=fourteen' is not a version"),
        (_native(colums=[]), "config: query q.colums: unknown key"),
        (
            _native(columns=[{"name": "n", "usage": "duration", "unit": "parsecs", "help": "n"}]),
            "config: query q.columns.n.unit: unknown unit 'parsecs'",
        ),
        (_native(columns=[{"name": "n", "usage": "mapped", "help": "n"}]), "config: query q.columns.n.mapping:"),
        (_native(columns=[{"name": "n", "usage": "label"}]), "config: query q: no column is a metric"),
    ],
)
def test_a_bad_native_query_is_one_line_naming_query_key_and_problem(query: dict[str, object], expected: str) -> None:
    queries, errors = custom.parse_native([query], "config", DEFAULTS)
    assert queries == []
    assert any(expected in e for e in errors), errors
    assert all("\n" not in e for e in errors)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "pg_x:\n  query: SELECT 1 AS a\n  metrics:\n    - a: {usage: GUAGE}\n",
            "bad.yaml: query pg_x.metrics.a.usage: unknown usage 'GUAGE'",
        ),
        (
            "pg_x:\n  query: SELECT 1 AS a\n  metrics:\n    - a: {usage: gauge}\n",
            "bad.yaml: query pg_x.metrics.a.usage: unknown usage 'gauge' (known: LABEL, GAUGE, COUNTER, DURATION, "
            "MAPPEDMETRIC, HISTOGRAM, DISCARD) (postgres_exporter takes upper case only and dropped this column)",
        ),
        (
            "pg_x:\n  query: SELECT 'a' AS a\n  metrics:\n    - a: {usage: MAPPEDMETRIC}\n",
            "bad.yaml: query pg_x.metrics.a.mapping: a mapped column needs mapping:",
        ),
        (
            "pg_x:\n  query: SELECT 1 AS a\n  metrics:\n    - a: {usage: GAUGE}\n    - a: {usage: COUNTER}\n",
            "bad.yaml: query pg_x: column 'a' is listed twice",
        ),
        (
            "pg-x:\n  query: SELECT 1 AS a\n  metrics:\n    - a: {usage: GAUGE}\n",
            "bad.yaml: query 'pg-x': not a valid metric name prefix",
        ),
        (
            "pg_x:\n  query: SELECT 1 AS a, 'b' AS server\n  metrics:\n    - server: {usage: LABEL}\n"
            "    - a: {usage: GAUGE}\n",
            "bad.yaml: query pg_x: label column 'server' collides",
        ),
        (
            "pg_x:\n  query: SELECT 1 AS a\n  runonserver: '>=ten'\n  metrics:\n    - a: {usage: GAUGE}\n",
            "bad.yaml: query pg_x.runonserver: '>=ten' is not a version comparison",
        ),
        (
            "pg_x:\n  query: SELECT 1 AS a\n  cache_seconds: soon\n  metrics:\n    - a: {usage: GAUGE}\n",
            "bad.yaml: query pg_x.cache_seconds: expected a whole number of seconds",
        ),
        (
            "pg_x:\n  querry: SELECT 1 AS a\n  metrics:\n    - a: {usage: GAUGE}\n",
            "bad.yaml: query pg_x.querry: unknown key",
        ),
        (
            "pg_x:\n  query: SELECT 1\npg_x:\n  query: SELECT 2\n",
            "bad.yaml: not valid YAML at line 3: the key 'pg_x' is given twice",
        ),
        ("- [1\n", "bad.yaml: not valid YAML"),
        ("42\n", "bad.yaml: expected a list of queries (pgradar) or a mapping of queries (postgres_exporter)"),
    ],
)
def test_a_bad_exporter_file_is_one_line_naming_query_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        build({"targets": [{"dsn": DSN}]}, Overrides(custom_query_files=[str(path)]))
    message = str(err.value).replace(str(tmp_path) + "/", "")
    assert expected in message
    assert "\n" not in message


def test_two_files_cannot_make_the_same_metric(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("pg_x:\n  query: SELECT 1 AS n\n  metrics:\n    - n: {usage: GAUGE}\n")
    with pytest.raises(ConfigError, match="query pg_x: the name is also used in"):
        build(
            {"targets": [{"dsn": DSN}]},
            Overrides(custom_query_files=[str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]),
        )


def test_config_takes_inline_queries_and_files_and_the_session_timeout_bounds_them(tmp_path: Path) -> None:
    cfg = build(
        {
            "targets": [{"dsn": DSN}],
            "timeouts": {"statement_ms": 3000},
            "custom_queries": [_native(name="inline"), {"file": str(FIXTURE)}],
        }
    )
    names = [q.name for q in cfg.custom_queries]
    assert names[0] == "inline" and "pg_stat_user_tables" in names
    assert all(q.timeout_s == 3 for q in cfg.custom_queries)  # default 5 s, never above statement_timeout
    with pytest.raises(ConfigError, match=r"custom_queries\[0\]: a file entry takes only file: \(got file, sql\)"):
        build({"targets": [{"dsn": DSN}], "custom_queries": [{"file": str(FIXTURE), "sql": "SELECT 1"}]})
    with pytest.raises(ConfigError, match=r"custom_queries: expected a list"):
        build({"targets": [{"dsn": DSN}], "custom_queries": {"name": "x"}})


def test_cli_bad_file_exits_2_with_one_line_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("pg_x:\n  query: SELECT 1 AS a\n  metrics:\n    - a: {usage: GAUGES}\n")
    # An address nothing listens on: the error must come from the file, not from a connection attempt.
    code = main(["check", "--dsn", "postgresql://u@127.0.0.1:1/db", "--custom-queries", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("pgradar: error: ")
    assert "query pg_x.metrics.a.usage: unknown usage 'GAUGES'" in err


@pytest.mark.parametrize(
    ("text", "version", "inside"),
    [
        (">=10.0.0", (13, 23, 0), True),
        (">=9.6.0 <10.0.0", (13, 23, 0), False),
        (">=9.6.0 <10.0.0", (9, 6, 20), True),
        ("<10 || >=14", (13, 0, 0), False),
        ("<10 || >=14", (18, 1, 0), True),
        ("13.23.0", (13, 23, 0), True),
        ("!=13", (13, 0, 0), False),
    ],
)
def test_version_ranges(text: str, version: tuple[int, int, int], inside: bool) -> None:
    assert custom.parse_range(text).contains(version) is inside


def test_server_versions_as_semver() -> None:
    assert model.server_semver(130023) == (13, 23, 0)
    assert model.server_semver(180001) == (18, 1, 0)
    assert model.server_semver(90620) == (9, 6, 20)


def _query(**overrides: object) -> model.CustomQuery:
    queries, errors = custom.parse_native([_native(**overrides)], "config", DEFAULTS)
    assert errors == []
    return queries[0]


def test_a_flood_of_label_sets_is_capped_and_counted() -> None:
    q = _query(
        sql="x",
        max_series=1000,
        columns=[{"name": "k", "usage": "label"}, {"name": "n", "usage": "gauge", "help": "n"}],
    )
    rows = model.Rows("app", ("k", "n"), tuple((str(i), i) for i in range(50_000)))
    out = series.to_series(q, [rows], "t")
    assert out.series == 1000 and out.dropped == 49_000
    (family,) = out.families
    assert len(family.samples) == 1000 and family.samples[0] == (("t", "0"), 0.0)


def test_a_repeated_label_set_keeps_the_first_row_and_counts() -> None:
    q = _query(columns=[{"name": "k", "usage": "label"}, {"name": "n", "usage": "gauge", "help": "n"}])
    out = series.to_series(q, [model.Rows("app", ("k", "n"), (("a", 1), ("a", 2), ("b", 3)))], "t")
    assert out.duplicates == 1
    assert out.families[0].samples == ((("t", "a"), 1.0), (("t", "b"), 3.0))


def test_values_are_read_as_postgres_exporter_reads_them() -> None:
    q = _query(
        databases=["app", "other"],
        columns=[
            {"name": "k", "usage": "label"},
            {"name": "g", "usage": "gauge", "help": "g"},
            {"name": "d", "usage": "duration", "help": "d"},
            {"name": "m", "usage": "mapped", "help": "m", "mapping": {"on": 1}},
        ],
    )
    when = datetime(2026, 1, 1, tzinfo=UTC)
    out = series.to_series(
        q,
        [
            model.Rows(
                "app",
                ("k", "g", "d", "m", "extra"),
                ((None, when, 1500, "on", 1), ("x", None, timedelta(seconds=2), "off", 1), ("y", "nope", 1, None, 1)),
            ),
            model.Rows("other", ("k", "g", "d", "m"), ((True, 1, 1, "on"),)),
        ],
        "t",
    )
    values = {f.name: dict(f.samples) for f in out.families}
    assert values["q_g"] == {("t", "app", ""): when.timestamp(), ("t", "other", "true"): 1.0}
    assert values["q_d_seconds"][("t", "app", "")] == 1.5 and values["q_d_seconds"][("t", "app", "x")] == 2.0
    assert values["q_m"] == {("t", "app", ""): 1.0, ("t", "other", "true"): 1.0}  # 'off' is not mapped: left out
    assert any("'nope'" in p for p in out.problems) and any("extra" in p for p in out.problems)


def test_exporter_format_durations_unknown_columns_and_histograms() -> None:
    by_name = {q.name: q for q in example()}
    out = series.to_series(
        by_name["pg_settings_checkpoint"],
        [model.Rows("postgres", ("name", "timeout", "unused", "surprise"), (("checkpoint_timeout", "300s", 1, 7),))],
        "t",
        "db:5432",
    )
    values = {f.name: (f.kind, dict(f.samples)) for f in out.families}
    key = ("t", "db:5432", "checkpoint_timeout")
    assert values["pg_settings_checkpoint_timeout_milliseconds"] == ("gauge", {key: 300_000.0})
    assert values["pg_settings_checkpoint_surprise"] == ("untyped", {key: 7.0})  # unlisted: untyped, as there
    assert "pg_settings_checkpoint_unused" not in values
    assert series.duration_ms("1m30s") == 90_000 and series.duration_ms("-1") is None
    assert series.duration_ms("soon") is None
    hist = series.to_series(
        by_name["pg_process_idle"],
        [
            model.Rows(
                "postgres",
                ("application_name", "seconds_sum", "seconds_count", "seconds", "seconds_bucket"),
                (("psql", 12.0, 3, [1, 5], [1, 2]),),
            )
        ],
        "t",
        "db:5432",
    )
    (family,) = hist.families
    assert family.kind == "histogram"
    assert family.samples == ((("t", "db:5432", "psql"), ((("1.0", 1.0), ("5.0", 2.0), ("+Inf", 3.0)), 12.0)),)


def test_a_counter_and_a_gauge_cannot_share_a_family_name() -> None:
    a = _query(name="a", columns=[{"name": "x", "usage": "counter", "help": "x"}])  # a_x_total, family a_x
    c = model.CustomQuery("b", "SELECT 1", (model.Column("n", "gauge", "n", "a_x"),), "other")
    errors = check_set([a, c])
    assert errors and "metric a_x is also made by query a" in errors[0]


def test_a_file_in_pgradars_format_as_a_list_or_under_custom_queries(tmp_path: Path) -> None:
    for name, data in (("list.yaml", [_native(name="a")]), ("keyed.yaml", {"custom_queries": [_native(name="b")]})):
        (tmp_path / name).write_text(yaml.safe_dump(data))
    cfg = build(
        {"targets": [{"dsn": DSN}]},
        Overrides(custom_query_files=[str(tmp_path / "list.yaml"), str(tmp_path / "keyed.yaml")]),
    )
    assert [(q.name, q.exporter_format, q.metric_names()) for q in cfg.custom_queries] == [
        ("a", False, ("a_n",)),
        ("b", False, ("b_n",)),
    ]
