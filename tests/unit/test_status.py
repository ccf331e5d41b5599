"""The status page at / rendered from a constructed state: escaping, grouping, statements, empty state."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from itertools import pairwise

from factories import T0, snap, stat

from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.findings import Finding, Kind, Severity, TextPolicy
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.problems import update
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.status import evidence_items, figure, mean_exec_series, render_status, sparkline, status_route

EVIL = "<script>alert(1)</script>"


class Page(HTMLParser):
    """Tags with their attributes, and the text, of a rendered page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    @property
    def body(self) -> str:
        return "".join(self.text)


def finding(kind: str, severity: str, target: str = "primary", **obj: str) -> Finding:
    return Finding(
        Kind(kind),
        Severity(severity),
        target,
        f"summary of {kind}",
        f"-- fix {kind}\nSELECT 1;",  # type: ignore[arg-type]
        {"idx_scan": 0, "size_bytes": 4_423_680},
        **obj,
    )


def state_with(
    *findings: Finding, name: str = "primary", texts: dict[tuple[int, int], str] | None = None
) -> AgentState:
    state = AgentState(started_at=T0)
    t = TargetState(name, keep=5)
    t.server = ServerInfo(180006, False)
    t.up = True
    t.databases = ("app", "postgres")
    t.problems = update({}, findings, T0)
    # three polls, two intervals: statement 1 slows down, statement 2 runs once per interval
    polls = [
        snap(0, stat(1, 10, 10.0), stat(2, 1, 1.0)),
        snap(1, stat(1, 20, 30.0), stat(2, 2, 2.0)),
        snap(2, stat(1, 30, 70.0), stat(2, 3, 3.0)),
    ]
    for previous, current in pairwise(polls):
        interval = statement_deltas(previous, current)
        t.statement_intervals.append(interval)
        t.statement_totals.add(interval, {r.key for r in current.rows})
    t.statement_texts.update(texts or {(5, 1): "SELECT * FROM orders WHERE customer_id = $1", (5, 2): "SELECT $1"})
    state.targets[name] = t
    return state


def test_problems_grouped_by_severity_critical_first_with_object_evidence_and_fix() -> None:
    state = state_with(
        finding("unused_index", "info", database="app", schema="public", relation="orders", index="orders_a_idx"),
        finding("replication_lag", "critical", standby="standby1"),
        finding("duplicate_index", "warning", database="app", schema="public", relation="orders", index="orders_b"),
        finding("seq_scan", "warning", database="app", schema="public", relation="orders", queryid="42"),
    )
    text = render_status(state, T0 + timedelta(minutes=3))
    page = Page(text)
    sections = [a["data-severity"] for a in page.all("section")]
    assert sections == ["critical", "warning", "info"]
    kinds = [a["data-kind"] for a in page.all("div") if "data-kind" in a]
    assert kinds == ["replication_lag", "duplicate_index", "seq_scan", "unused_index"]
    assert "4 problems" not in page.body and "(4: 1 critical, 2 warning, 1 info)" in page.body
    assert "app, public.orders, index orders_a_idx" in page.body
    assert "standby standby1" in page.body and "queryid 42" in page.body
    assert "idx scan <code>0</code>" in text and "size bytes <code>4.2 MB</code>" in text  # in units, no JSON
    assert "for 3 min" in page.body  # first seen at T0
    assert len(page.all("pre", class_="fix")) == 4
    (unused,) = page.all("div", data_kind="unused_index")
    assert (unused["data-database"], unused["data-relation"], unused["data-index"]) == ("app", "orders", "orders_a_idx")
    assert "data-queryid" not in unused
    assert page.all("div", data_kind="replication_lag")[0]["data-standby"] == "standby1"
    assert "-- fix seq_scan\nSELECT 1;" in page.body  # the fix as written, line breaks kept


def test_everything_from_outside_is_escaped() -> None:
    evil_finding = Finding(
        Kind.SEQ_SCAN,
        Severity.WARNING,
        EVIL,
        EVIL,
        f"CREATE INDEX ON t ({EVIL});",
        {EVIL: EVIL},
        database=EVIL,
        schema="public",
        relation=EVIL,
        queryid="1",
    )
    state = state_with(evil_finding, name=EVIL, texts={(5, 1): f"SELECT '{EVIL}' FROM \"<b>\"", (5, 2): "SELECT 2"})
    state.targets[EVIL].last_error = EVIL
    down = TargetState(f"down{EVIL}")
    down.last_error = f"connection refused {EVIL}"
    state.targets[down.name] = down
    text = render_status(state, T0)
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = Page(text)
    assert not page.all("script") and not page.all("b")
    assert f"SELECT '{EVIL}' FROM \"<b>\"" in page.body  # shown as text, exactly
    assert f"connection refused {EVIL}" in page.body
    assert [a["data-target"] for a in page.all("tr", class_="target")] == [EVIL, f"down{EVIL}"]


def test_targets_health_version_role_and_down_error() -> None:
    state = state_with()
    standby = TargetState("replica")
    standby.server = ServerInfo(170005, True)
    standby.up = False
    standby.last_error = "could not connect: timeout"
    state.targets["replica"] = standby
    never = TargetState("new")
    state.targets["new"] = never
    page = Page(render_status(state, T0))
    rows = page.body
    assert "18.6" in rows and "17.5" in rows and "standby" in rows
    assert "could not connect: timeout" in rows and "not polled yet" in rows
    assert len(page.all("span", class_="badge up")) == 1 and len(page.all("span", class_="badge down")) == 2


def test_top_statements_with_totals_texts_and_sparklines() -> None:
    text = render_status(state_with(), T0)
    page = Page(text)
    rows = page.all("tr", class_="statement")
    assert [r["data-queryid"] for r in rows] == ["1", "2"]  # costliest first
    assert "SELECT * FROM orders WHERE customer_id = $1" in page.body
    # calls and total: the deltas since the agent started (10 + 10 calls, 20 + 40 ms); mean: the latest interval
    assert '<td class="num">20</td><td class="num">4.00 ms</td><td class="num">60.00 ms</td>' in text
    assert '<td class="num">2</td><td class="num">1.00 ms</td><td class="num">2.00 ms</td>' in text
    assert len(page.all("svg", class_="spark")) == 2
    assert len(page.all("polyline")) == 2  # two intervals each: a line


def test_statement_texts_follow_the_text_policy() -> None:
    long = "SELECT " + ", ".join(f"c{i}" for i in range(200)) + "\n  FROM t"
    evidence = Finding(
        Kind.SEQ_SCAN, Severity.WARNING, "primary", "s", "fix", {"query": long, "calls": 7}, database="app", queryid="1"
    )
    state = state_with(evidence, texts={(5, 1): long, (5, 2): "SELECT 1"})
    page = Page(render_status(state, T0, text_policy=TextPolicy(50)))
    one_line = " ".join(long.split())
    assert one_line[:49] + "…" in page.body and one_line not in page.body  # top statements: one line, cut
    assert f"query {long[:49]}…" in page.body and "calls <code>7</code>" in render_status(state, T0)
    hidden = Page(render_status(state, T0, text_policy=TextPolicy(hide=True)))
    assert "SELECT c0" not in hidden.body and "query " not in hidden.body


def test_empty_state() -> None:
    page = Page(render_status(AgentState(), T0, refresh_s=None))
    assert "no targets configured" in page.body and "no active problems" in page.body
    assert not page.all("meta", http_equiv="refresh")
    fresh = AgentState()
    fresh.targets["primary"] = TargetState("primary")
    body = Page(render_status(fresh, T0)).body
    assert "not polled yet" in body and "no statement activity seen yet" in body
    assert Page(render_status(fresh, T0, refresh_s=10)).all("meta", http_equiv="refresh")[0]["content"] == "10"


def test_no_external_asset() -> None:
    page = Page(render_status(state_with(finding("seq_scan", "warning", database="app", queryid="1")), T0))
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert "//" not in value, (tag, attrs)  # relative links to the agent's own paths only
    assert not page.all("script") and not page.all("link", rel="stylesheet")


def test_sparkline_shapes() -> None:
    assert "<polyline" not in sparkline([]) and "<circle" not in sparkline([])
    one = sparkline([5.0])
    assert "<polyline" not in one and "<circle" in one
    flat = sparkline([2.0, 2.0, 2.0], width=100, height=20)
    assert 'points="3.0,10.0 50.0,10.0 97.0,10.0"' in flat
    rising = sparkline([1.0, 3.0], width=100, height=20, label="a <b>")
    assert 'points="3.0,17.0 97.0,3.0"' in rising and "a &lt;b&gt;" in rising


def test_series_skips_intervals_without_the_statement() -> None:
    state = state_with()
    intervals = tuple(state.targets["primary"].statement_intervals)
    key = intervals[0].deltas[0].key
    assert mean_exec_series(intervals, key) == [2.0, 4.0]
    assert mean_exec_series(intervals, (0, 0, 0, True)) == []


def test_route_serves_html() -> None:
    status, content_type, body = status_route(state_with())({}, "text/html")
    assert status == 200 and content_type == "text/html; charset=utf-8"
    assert body.startswith(b"<!DOCTYPE html>")


def test_problems_ordered_by_severity_then_impact() -> None:
    """Within a severity: share of execution time first, then bytes, then seconds; the heaviest on top."""
    small = Finding(
        Kind.DEAD_TUPLES,
        Severity.WARNING,
        "primary",
        "s",
        "VACUUM t;",
        {"size_bytes": 10 * 1024**2},
        database="app",
        schema="public",
        relation="small",
    )
    big = Finding(
        Kind.REPLICATION_SLOT_INACTIVE,
        Severity.WARNING,
        "primary",
        "s",
        "SELECT 1;",
        {"retained_bytes": 30 * 1024**3},
        slot="s1",
    )
    hot = Finding(
        Kind.TEMP_SPILL,
        Severity.WARNING,
        "primary",
        "s",
        "SET work_mem = '64MB';",
        {"exec_time_share": 0.4},
        database="app",
        queryid="7",
    )
    behind = Finding(
        Kind.REPLICATION_LAG, Severity.WARNING, "primary", "s", "-- look", {"lag_seconds": 600.0}, standby="r1"
    )
    info = Finding(
        Kind.UNUSED_INDEX,
        Severity.INFO,
        "primary",
        "s",
        "DROP INDEX i;",
        {"size_bytes": 99 * 1024**3},
        database="app",
        schema="public",
        relation="t",
        index="i",
    )
    page = Page(render_status(state_with(info, small, behind, big, hot), T0))
    kinds = [a["data-kind"] for a in page.all("div") if "data-kind" in a]
    assert kinds == ["temp_spill", "replication_slot_inactive", "dead_tuples", "replication_lag", "unused_index"]


def test_evidence_in_units_each_figure_once() -> None:
    evidence = {
        "reltuples": 200000.0,
        "columns": [["customer_id"]],
        "retained_bytes": 734003200.0,
        "lag_bytes": 734003200.0,
        "inactive_seconds": 7200,
        "exec_time_share": 0.1234,
        "mean_exec_ms": 12.5,
        "verified": False,
        "note": None,
        "plan_rows": 117647.0,
    }
    items = dict(evidence_items(evidence, "public.orders is planned for 117,647 rows"))
    assert items == {
        "reltuples": "200,000",
        "columns": "(customer_id)",
        "retained bytes": "700.0 MB",
        "inactive seconds": "2.0 h",
        "exec time share": "12.3%",
        "mean exec ms": "12.50 ms",
        "verified": "no",
    }
    assert figure("ratio", 0.25) == "25%" and figure("ratio", 3) == "300%" and figure("drift", 0.712) == "0.712"
    assert (
        figure("calls", 3) == "3"
        and figure("last_analyze", "2026-12-01T22:37:41.423023+00:00") == "2026-12-01 22:37:41 UTC"
    )
    zeros = evidence_items({"write_behind_bytes": 0, "write_lag_seconds": 0.0002, "flush_lag_seconds": 0.0003})
    assert zeros == [("write behind bytes", "0 B"), ("write lag seconds", "0s")]  # "0s" once


def test_the_page_leaves_the_records_that_tie_findings_together_to_the_json() -> None:
    from pgradar.exporters.status import evidence_items

    evidence = {
        "calls": 1200,
        "rows_per_call": 50000,
        "index_candidates": [{"columns": ["customer_id"], "sql": "CREATE INDEX ..."}],
        "served_by": {"kind": "seq_scan", "queryid": "42", "index_columns": ["customer_id"]},
        "shape_hash": "9f1c2e",
    }
    shown = dict(evidence_items(evidence))
    assert shown == {"calls": "1,200", "rows per call": "50,000"}
