"""Problems as a document: the JSON of DESIGN 3.1, a terminal table, Markdown.

``/problems`` and ``pgradar check --format json`` print the same document.
Statement texts never appear here by default: a problem names its statement
by queryid.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, Finding, TextPolicy
from pgradar.agent.runtime.problems import ActiveProblem, ordered

if TYPE_CHECKING:  # the command line reads FORMATS for --help: no pandas or sqlglot on import
    from pgradar.agent.model.plans import StatementPlan
    from pgradar.agent.runtime.state import AgentState, TargetState

FORMATS = ("table", "json", "markdown")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def target_entry(t: TargetState) -> dict[str, Any]:
    with t.lock:
        # What could not be seen: a collector switched off for a missing extension or privilege.
        disabled = [
            {"collector": name, "reason": s.disabled_reason, "fix": s.disabled_fix}
            for name, s in sorted(t.status.items())
            if s.disabled_reason
        ]
        return {
            "name": t.name,
            "server_version": t.server.version_num if t.server else None,
            "role": t.role,
            "ok": t.up,
            "error": None if t.up else (t.last_error or "not polled yet"),
            "disabled": disabled,
        }


def _not_seen(d: dict[str, Any]) -> str:
    """One line for a collector that is off: what was not seen, why, and the fix."""
    return f"collector {d['collector']} is off: {d['reason']}" + (f" (fix: {d['fix']})" if d["fix"] else "")


def active_problems(state: AgentState) -> list[ActiveProblem]:
    found: list[ActiveProblem] = []
    for t in state:
        with t.lock:
            found.extend(t.problems.values())
    return ordered(found)


def _shown(problem: dict[str, Any], policy: TextPolicy) -> dict[str, Any]:
    """A problem with every statement text in its evidence cut to the policy (or removed)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in STATEMENT_KEYS and isinstance(value, str):
            return policy.show(value)
        return value

    return {**problem, "evidence": walk(problem["evidence"])}


# Evidence keys that hold a statement's normalized text.
STATEMENT_KEYS = frozenset({"statement", "query", "text", "blocker_statement", "parent_statement"})


def document(
    state: AgentState, generated_at: datetime | None = None, text_policy: TextPolicy = DEFAULT_TEXT_POLICY
) -> dict[str, Any]:
    problems = active_problems(state)
    return {
        "version": 1,
        "generated_at": _iso(generated_at or datetime.now(UTC)),
        "targets": [target_entry(t) for t in state],
        "problems": [_shown(p.finding.to_json(p.first_seen), text_policy) for p in problems],
    }


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"


def _object(problem: dict[str, Any]) -> str:
    parts = [
        problem["database"],
        problem["schema"] and problem["relation"] and f"{problem['schema']}.{problem['relation']}",
        problem["index"] and f"index {problem['index']}",
        problem["queryid"] and f"queryid {problem['queryid']}",
        problem["standby"] and f"standby {problem['standby']}",
        problem["slot"] and f"slot {problem['slot']}",
        problem["pool"] and f"pool {problem['pool']}",
        problem.get("wait_event") and f"wait {problem['wait_event']}",
    ]
    return " ".join(p for p in parts if p) or "-"


def render_table(doc: dict[str, Any]) -> str:
    width = max(60, min(shutil.get_terminal_size((120, 40)).columns, 160))
    lines = []
    for t in doc["targets"]:
        health = "ok" if t["ok"] else f"DOWN: {t['error']}"
        version = t["server_version"] and f"PostgreSQL {t['server_version'] // 10000}"
        unknown = "" if t["role"] == "pgbouncer" else "?"  # a pgbouncer has no server version
        lines.append(f"target {t['name']}: {version or unknown} {t['role'] or ''} {health}".replace("  ", " "))
        for d in t.get("disabled", ()):
            lines.extend(textwrap.wrap(_not_seen(d), width, initial_indent="  ", subsequent_indent="    "))
    problems = doc["problems"]
    lines.append("")
    lines.append(f"{len(problems)} problem(s)" + (":" if problems else ""))
    for p in problems:
        lines.append("")
        lines.append(f"[{p['severity'].upper()}] {p['kind']} on {p['target']}: {_object(p)}")
        lines.extend(textwrap.wrap(p["summary"], width, initial_indent="  ", subsequent_indent="  "))
        for i, line in enumerate(p["recommendation"].splitlines()):  # one statement or comment a line
            lines.extend(
                textwrap.wrap(
                    line, width, initial_indent="  fix: " if i == 0 else "       ", subsequent_indent="         "
                )
            )
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# pgradar check",
        "",
        f"Generated {doc['generated_at']}.",
        "",
        "| target | version | role | status |",
        "|---|---|---|---|",
    ]
    for t in doc["targets"]:
        status = "ok" if t["ok"] else f"down: {_md(t['error'] or '')}"
        status += "".join(f"<br>{_md(_not_seen(d))}" for d in t.get("disabled", ()))
        lines.append(f"| {t['name']} | {t['server_version'] or ''} | {t['role'] or ''} | {status} |")
    lines += ["", f"## {len(doc['problems'])} problem(s)", ""]
    if doc["problems"]:
        lines += ["| severity | kind | target | object | summary | fix |", "|---|---|---|---|---|---|"]
        for p in doc["problems"]:
            lines.append(
                f"| {p['severity']} | {p['kind']} | {p['target']} | {_md(_object(p))} | "
                f"{_md(p['summary'])} | `{_md(p['recommendation'])}` |"
            )
    return "\n".join(lines) + "\n"


def render(doc: dict[str, Any], fmt: str) -> str:
    return {"json": render_json, "table": render_table, "markdown": render_markdown}[fmt](doc)


def render_explain(plan: StatementPlan, text: str, findings: list[Finding], *, as_json: bool) -> Any:
    """``pgradar explain``: the plan's facts and its findings (a dict for JSON, else text)."""
    summary = plan.summary
    facts: dict[str, Any] = {
        "database": plan.database,
        "queryid": str(plan.queryid) if plan.queryid else None,
        "user": plan.username,
        "skipped": plan.skipped,
        "parsed": plan.parsed,
        "plan": None
        if summary is None
        else {
            "total_cost": summary.total_cost,
            "plan_rows": summary.plan_rows,
            "shape_hash": summary.shape_hash,
            "nested_loops": summary.nested_loops,
            "sorts": list(summary.sorts),
            "seq_scans": [
                {
                    "schema": s.schema,
                    "relation": s.relation,
                    "filter": s.filter,
                    "plan_rows": s.plan_rows,
                    "reltuples": s.reltuples,
                }
                for s in summary.seq_scans
            ],
        },
        "advice": [
            {
                "definition": a.definition(),
                "verified": a.verified,
                "cost_before": a.cost_before,
                "cost_after": a.cost_after,
                "note": a.note or None,
            }
            for a in plan.advice
        ],
        "problems": [f.to_json() for f in findings],
    }
    if as_json:
        return facts
    lines = [
        f"statement {facts['queryid'] or '(text)'} in database {plan.database}, as {plan.username}:",
        *textwrap.wrap(" ".join(text.split()), 100, initial_indent="  ", subsequent_indent="  "),
    ]
    if plan.skipped:
        return "\n".join([*lines, f"not planned: {plan.skipped}"]) + "\n"
    assert summary is not None
    lines.append(
        f"generic plan: cost {summary.total_cost:,.1f}, {summary.plan_rows:,.0f} rows, "
        f"{summary.nested_loops} nested loop(s), shape {summary.shape_hash}"
    )
    lines += [f"  sort on {s}" for s in summary.sorts]
    lines += [
        f"  seq scan on {s.schema}.{s.relation} ({s.reltuples or 0:,.0f} rows)"
        + (f" filter {s.filter}" if s.filter else "")
        for s in summary.seq_scans
    ]
    if not plan.parsed:
        lines.append("  (sqlglot could not parse the text: plan-only advice)")
    lines += ["", f"{len(findings)} finding(s)" + (":" if findings else "")]
    for f in findings:
        lines += [
            "",
            f"[{f.severity.upper()}] {f.kind}: {f.summary}",
            *(f"  {line}" for line in f.recommendation.splitlines()),
        ]
    return "\n".join(lines) + "\n"
