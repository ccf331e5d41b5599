"""Custom series on /metrics without a server: the names kept, both exposition formats valid, health shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from pgradar.agent.derive import custom_series as series
from pgradar.agent.model import custom_queries as model
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.custom_runner import CustomRunner, applies, skipped_runs
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings import custom_queries as custom
from pgradar.agent.settings.config import build
from pgradar.exporters.custom import CustomCollector
from pgradar.exporters.prometheus import PartedRegistry

FIXTURE = Path(__file__).parent / "fixtures" / "custom_queries" / "queries.yaml"
DSN = "postgresql://pgradar@db-0:6543/postgres"


def runner() -> CustomRunner:
    cfg = build(
        {
            "targets": [{"name": "primary", "dsn": DSN}],
            "custom_queries": [
                {"file": str(FIXTURE)},
                {
                    "name": "orders",
                    "prefix": "app_",
                    "sql": "SELECT 1",
                    "columns": [
                        {"name": "status", "usage": "label"},
                        {"name": "shipped", "usage": "counter", "help": "Shipped"},
                    ],
                },
            ],
        }
    )
    r = CustomRunner(cfg.targets[0], cfg, TargetState("primary"))
    by_name = {q.name: q for q in cfg.custom_queries}
    rows = {
        "pg_stat_user_tables": model.Rows(
            "postgres",
            ("datname", "schemaname", "relname", "seq_scan", "n_live_tup"),
            (("postgres", "public", "t", 3, 10),),
        ),
        "pg_process_idle": model.Rows(
            "postgres",
            ("application_name", "seconds_sum", "seconds_count", "seconds", "seconds_bucket"),
            (("psql", 4.0, 2, [1, 5], [1, 2]),),
        ),
        "orders": model.Rows("postgres", ("status", "shipped"), (("new", 5),)),
    }
    for name, answer in rows.items():
        r.output[name].series = series.to_series(by_name[name], [answer], "primary", r.server_label)
        r.status[name].runs = 1
        r.status[name].last_success_at = datetime(2026, 1, 1, tzinfo=UTC)
    r.status["pg_replication"].errors = 2
    r.status["pg_replication"].backoff_runs = 1
    r.output["orders"].dropped_total = 7
    return r


def render(collector: CustomCollector, content_type: str) -> str:
    registry = PartedRegistry()
    registry.register(collector)
    encoder = om.generate_latest if "openmetrics" in content_type else generate_latest
    return registry.render(encoder, content_type).decode()


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [
        s.value for f in text_families(text) for s in f.samples if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_names_labels_and_types_as_postgres_exporter_made_them() -> None:
    text = render(CustomCollector([runner()]), CONTENT_TYPE_LATEST)
    families = {f.name: f for f in text_families(text)}
    seq = families["pg_stat_user_tables_seq_scan"]
    assert seq.type == "unknown"  # untyped: the name has no _total, as in postgres_exporter
    assert seq.samples[0].labels == {
        "target": "primary",
        "server": "db-0:6543",
        "datname": "postgres",
        "schemaname": "public",
        "relname": "t",
    }
    assert "# TYPE pg_stat_user_tables_seq_scan untyped" in text
    assert value(text, "pg_stat_user_tables_n_live_tup", relname="t") == 10
    assert (
        value(
            text,
            "pg_process_idle_seconds_bucket",
            application_name="psql",
            le="+Inf",
            server="db-0:6543",
            target="primary",
        )
        == 2
    )
    assert families["pg_process_idle_seconds"].type == "histogram"
    assert value(text, "app_orders_shipped_total", target="primary", status="new") == 5
    assert families["app_orders_shipped"].type == "counter"
    assert value(text, "pgradar_custom_query_errors_total", target="primary", custom_query="pg_replication") == 2
    assert value(text, "pgradar_custom_query_enabled", target="primary", custom_query="pg_replication") == 0
    assert value(text, "pgradar_custom_query_enabled", target="primary", custom_query="orders") == 1
    assert (
        value(
            text,
            "pgradar_custom_query_series_dropped_total",
            target="primary",
            custom_query="orders",
            reason="max_series",
        )
        == 7
    )
    assert "pg_future_only_one" not in text  # never ran: nothing shown as if it were a value


def test_openmetrics_is_valid_and_keeps_the_names() -> None:
    text = render(CustomCollector([runner()]), "application/openmetrics-text;version=1.0.0")
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {
        "pg_stat_user_tables_seq_scan",
        "app_orders_shipped_total",
        "pg_process_idle_seconds_bucket",
        "pgradar_custom_query_runs_total",
    } <= names
    assert text.endswith("# EOF\n")


def test_a_runner_that_changes_is_rendered_again() -> None:
    r = runner()
    collector = CustomCollector([r])
    before = collector.version()
    r.version += 1
    assert collector.version() != before


def test_backoff_and_where_a_query_runs() -> None:
    assert [skipped_runs(n, 60) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert skipped_runs(20, 60) == 60  # an hour of 60 s runs at most
    q = next(q for q in runner().queries() if q.name == "pg_future_only")
    assert "outside its version range >=99.0.0" in applies(q, ServerInfo(version_num=180001, in_recovery=False))
    native = custom.parse_native(
        [{"name": "s", "sql": "x", "on": "standby", "columns": [{"name": "n", "usage": "gauge", "help": "n"}]}],
        "config",
        custom.Defaults(),
    )[0][0]
    assert applies(native, ServerInfo(version_num=180001, in_recovery=True)) is None
    assert "runs on a standby" in applies(native, ServerInfo(version_num=180001, in_recovery=False))


def test_an_unlisted_column_named_like_another_querys_metric_is_not_a_second_family(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(
        "pg_a:\n  query: SELECT 1 AS n, 2 AS b_c\n  metrics:\n    - n: {usage: GAUGE}\n"
        "pg_a_b:\n  query: SELECT 'x' AS l, 3 AS c\n  metrics:\n    - l: {usage: LABEL}\n"
        "    - c: {usage: GAUGE}\n"
    )
    cfg = build({"targets": [{"name": "primary", "dsn": DSN}], "custom_queries": [{"file": str(path)}]})
    r = CustomRunner(cfg.targets[0], cfg, TargetState("primary"))
    a, b = cfg.custom_queries
    r.output["pg_a"].series = series.to_series(a, [model.Rows("p", ("n", "b_c"), ((1, 2),))], "primary", "s")
    r.output["pg_a_b"].series = series.to_series(b, [model.Rows("p", ("l", "c"), (("x", 3),))], "primary", "s")
    text = render(CustomCollector([r]), CONTENT_TYPE_LATEST)
    assert text.count("# TYPE pg_a_b_c ") == 1 and "# TYPE pg_a_b_c gauge" in text  # the listed column's
    assert value(text, "pg_a_b_c", l="x") == 3
    assert value(text, "pg_a_n") == 1
