"""The alert rules and dashboards as files: promtool, the runbook, the metric catalogue.

promtool (Debian package prometheus) checks and unit-tests the rules; it
opens no socket. Every metric name a panel or a rule uses is derived from the
files themselves and must be in ``exporters/catalogue.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pgradar.agent.model.findings import Area, Kind, Severity
from pgradar.alerts import RULES_DIR, RUNBOOK, rule_files
from pgradar.dashboards import JSON_DIR, render_all
from pgradar.exporters.catalogue import BY_NAME

RULE_FILES = rule_files()
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))
SCRAPE_LABELS = {"job", "instance"}
# On-call is paged for these; info findings stay on the dashboards.
ALERT_SEVERITIES = (Severity.WARNING, Severity.CRITICAL)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (or `make system`)", pytrace=False)
    return path


def alerting_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def alert_names() -> set[str]:
    return {r["alert"] for r in alerting_rules()}


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(JSON_DIR.glob("*.json"))}


def panel_exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every panel query."""
    out = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            out.extend((name, panel["title"], t["expr"]) for t in panel.get("targets", []))
    return out


def variable_queries() -> list[tuple[str, str]]:
    return [
        (name, v["query"])
        for name, board in dashboards().items()
        for v in board["templating"]["list"]
        if v["type"] == "query"
    ]


def panel_legends() -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every panel query."""
    return [
        (f"{name} / {panel['title']}", t["expr"], t.get("legendFormat", ""))
        for name, board in dashboards().items()
        for panel in board["panels"]
        for t in panel["targets"]
    ]


def every_expression() -> list[tuple[str, str]]:
    exprs = [(f"{d} / {title}", expr) for d, title, expr in panel_exprs()]
    exprs += [(f"{d} / variable", q) for d, q in variable_queries()]
    exprs += [(f"rule {r['alert']}", r["expr"]) for r in alerting_rules()]
    # Queries annotations run (`query` in a template) to quote the raw numbers.
    exprs += [
        (f"rule {r['alert']} annotation", q)
        for r in alerting_rules()
        for q in re.findall(r"`([^`]*)`", " ".join(r["annotations"].values()))
        if "{" in q
    ]
    return exprs


METRIC = re.compile(r"\bpgradar_[a-zA-Z0-9_]+")
SELECTOR = re.compile(r"\b(pgradar_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def labels_of(expr: str) -> set[str]:
    """Every label the metrics of an expression carry, scrape labels included."""
    return {label for name in METRIC.findall(expr) for label in BY_NAME[name].labels} | SCRAPE_LABELS


# --- promtool ------------------------------------------------------------------------------


def test_rule_files_pass_promtool_check() -> None:
    assert len(RULE_FILES) >= 4
    proc = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path) -> None:
    proc = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, cwd=path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fires: dict[str, set[str]] = {}
    silent: set[str] = set()
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    for alert in case["exp_alerts"]:
                        labels = alert["exp_labels"]
                        # the labels on-call routes by, and annotations checked in full
                        assert labels["severity"] in ALERT_SEVERITIES and labels.get("target"), case
                        assert {"summary", "description", "runbook_url"} <= set(alert.get("exp_annotations", {}))
                        fires.setdefault(case["alertname"], set()).add(labels["severity"])
                else:
                    silent.add(case["alertname"])
    names = alert_names()
    assert set(fires) == names, f"alerts never shown firing: {names - set(fires)}"
    assert silent >= names, f"alerts never shown silent: {names - silent}"
    for rule in alerting_rules():  # every severity tier of every alert fires in some test
        assert rule["labels"]["severity"] in fires[rule["alert"]], rule["alert"]


# --- rule contents and the runbook -------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> list[str]:
    return [slug(line[3:]) for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_rule_has_for_severity_annotations_and_runbook(rule: dict) -> None:
    assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), "every alert waits (for:) before it fires"
    assert rule["labels"]["severity"] in ALERT_SEVERITIES
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert "$labels.target" in annotations["summary"], "the summary names the target"
    url = annotations["runbook_url"]
    page, _, anchor = url.partition("#")
    assert page.endswith("/alerts/RUNBOOK.md") and anchor == rule["alert"].lower()
    assert anchor in runbook_anchors(), f"RUNBOOK.md has no section for {rule['alert']}"


def test_runbook_has_one_section_per_alert() -> None:
    anchors = runbook_anchors()
    assert len(anchors) == len(set(anchors))
    assert set(anchors) == {name.lower() for name in alert_names()}


# --- metric names: derived from the files, checked against the catalogue --------------------------


def test_every_metric_used_is_in_the_catalogue() -> None:
    used: dict[str, list[str]] = {}
    for where, expr in every_expression():
        names = METRIC.findall(expr)
        assert names, f"{where}: no pgradar metric in {expr!r}"
        for name in names:
            used.setdefault(name, []).append(where)
    unknown = {name: places for name, places in used.items() if name not in BY_NAME}
    assert not unknown, f"metrics the exporter does not produce: {unknown}"
    assert len(used) >= 40  # the files really were read


def test_every_label_matcher_names_a_label_of_its_metric() -> None:
    for where, expr in every_expression():
        for name, inner in SELECTOR.findall(expr):
            for label in MATCHER.findall(inner):
                assert label in (*BY_NAME[name].labels, *SCRAPE_LABELS), f"{where}: {name} has no label {label}"


def test_grouping_legend_and_template_labels_exist() -> None:
    """by/on/group_left labels, legends and $labels in annotations name labels the metrics have."""
    for where, expr in every_expression():
        for inner in GROUPING.findall(expr):
            for label in filter(None, (x.strip() for x in inner.split(","))):
                assert label in labels_of(expr), f"{where}: no metric of {expr!r} has label {label}"
    for where, expr, legend in panel_legends():
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            assert label in labels_of(expr), f"{where}: legend {legend!r} uses {label}"
    for rule in alerting_rules():
        text = " ".join(rule["annotations"].values())
        for label in re.findall(r"\$labels\.(\w+)", text):
            assert label in labels_of(rule["expr"]), f"{rule['alert']}: annotation uses $labels.{label}"


KIND_OR_SEVERITY = re.compile(r'\b(kind|severity)\s*(?:=~|!~|!=|=)\s*"([^"]*)"')


def test_every_kind_and_severity_matched_is_one_the_agent_reports() -> None:
    """A rule or panel matching a misspelt or renamed kind would stay silent, not fail."""
    known = {"kind": {k.value for k in Kind}, "severity": {s.value for s in Severity}}
    matched = 0
    for where, expr in every_expression():
        for label, value in KIND_OR_SEVERITY.findall(expr):
            names = value.split("|")
            assert [n for n in names if n not in known[label]] == [], f"{where}: {label} {value!r}"
            matched += len(names)
    assert matched >= 30  # the files really were read


# --- dashboards ---------------------------------------------------------------------------------


def test_a_metric_missing_from_the_catalogue_fails_the_dashboard_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboards take their metric names from the catalogue: renaming one there breaks the build."""
    monkeypatch.delitem(BY_NAME, "pgradar_connections_max")
    with pytest.raises(KeyError, match="pgradar_connections_max is not in the metric catalogue"):
        render_all()


def test_problem_panels_match_the_kinds_of_their_area() -> None:
    """The tables, replication and connections pages list the kinds of their area (Kind.area)."""
    by_area = {
        "pgradar-tables.json": Area.TABLE,
        "pgradar-replication.json": Area.REPLICATION,
        "pgradar-connections.json": Area.SESSION,
    }
    for name, area in by_area.items():
        exprs = [expr for board, _, expr in panel_exprs() if board == name]
        regexes = {v for expr in exprs for v in re.findall(r'kind=~"([^"]*)"', expr)}
        assert regexes == {"|".join(k for k in Kind if k.area is area)}, name


def test_committed_dashboard_json_is_up_to_date() -> None:
    rendered = render_all()
    committed = {p.name: p.read_text() for p in JSON_DIR.glob("*.json")}
    assert set(committed) == set(rendered), "run `pgradar dashboards --out dashboards/json` and commit it"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is out of date: run `pgradar dashboards --out dashboards/json`"


def test_dashboards_import_as_they_are() -> None:
    boards = dashboards()
    assert {b["uid"] for b in boards.values()} == {
        "pgradar-overview",
        "pgradar-statements",
        "pgradar-tables",
        "pgradar-replication",
        "pgradar-connections",
        "pgradar-problems",
        "pgradar-agent",
        "pgradar-load",
        "pgradar-vacuum",
    }
    for name, board in boards.items():
        assert board["schemaVersion"] >= 36, name
        assert board["id"] is None, "an id makes Grafana overwrite another dashboard on import"
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert {"datasource", "target"} <= set(variables)
        assert any(link["type"] == "dashboards" and "pgradar" in link["tags"] for link in board["links"])
        text = json.dumps(board)
        uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {board["uid"]}
        assert uids == {"${datasource}"}, f"{name}: hard-coded data source uid {uids}"
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{name} / {panel['title']}: no unit"
            assert panel["targets"] and panel["description"], f"{name} / {panel['title']}"
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24


def test_data_links_use_columns_the_table_keeps() -> None:
    for name, board in dashboards().items():
        for panel in board["panels"]:
            text = json.dumps(panel["fieldConfig"])
            hidden = {k for t in panel.get("transformations", []) for k in t["options"].get("excludeByName", {})}
            for field in re.findall(r"__data\.fields\.(\w+)", text):
                assert field not in hidden, f"{name} / {panel['title']}: its link needs the hidden {field}"


def test_database_variable_where_panels_filter_by_database() -> None:
    for name, board in dashboards().items():
        variables = {v["name"] for v in board["templating"]["list"]}
        used = {v for panel in board["panels"] for t in panel["targets"] for v in re.findall(r"\$(\w+)", t["expr"])}
        assert used - {"__rate_interval", "__range"} <= variables, name


def test_pgradar_dashboards_writes_the_files(tmp_path: Path) -> None:
    from pgradar.commands.cli import main

    assert main(["dashboards", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(render_all())


def test_pgradar_dashboards_writes_into_the_current_directory(tmp_path: Path) -> None:
    """Without --out the files land where the user is, never in the installed package (site-packages)."""
    import subprocess
    import sys

    before = {p.name: p.stat().st_mtime_ns for p in JSON_DIR.glob("*.json")}
    done = subprocess.run(
        [sys.executable, "-m", "pgradar.commands.cli", "dashboards"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(render_all())
    assert {p.name: p.stat().st_mtime_ns for p in JSON_DIR.glob("*.json")} == before
