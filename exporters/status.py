"""The status page at ``/``: the agent's state as one self-contained HTML page.

For users without Grafana, and for ``pgradar demo``. Server-rendered from
the agent's state like ``/metrics`` (no request touches a database), with no
build step, no script and no external asset: the agent often runs where
nothing can be fetched. Inline CSS, inline SVG sparklines, a meta refresh.

Every text that comes from a database or a configuration (target names,
errors, statement texts, evidence) goes through ``html.escape``. Statement
texts are pg_stat_statements' normalized texts (constants already replaced
by ``$n``), shown as the ``statement_text`` policy allows (cut to
``max_length``, or hidden), in the top statements and in evidence alike;
pg_stat_activity's raw texts are never shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pgradar.agent.derive.deltas import rank_statements
from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, Severity, TextPolicy, human_bytes, human_seconds
from pgradar.agent.model.statements import StatementInterval, StatementKey
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.http import Route
from pgradar.exporters.load_chart import load_chart, load_statements
from pgradar.exporters.report import active_problems, with_text_policy

TOP_STATEMENTS = 10  # per target

CSS = """
:root{--fg:#1d2330;--muted:#5b6473;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;
--critical:#b3261e;--warning:#a15c00;--info:#1f5fa8;--ok:#1b7f3b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:14px 24px;background:#1d2330;color:#fff;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{margin:0;font-size:20px}header span{color:#c7cdd8;font-size:13px}
main{padding:8px 24px 32px;max-width:1400px}
h2{font-size:16px;margin:22px 0 8px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:13px}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{margin:6px 0 0;padding:8px 10px;background:#f0f2f5;border:1px solid var(--line);border-radius:4px;
white-space:pre-wrap;word-break:break-word;user-select:all}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.up{background:var(--ok)}.down{background:var(--critical)}
.sev-critical{background:var(--critical)}.sev-warning{background:var(--warning)}.sev-info{background:var(--info)}
.problem{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--line);border-radius:4px;
padding:10px 12px;margin:8px 0}
.problem.critical{border-left-color:var(--critical)}.problem.warning{border-left-color:var(--warning)}
.problem.info{border-left-color:var(--info)}
.problem .head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.kind{font-weight:600}.object,.muted{color:var(--muted)}
.evidence{margin:6px 0 0;font-size:12.5px;color:var(--muted)}.evidence code{color:var(--fg)}
.stmt{max-width:640px;white-space:pre-wrap;word-break:break-word}
svg.spark{display:block}svg.spark polyline{fill:none;stroke:#1f5fa8;stroke-width:1.5}
svg.spark circle{fill:#1f5fa8}
.empty{color:var(--muted);font-style:italic}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def object_label(p: ActiveProblem) -> str:
    """The problem's object as a DBA names it: database, schema.relation, index, queryid, ..."""
    f = p.finding
    parts = [
        f.database and f"database {f.database}",
        f.relation and (f"{f.schema}.{f.relation}" if f.schema else f.relation),
        f.index and f"index {f.index}",
        f.queryid and f"queryid {f.queryid}",
        f.standby and f"standby {f.standby}",
        f.slot and f"slot {f.slot}",
        f.pool and f"pool {f.pool}",
    ]
    return ", ".join(x for x in parts if x) or "server"


def sparkline(values: Sequence[float], width: int = 140, height: int = 28, label: str = "") -> str:
    """An inline SVG line of ``values`` (oldest first), scaled to its own min and max."""
    title = f"<title>{_e(label)}</title>" if label else ""
    head = (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">{title}'
    )
    if not values:
        return head + "</svg>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    pad = 3.0

    def point(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / (len(values) - 1) if len(values) > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * ((v - low) / span if high > low else 0.5)
        return round(x, 1), round(y, 1)

    points = [point(i, v) for i, v in enumerate(values)]
    last_x, last_y = points[-1]
    line = f'<polyline points="{" ".join(f"{x},{y}" for x, y in points)}"/>' if len(points) > 1 else ""
    return head + line + f'<circle cx="{last_x}" cy="{last_y}" r="2.2"/></svg>'


def mean_exec_series(intervals: Iterable[StatementInterval], key: StatementKey) -> list[float]:
    """Mean execution time (ms) of one statement in each kept interval where it ran, oldest first."""
    series = []
    for interval in intervals:
        for delta in interval.deltas:
            if delta.key == key:
                series.append(delta.mean_exec_ms)
                break
    return series


def _ms(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:,.2f} ms"


def _target_rows(state: AgentState) -> str:
    rows = []
    for t in state:
        with t.lock:
            server, up, error, databases = t.server, t.up, t.last_error, t.databases
            disabled = sorted(
                (name, s.disabled_reason + (f" (fix: {s.disabled_fix})" if s.disabled_fix else ""))
                for name, s in t.status.items()
                if s.disabled_reason
            )
        health = (
            '<span class="badge up">up</span>'
            if up
            else f'<span class="badge down">down</span> <span class="muted">{_e(error or "not polled yet")}</span>'
        )
        notes = "".join(f'<div class="muted">collector {_e(n)} off: {_e(r)}</div>' for n, r in disabled)
        rows.append(
            f'<tr class="target" data-target="{_e(t.name)}"><td>{_e(t.name)}</td>'
            f"<td>{_e(server.version if server else '')}</td><td>{_e(server.role if server else '')}</td>"
            f'<td>{health}{notes}</td><td class="num">{len(databases)}</td></tr>'
        )
    if not rows:
        return '<p class="empty">no targets configured</p>'
    return (
        "<table><thead><tr><th>target</th><th>PostgreSQL</th><th>role</th><th>health</th>"
        "<th>databases</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _number(value: float) -> str:
    """A count without ``.0``; a fraction with as few decimals as it needs."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def figure(key: str, value: Any) -> str:
    """One evidence value as a DBA reads it: bytes, durations and shares in their units, lists as lists."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if key.endswith("_bytes") or key == "bytes":
            return human_bytes(float(value))
        if key.endswith(("_seconds", "_s")):
            return human_seconds(float(value))
        if key.endswith("_ms"):
            return _ms(float(value))
        if key.endswith(("_share", "ratio")):
            return f"{value:.1%}".replace(".0%", "%")
        return _number(value)
    if isinstance(value, (list, tuple)):
        return "; ".join(
            f"({', '.join(map(str, v))})" if isinstance(v, (list, tuple)) else figure(key, v) for v in value
        )
    if isinstance(value, dict):
        return ", ".join(f"{k} {figure(k, v)}" for k, v in value.items() if v is not None)
    if isinstance(value, str) and _ISO.match(value):  # a moment: to the second, in UTC
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return _iso(moment).replace("T", " ").replace("Z", " UTC") if moment.tzinfo else value[:19].replace("T", " ")
    return str(value)


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


# Evidence that ties findings together for the machine (the index merge's candidate records, which
# finding's index serves this one, a plan's shape hash): in the JSON, not on the page, where the fix
# already says what to create and where.
INTERNAL_EVIDENCE = frozenset({"index_candidates", "served_by", "shape_hash"})


def evidence_items(evidence: dict[str, Any], summary: str = "") -> list[tuple[str, str]]:
    """(key, formatted value) of the evidence worth showing under a summary: each figure once.

    Left out: empty values, the records that tie findings together
    (``INTERNAL_EVIDENCE``), a figure the summary already shows, and a
    number equal to one shown before it (the same bytes under two names).
    """
    shown: list[tuple[str, str]] = []
    numbers: set[float] = set()
    texts: set[str] = set()
    for key, value in evidence.items():
        if value is None or value == [] or value == "" or key in INTERNAL_EVIDENCE:
            continue
        text = figure(key, value)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if is_number and (float(value) in numbers or text in texts or (len(text) > 2 and text in summary)):
            continue
        if is_number:
            numbers.add(float(value))
            texts.add(text)
        shown.append((key.replace("_", " "), text))
    return shown


def _evidence(evidence: dict[str, Any], summary: str = "") -> str:
    items = [f"{_e(k)} <code>{_e(v)}</code>" for k, v in evidence_items(evidence, summary)]
    return f'<div class="evidence">{" · ".join(items)}</div>' if items else ""


def _problem(p: ActiveProblem, now: datetime, policy: TextPolicy) -> str:
    f = p.finding
    since = human_seconds(max((now - p.first_seen).total_seconds(), 0.0))
    # The object as data attributes too, for scripts and tests that look for one problem.
    fields = "".join(f' data-{name}="{_e(value)}"' for name, value in f.object.items() if value is not None)
    return (
        f'<div class="problem {_e(f.severity)}" data-kind="{_e(f.kind)}" data-severity="{_e(f.severity)}" '
        f'data-target="{_e(f.target)}" data-id="{_e(f.id)}"{fields}>'
        f'<div class="head"><span class="badge sev-{_e(f.severity)}">{_e(f.severity)}</span>'
        f'<span class="kind">{_e(f.kind)}</span><span class="object">on {_e(f.target)}: {_e(object_label(p))}'
        f'</span><span class="muted">for {_e(since)}</span></div>'
        f"<div>{_e(f.summary)}</div>{_evidence(with_text_policy(f.to_json(), policy)['evidence'], f.summary)}"
        f'<pre class="fix" title="fix (click to select)"><code>{_e(f.recommendation)}</code></pre></div>'
    )


def _problems(state: AgentState, now: datetime, policy: TextPolicy) -> str:
    problems = active_problems(state)
    if not problems:
        return '<h2>Problems</h2><p class="empty" id="no-problems">no active problems</p>'
    counts = ", ".join(f"{sum(p.finding.severity == s for p in problems)} {s}" for s in reversed(Severity))
    out = [f'<h2>Problems <span class="muted">({len(problems)}: {_e(counts)})</span></h2>']
    for severity in reversed(Severity):  # critical first
        group = [p for p in problems if p.finding.severity == severity]
        if group:
            out.append(
                f'<section class="severity" id="severity-{severity}" data-severity="{severity}">'
                f"<h3>{severity} ({len(group)})</h3>" + "".join(_problem(p, now, policy) for p in group) + "</section>"
            )
    return "".join(out)


def _statements(t: TargetState, top_n: int, policy: TextPolicy) -> str:
    with t.lock:
        intervals = tuple(t.statement_intervals)
        texts = dict(t.statement_texts)
        totals = {k: dict(v) for k, v in t.statement_totals.counters.items()}
    ranked = rank_statements(intervals, top_n)
    if not ranked:
        return (
            f'<h3>{_e(t.name)}</h3><p class="empty">no statement activity seen yet '
            "(needs two polls of pg_stat_statements)</p>"
        )
    rows = []
    for delta in ranked:
        acc = totals.get(delta.key, {})
        calls = acc.get("calls", float(delta.calls))
        total_ms = acc.get("total_exec_ms", delta.total_exec_ms)
        # One line (layout is not meaning), then the policy: cut or hidden.
        text = policy.show(" ".join(texts.get((delta.dbid, delta.queryid), "").split())) or ""
        series = mean_exec_series(intervals, delta.key)
        label = f"mean exec time per interval (ms), oldest first: {', '.join(f'{v:.2f}' for v in series)}"
        rows.append(
            f'<tr class="statement" data-queryid="{delta.queryid}"><td><code>{delta.queryid}</code></td>'
            f"<td>{_e(delta.database)}</td><td>{_e(delta.username)}</td>"
            f'<td class="num">{calls:,.0f}</td><td class="num">{_ms(delta.mean_exec_ms)}</td>'
            f'<td class="num">{_ms(total_ms)}</td><td>{sparkline(series, label=label)}</td>'
            f'<td class="stmt"><code>{_e(text)}</code></td></tr>'
        )
    return (
        f"<h3>{_e(t.name)}</h3><table><thead><tr><th>queryid</th><th>database</th><th>user</th>"
        "<th>calls</th><th>mean (last interval)</th><th>total</th><th>mean, recent intervals</th>"
        "<th>statement (normalized)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _load(t: TargetState, now: datetime, policy: TextPolicy) -> str:
    """A target's database load: the last hour by wait class, and the top statements by load with their waits."""
    with t.lock:
        window = t.load.window(t.cpus)
        texts = {queryid: text for (_, queryid), text in t.statement_texts.items()}
    if not window.buckets:
        return f'<h3>{_e(t.name)}</h3><p class="empty">no load sampled yet</p>'
    return (
        f'<h3>{_e(t.name)}</h3><div class="load-chart" data-target="{_e(t.name)}">'
        f"{load_chart(window, now.timestamp())}</div>"
        f'<p class="muted">top statements by load over the last hour</p>{load_statements(window, texts, policy)}'
    )


def render_status(
    state: AgentState,
    now: datetime | None = None,
    *,
    top_n: int = TOP_STATEMENTS,
    text_policy: TextPolicy = DEFAULT_TEXT_POLICY,
    refresh_s: int | None = 15,
) -> str:
    """The whole page. ``refresh_s`` adds a meta refresh (None: none)."""
    now = now or datetime.now(UTC)
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    started = f" · agent started {_e(_iso(state.started_at))}" if state.started_at else ""
    statements = "".join(_statements(t, top_n, text_policy) for t in state) or '<p class="empty">no targets</p>'
    load = "".join(_load(t, now, text_policy) for t in state if t.kind == "postgresql")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"{refresh}<title>pgradar status</title>"
        # The page needs nothing from anywhere: no script, no font, no image outside it.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>pgradar</h1><span>generated {_e(_iso(now))}{started}</span>"
        '<span><a style="color:#c7cdd8" href="metrics">/metrics</a> · '
        '<a style="color:#c7cdd8" href="problems">/problems</a></span></header><main>'
        f"<h2>Targets</h2>{_target_rows(state)}"
        f"{_problems(state, now, text_policy)}"
        f'<h2>Database load <span class="muted">(active sessions sampled every second)</span></h2>{load}'
        f'<h2>Top statements <span class="muted">(by execution time over the recent intervals)</span></h2>'
        f"{statements}</main></body></html>\n"
    )


def status_route(
    state: AgentState,
    *,
    top_n: int = TOP_STATEMENTS,
    text_policy: TextPolicy = DEFAULT_TEXT_POLICY,
    refresh_s: int | None = 15,
) -> Route:
    """The ``/`` route of ``AgentHTTPServer``."""

    def route(query: dict[str, list[str]], accept: str) -> tuple[int, str, bytes]:
        page = render_status(state, top_n=top_n, text_policy=text_policy, refresh_s=refresh_s)
        return 200, "text/html; charset=utf-8", page.encode()

    return route
