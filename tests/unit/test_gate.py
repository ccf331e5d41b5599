"""The gate's pure parts: scope, allow list, window, baseline file and refusals, JUnit and GitHub forms."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import commits, table, tables_snapshot

from pgradar.agent.derive import baseline as baselines
from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.check import CheckResult, FailOn, TargetStatus
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementsInfo, StatementsSnapshot, StatementStat
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.settings.config import ConfigError, build, load_file
from pgradar.agent.settings.ignores import IgnoreRule
from pgradar.commands.cli import main
from pgradar.commands.gate import Scope, ScopeError, Window, check_result, cumulative_window, scope_from
from pgradar.exporters.ci_formats import escape_data, escape_property, render_check, render_github, render_junit
from pgradar.exporters.report import check_document

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def problem(kind: str, severity: str = "warning", **fields: str | None) -> Finding:
    found = Kind.named(kind)
    assert found is not None
    given: dict[str, Any] = {"database": "app", **fields}
    summary, recommendation = given.pop("summary", f"{kind} here"), given.pop("recommendation", f"fix {kind}")
    return Finding(found, Severity(severity), "main", summary, recommendation, {"calls": 5}, **given)


MAIN = TargetStatus("main", 180001, "primary", True, None)
EVERY_KIND = Scope()


def judged(
    *findings: Finding,
    windows: dict[str, Window] | None = None,
    scope: Scope = EVERY_KIND,
    rules: tuple[IgnoreRule, ...] = (),
    targets: tuple[TargetStatus, ...] = (MAIN,),
) -> CheckResult:
    """The gate's result over these findings (first seen now), as ``check`` builds it."""
    active = [ActiveProblem(f, T0, T0) for f in findings]
    return check_result(targets, active, windows or {}, scope, rules, T0)


# --- scope and allow list ---------------------------------------------------------------


def test_kinds_and_exclusions_are_validated_by_name() -> None:
    assert scope_from("select_star,temp_spill", None, None).kinds == ("select_star", "temp_spill")
    assert "select_star" not in scope_from(None, "select_star", None).kinds
    with pytest.raises(ScopeError, match=r"--kinds: unknown kind 'select_stars' \(known: seq_scan,"):
        scope_from("select_stars", None, None)
    with pytest.raises(ScopeError, match="--exclude-kinds: unknown kind 'nope'"):
        scope_from(None, "nope", None)
    with pytest.raises(ScopeError, match="no kind left"):
        scope_from("temp_spill", "temp_spill", None)


def test_bad_kind_on_the_command_line_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--dsn", "postgresql://x@127.0.0.1:1/db", "--kinds", "select_star,bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown kind 'bogus'" in err


def test_scope_keeps_server_wide_problems_under_database() -> None:
    scope = Scope((Kind.TEMP_SPILL, Kind.REPLICATION_LAG), "app")
    assert scope.keeps(problem("temp_spill"))
    assert not scope.keeps(problem("temp_spill", database="other"))
    assert scope.keeps(problem("replication_lag", database=None))
    assert not scope.keeps(problem("select_star"))


def test_ignore_rules_are_validated_and_unknown_keys_named() -> None:
    cfg = build(
        {
            "targets": [{"name": "a", "dsn": "postgresql://x@h/db"}],
            "ignore": [{"queryid": 42}, {"kind": "select_star", "relation": "public.colors"}],
        }
    )
    assert cfg.ignore == (IgnoreRule(queryid="42"), IgnoreRule(kind="select_star", schema="public", relation="colors"))
    with pytest.raises(ConfigError) as err:
        build(
            {
                "targets": [{"name": "a", "dsn": "postgresql://x@h/db"}],
                "ignore": [{"kind": "select_starr"}, {"relaton": "x"}, {"queryid": "abc"}, {}],
            }
        )
    message = str(err.value)
    assert "ignore[0].kind: unknown kind 'select_starr'" in message
    assert "ignore[1].relaton: unknown key (known: kind, target, database, schema, relation, index, queryid)" in message
    assert "ignore[2].queryid: expected a whole number" in message
    assert "ignore[3]: an empty rule would accept every finding" in message


def test_ignored_findings_show_but_never_count() -> None:
    rules = (IgnoreRule(kind="select_star", schema="public", relation="colors"), IgnoreRule(queryid="-7"))
    gated = judged(
        problem("select_star", "critical", schema="public", relation="colors"),
        problem("select_star", "info", schema="public", relation="events"),
        problem("temp_spill", "critical", queryid="-7"),
        rules=rules,
    )
    flags = [(f.finding.relation, f.finding.queryid, f.ignored) for f in gated.findings]
    assert flags == [("colors", None, True), ("events", None, False), (None, "-7", True)]
    assert gated.exit_code(FailOn.WARNING) == 0 and gated.exit_code(FailOn.INFO) == 1
    assert gated.findings[0].ignored_by == "kind=select_star, schema=public, relation=colors"


def test_a_rule_field_never_matches_a_finding_without_it() -> None:
    """``relation: None`` in YAML is the text "None", not the absent relation of a server-wide finding."""
    assert not IgnoreRule(relation="None").matches(problem("replication_lag", database=None))
    assert IgnoreRule(kind="replication_lag").matches(problem("replication_lag", database=None))
    assert not IgnoreRule(kind="replication_lag", target="other").matches(problem("replication_lag"))


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"),
    [
        ([], FailOn.WARNING, 0),
        (["info"], FailOn.WARNING, 0),
        (["warning"], FailOn.WARNING, 1),
        (["warning"], FailOn.CRITICAL, 0),
        (["critical"], FailOn.CRITICAL, 1),
        (["critical"], FailOn.NEVER, 0),
        (["info"], FailOn.INFO, 1),
    ],
)
def test_exit_code(severities: list[str], fail_on: FailOn, code: int) -> None:
    findings = [problem("temp_spill", s, queryid=str(i)) for i, s in enumerate(severities)]
    assert judged(*findings).exit_code(fail_on) == code


# --- window -------------------------------------------------------------------------------


def snapshot(*rows: StatementStat, reset: datetime | None = None) -> StatementsSnapshot:
    return StatementsSnapshot(T0, rows, StatementsInfo(0, reset) if reset else None, 0)


def stat(queryid: int, calls: int, temp: int = 0) -> StatementStat:
    return StatementStat(
        10, 1, queryid, True, "app", "app", calls, calls * 1.0, 0.0, 1.0, calls, 0, 0, 0, 0, 0, temp, 0.0, 0.0, 0.0
    )


def test_cumulative_window_by_what_the_server_can_say() -> None:
    server = ServerInfo(130020, False, started_at=T0 - timedelta(days=3))
    assert cumulative_window(server, snapshot(), None) == Window(T0 - timedelta(days=3), T0, "server start")
    reset = T0 - timedelta(hours=2)
    w = cumulative_window(ServerInfo(160004, False, started_at=T0 - timedelta(days=3)), snapshot(reset=reset), None)
    assert (w.since, w.seconds) == (reset, 7200) and "stats_reset" in w.source
    oldest = T0 - timedelta(minutes=5)
    assert cumulative_window(server, snapshot(reset=reset), oldest).since == oldest


def test_a_pgbouncer_target_has_no_window() -> None:
    bouncer = TargetStatus("bouncer", None, "pgbouncer", True, None)
    gated = check_document(judged(targets=(bouncer,), windows={"bouncer": Window(T0, T0, "never")}))
    assert gated["targets"] == [
        {"name": "bouncer", "server_version": None, "role": "pgbouncer", "ok": True, "error": None, "disabled": []}
    ]
    assert gated["window_since"] is None


def test_gate_document_says_the_window_per_target_and_on_top() -> None:
    result = judged(windows={"main": Window(T0 - timedelta(seconds=90), T0, "baseline")})
    gated = check_document(result)
    assert gated["targets"][0]["window_since"] == "2026-11-22T02:58:30Z"
    assert gated["targets"][0]["window_seconds"] == 90 and gated["targets"][0]["window_source"] == "baseline"
    assert (gated["window_since"], gated["window_seconds"]) == ("2026-11-22T02:58:30Z", 90)
    assert "judged on counters main: since 2026-11-22T02:58:30Z (90s, baseline)" in render_check(
        result, "table", FailOn.WARNING
    )


# --- baseline --------------------------------------------------------------------------------


def identity(**changes: object) -> baselines.Identity:
    base = baselines.Identity("7301234567890123456", T0 - timedelta(days=1), T0 - timedelta(hours=1), (("app", None),))
    return baselines.Identity(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


def test_baseline_round_trip_has_no_text_and_subtracts() -> None:
    before = snapshot(stat(-9223372036854775807, 100, temp=10))
    saved = baselines.capture("main", identity(), before, None, None, None, T0)
    text = baselines.to_json(baselines.Baseline((saved,)))
    assert "-9223372036854775807" in text and "app" not in text.split('"database_stats_reset"')[0]
    back = baselines.from_json(text, "b.json").target("main")
    assert back is not None and back.statements == saved.statements and back.identity == saved.identity
    after = snapshot(stat(-9223372036854775807, 130, temp=25), stat(5, 7))
    interval = statement_deltas(baselines.statements_before(back, after), after)
    assert {d.queryid: (d.calls, d.temp_blks_written) for d in interval.deltas} == {
        -9223372036854775807: (30, 15),
        5: (7, 0),
    }


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        ({"system_identifier": "1"}, "another server (system identifier 7301234567890123456 there, 1 on target main)"),
        ({"started_at": T0}, "before the server restarted (postmaster start time"),
        ({"pgss_reset": T0}, "before pg_stat_statements was reset (stats reset time"),
        ({"database_resets": (("app", T0),)}, "before the statistics of database app were reset"),
    ],
)
def test_baseline_refused_naming_why(changed: dict[str, object], why: str) -> None:
    saved = baselines.capture("main", identity(), None, None, None, commits(0, app=40), T0)
    assert baselines.refusal(saved, identity(), "b.json") is None
    reason = baselines.refusal(saved, identity(**changed), "b.json")
    assert reason is not None and why in reason and "\n" not in reason


def test_a_database_entry_appearing_after_the_baseline_is_not_a_reset() -> None:
    """13 and 14 stamp a database's entry when it is created: no time, then one, with nothing reset."""
    appeared = identity(database_resets=(("app", T0),))
    unused = baselines.capture("main", identity(), None, None, None, commits(0, app=0), T0)
    assert baselines.refusal(unused, appeared, "b.json") is None
    for counted in (
        baselines.capture("main", identity(), None, None, None, commits(0, app=3), T0),
        baselines.capture("main", identity(), None, tables_snapshot((table(seq_scan=2),)), None, commits(0, app=0), T0),
    ):
        reason = baselines.refusal(counted, appeared, "b.json")
        assert reason is not None and "statistics of database app were reset" in reason
    was_reset = identity(database_resets=(("app", T0 - timedelta(days=2)),))
    reset_again = baselines.capture("main", was_reset, None, None, None, commits(0, app=0), T0)
    assert baselines.refusal(reset_again, appeared, "b.json") is not None


def test_reset_without_a_reset_time_is_seen_when_no_statement_kept_counting() -> None:
    thirteen = identity(pgss_reset=None)
    saved = baselines.capture("main", thirteen, snapshot(stat(1, 100), stat(2, 50)), None, None, None, T0)
    assert baselines.refusal(saved, thirteen, "b.json", snapshot(stat(1, 100), stat(2, 3), stat(9, 1))) is None
    reason = baselines.refusal(saved, thirteen, "b.json", snapshot(stat(1, 4), stat(9, 1)))
    assert reason is not None and "pg_stat_statements was reset" in reason and "none of its 2 statements" in reason


def test_not_a_baseline_is_a_clear_error() -> None:
    with pytest.raises(baselines.BaselineError, match=r"b\.json: not a pgradar baseline"):
        baselines.from_json('{"version": 1}', "b.json")
    with pytest.raises(baselines.BaselineError, match="not JSON"):
        baselines.from_json("targets: []", "b.json")


def test_missing_baseline_file_is_exit_2(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--dsn", "postgresql://x@127.0.0.1:1/db", "--baseline", "/nonexistent/b.json"]) == 2
    assert "--baseline: cannot read /nonexistent/b.json" in capsys.readouterr().err


# --- CI forms ----------------------------------------------------------------------------------


def test_junit_fails_at_fail_on_passes_below_skips_ignored_and_lists_clean_kinds() -> None:
    gated = judged(
        problem("temp_spill", "critical", queryid="1"),
        problem("select_star", "info"),
        problem("n_plus_one", "warning", queryid="2"),
        scope=Scope((Kind.TEMP_SPILL, Kind.SELECT_STAR, Kind.N_PLUS_ONE, Kind.LOW_CACHE_HIT)),
        rules=(IgnoreRule(kind="n_plus_one"),),
    )
    root = ET.fromstring(render_junit(gated, FailOn.WARNING))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "1")
    cases = {c.get("classname"): c for c in root.iter("testcase")}
    failure = cases["pgradar.temp_spill"].find("failure")
    assert failure is not None and failure.get("message") == "temp_spill here"
    assert "evidence:" in (failure.text or "") and "fix:\nfix temp_spill" in (failure.text or "")
    assert cases["pgradar.select_star"].find("failure") is None  # info, below --fail-on warning
    assert cases["pgradar.n_plus_one"].find("skipped") is not None
    assert cases["pgradar.low_cache_hit"].get("name") == "no low_cache_hit found"


def test_github_annotations_escape_per_runner_rules() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a: b, c%") == "a%3A b%2C c%25"
    tricky = problem(
        "temp_spill",
        "critical",
        summary="spills 5% per call\n::error::fake",
        queryid="1",
        recommendation="SET work_mem = '64MB';\nor an index",
    )
    out = render_github(judged(tricky, problem("select_star", "info")), FailOn.WARNING)
    lines = out.splitlines()
    assert lines[0] == (
        "::error title=pgradar temp_spill (critical) on main%3A app queryid 1::spills 5%25 per call"
        "%0A::error::fake%0Afix: SET work_mem = '64MB';%0Aor an index"
    )
    assert lines[1].startswith("::notice title=pgradar select_star (info)")
    assert lines[-1] == "pgradar check: 2 problem(s), 1 at or above --fail-on warning"


def test_json_form_is_the_gate_document() -> None:
    gated = judged(problem("temp_spill"))
    assert json.loads(render_check(gated, "json", FailOn.WARNING))["problems"][0]["ignored"] is False


def test_example_gate_config_is_valid() -> None:
    cfg = build(load_file(str(Path(__file__).parents[2] / "examples" / "ci" / "pgradar-gate.yaml")))
    assert IgnoreRule(kind="select_star", schema="public", relation="colors") in cfg.ignore
    assert cfg.targets[0].thresholds.statement_min_calls == 50


def test_example_commands_parse() -> None:
    """Every ``pgradar check`` line of the example workflow and script takes flags pgradar has."""
    import shlex

    import yaml

    from pgradar.commands.cli import build_parser

    examples = Path(__file__).parents[2] / "examples" / "ci"
    workflow = yaml.safe_load((examples / "pgradar-gate.yml").read_text())
    lines = [step["run"] for step in workflow["jobs"]["test"]["steps"] if "pgradar check" in step.get("run", "")]
    script = (examples / "gate.sh").read_text().replace("\\\n", " ")
    lines += [line for line in script.splitlines() if line.strip().startswith("pgradar check")]
    assert len(lines) >= 6
    for line in lines:
        words = shlex.split(line.split(">")[0].split("||")[0].replace("$scope", "").replace("$fail_on", "info"))
        args = build_parser().parse_args(words[1:])
        assert args.command == "check" and (args.baseline or args.save_baseline), line


def test_unused_index_since_a_baseline_says_so() -> None:
    """With --baseline the index scans are counted since the baseline, and its summary names that window."""
    from factories import T0 as NOW
    from factories import index, observation, server

    from pgradar.agent.classifiers.indexes import unused_index
    from pgradar.agent.model.catalog import IndexFirstSeen
    from pgradar.agent.model.thresholds import DEFAULT

    idx = index("orders_status_idx", ["status"])
    seen = IndexFirstSeen(NOW, (((idx.database, idx.indexrelid), NOW - timedelta(minutes=5)),), "baseline")
    found = list(
        unused_index(
            observation(indexes=(idx,), server_info=server(started_days_ago=30), index_first_seen=seen),
            DEFAULT,
        )
    )
    assert found[0].severity == "info" and "5 min (since baseline)" in found[0].summary
