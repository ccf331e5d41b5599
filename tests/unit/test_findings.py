"""Findings: stable ids, first_seen kept, the JSON contract, every form."""

from datetime import UTC, datetime, timedelta

import pytest

from pgradar.agent.classifiers import classify
from pgradar.agent.model.check import FailOn, Scope
from pgradar.agent.model.findings import Finding, Kind, Severity, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.runtime.problems import update
from pgradar.agent.runtime.state import AgentState, CollectorStatus, TargetState
from pgradar.commands.gate import check_result
from pgradar.exporters.ci_formats import render_check
from pgradar.exporters.report import active_problems, document, target_status

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def unused(index: str = "orders_status_idx", severity: str = "warning", scans: int = 0) -> Finding:
    return Finding(
        Kind.UNUSED_INDEX,
        Severity(severity),
        "primary",
        "never scanned",
        f"DROP INDEX CONCURRENTLY public.{index};",
        {"idx_scan": scans, "size_bytes": 52428800},
        database="app",
        schema="public",
        relation="orders",
        index=index,
    )


def rendered(state: AgentState, fmt: str) -> str:
    """``pgradar check``'s form of the state, as the command renders it."""
    result = check_result([target_status(t) for t in state], active_problems(state), {}, Scope(), (), NOW)
    return render_check(result, fmt, FailOn.WARNING)


def test_id_depends_on_kind_target_and_object_only() -> None:
    assert unused().id == unused(severity="critical", scans=3).id
    assert unused().id != unused(index="other").id
    other_target = Finding(
        Kind.UNUSED_INDEX,
        Severity.WARNING,
        "standby",
        "x",
        "y",
        database="app",
        schema="public",
        relation="orders",
        index="orders_status_idx",
    )
    assert other_target.id != unused().id


def test_a_finding_takes_its_kind_and_severity_from_the_enums_only() -> None:
    with pytest.raises(ValueError, match="'slow' is not a valid Kind"):
        Kind("slow")
    with pytest.raises(TypeError, match="kind is a Kind"):
        Finding("seq_scan", Severity.WARNING, "t", "s", "r")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="severity is a Severity"):
        Finding(Kind.SEQ_SCAN, "warning", "t", "s", "r")  # type: ignore[arg-type]


def test_kinds_and_severities_keep_their_names_in_json() -> None:
    """The values are the contract (DESIGN 3.2): JSON carries plain strings, equal to the enum values."""
    doc = Finding(Kind.SEQ_SCAN, Severity.CRITICAL, "t", "s", "r").to_json()
    assert (doc["kind"], doc["severity"]) == ("seq_scan", "critical")
    assert type(doc["kind"]) is str and type(doc["severity"]) is str
    assert [s.rank for s in (Severity.INFO, Severity.WARNING, Severity.CRITICAL)] == [0, 1, 2]
    assert all(kind.description for kind in Kind)


def test_no_kind_is_renamed() -> None:
    """New kinds may be added, none renamed (DESIGN 3.2): alert rules, dashboards and ignore lists name them."""
    contract = """
        seq_scan unused_index duplicate_index invalid_index missing_fk_index stale_stats dead_tuples
        xid_wraparound replication_lag replication_slot_inactive pool_saturation idle_in_transaction
        long_running_query lock_contention temp_spill low_cache_hit n_plus_one select_star
        non_sargable_predicate plan_regression row_misestimate offset_pagination unbounded_result
        partition_pruning_missed correlated_subquery deadlocks
    """.split()
    assert [name for name in contract if Kind.named(name) is None] == []


def test_first_seen_is_kept_while_the_problem_lasts() -> None:
    active = update({}, [unused()], NOW)
    later = update(active, [unused(severity="critical")], NOW + timedelta(minutes=5))
    (problem,) = later.values()
    assert problem.first_seen == NOW and problem.last_seen == NOW + timedelta(minutes=5)
    assert problem.finding.severity == "critical"
    assert update(later, [], NOW + timedelta(minutes=10)) == {}


def test_json_document_follows_the_contract() -> None:
    t = TargetState("primary")
    t.problems = update({}, [unused()], NOW)
    state = AgentState({"primary": t})
    doc = document(state, NOW)
    assert doc["version"] == 1 and doc["generated_at"] == "2026-11-22T03:00:00Z"
    assert doc["targets"] == [
        {
            "name": "primary",
            "server_version": None,
            "role": None,
            "ok": False,
            "error": "not polled yet",
            "disabled": [],
        }
    ]
    (p,) = doc["problems"]
    assert list(p)[:15] == [
        "id",
        "kind",
        "severity",
        "target",
        "database",
        "schema",
        "relation",
        "index",
        "queryid",
        "standby",
        "slot",
        "pool",
        "wait_event",
        "summary",
        "recommendation",
    ]
    assert p["evidence"] == {"idx_scan": 0, "size_bytes": 52428800}
    assert p["queryid"] is None and p["standby"] is None
    for fmt in ("table", "markdown", "json"):
        assert "DROP INDEX CONCURRENTLY public.orders_status_idx;" in rendered(state, fmt)


def test_a_failing_classifier_does_not_hide_the_others() -> None:
    def broken(obs, thresholds):
        raise RuntimeError("boom")

    def works(obs, thresholds):
        return [unused()]

    findings, errors = classify(Observation("primary", NOW), DEFAULT, (broken, works))
    assert findings == [unused()]
    assert len(errors) == 1 and "boom" in errors[0]


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("orders", "orders"),
        ("Orders", '"Orders"'),
        ("sales data", '"sales data"'),
        ("order", '"order"'),
        ("user", '"user"'),
        ('we"ird', '"we""ird"'),
        ("t1", "t1"),
        ("1t", '"1t"'),
        ("ünï", '"ünï"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_qualified() -> None:
    assert qualified("Sales Data", "Orders") == '"Sales Data"."Orders"'


def test_statement_texts_follow_the_text_policy() -> None:
    from pgradar.agent.model.findings import TextPolicy

    long_text = "SELECT " + ", ".join(f"c{i}" for i in range(100)) + " FROM t WHERE id = $1"
    finding = Finding(
        Kind.LONG_RUNNING_QUERY,
        Severity.WARNING,
        "primary",
        "runs long",
        "SELECT pg_cancel_backend(1);",
        {"oldest": {"pid": 1, "statement": long_text}, "statements": [{"statement": long_text}]},
        database="app",
        queryid="42",
    )
    t = TargetState("primary")
    t.problems = update({}, [finding], NOW)
    state = AgentState({"primary": t})
    shown = document(state, NOW, TextPolicy(max_length=40))["problems"][0]["evidence"]
    assert len(shown["oldest"]["statement"]) == 40 and shown["oldest"]["statement"].endswith("…")
    assert shown["statements"][0]["statement"] == shown["oldest"]["statement"]
    hidden = document(state, NOW, TextPolicy(hide=True))["problems"][0]["evidence"]
    assert hidden["oldest"]["statement"] is None and hidden["oldest"]["pid"] == 1
    assert document(state, NOW)["problems"][0]["evidence"]["oldest"]["statement"] == long_text[:199] + "…"


def test_a_collector_that_is_off_is_in_every_form() -> None:
    t = TargetState("primary")
    t.status["statements"] = CollectorStatus(
        disabled_reason="pg_stat_statements is not in shared_preload_libraries",
        disabled_fix="CREATE EXTENSION pg_stat_statements;",
    )
    state = AgentState({"primary": t})
    doc = document(state, NOW)
    assert doc["targets"][0]["disabled"] == [
        {
            "collector": "statements",
            "reason": "pg_stat_statements is not in shared_preload_libraries",
            "fix": "CREATE EXTENSION pg_stat_statements;",
        }
    ]
    line = (
        "collector statements is off: pg_stat_statements is not in shared_preload_libraries "
        "(fix: CREATE EXTENSION pg_stat_statements;)"
    )
    assert line in rendered(state, "markdown")
    assert line in " ".join(rendered(state, "table").split())
