"""Problems as a document: the JSON of DESIGN 3.1, a terminal table, Markdown.

``/problems`` and ``pgradar check --format json`` print the same document.
Statement texts never appear here by default: a problem names its statement
by queryid.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgradar.agent.model.check import CheckResult, DisabledCollector, KindNotSeen, TargetStatus, Window
from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, Finding, TextPolicy
from pgradar.agent.runtime.problems import ActiveProblem, ordered

if TYPE_CHECKING:  # the command line reads FORMATS for --help: this module imports little at run time
    from pgradar.agent.model.plans import StatementPlan
    from pgradar.agent.runtime.state import AgentState, TargetState

FORMATS = ("table", "json", "markdown")


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def target_status(t: TargetState) -> TargetStatus:
    """One target's health, read under its lock, with the collectors a missing extension or privilege stopped."""
    with t.lock:
        disabled = tuple(
            DisabledCollector(name, s.disabled_reason, s.disabled_fix)
            for name, s in sorted(t.status.items())
            if s.disabled_reason
        )
        return TargetStatus(
            t.name,
            t.server.version_num if t.server else None,
            t.role,
            t.up,
            None if t.up else (t.last_error or "not polled yet"),
            disabled,
            _kinds_not_seen(t),
        )


def target_json(t: TargetStatus) -> dict[str, Any]:
    return {
        "name": t.name,
        "server_version": t.server_version,
        "role": t.role,
        "ok": t.ok,
        "error": t.error,
        "disabled": [{"collector": d.collector, "reason": d.reason, "fix": d.fix} for d in t.disabled],
        **({"not_seen": [_not_seen_json(k) for k in t.not_seen]} if t.not_seen else {}),
    }


def _not_seen_json(k: KindNotSeen) -> dict[str, str]:
    return {"kind": k.kind, "reason": k.reason, "fix": k.fix}


SERVER_LOG_FIX = "name the server log in targets[i].auto_explain_log (stderr or jsonlog), readable by pgradar"


def _kinds_not_seen(t: TargetState) -> tuple[KindNotSeen, ...]:
    """Kinds only the server log shows, for a PostgreSQL target whose log pgradar does not read (as disabled)."""
    if t.server is None or t.role == "pgbouncer":  # not polled yet: nothing to say of it
        return ()
    log = t.current().auto_explain
    if log is not None and log.path is not None:
        return ()
    reason = "no server log is read for this target (pg_stat_statements never records a cancelled statement)"
    return (KindNotSeen("statement_timeout", reason, SERVER_LOG_FIX),)


def _kind_not_seen(k: KindNotSeen) -> str:
    return f"kind {k.kind} is not seen: {k.reason} (fix: {k.fix})"


def _not_seen(d: DisabledCollector) -> str:
    """One line for a collector that is off: what was not seen, why, and the fix."""
    return f"collector {d.collector} is off: {d.reason}" + (f" (fix: {d.fix})" if d.fix else "")


def active_problems(state: AgentState) -> list[ActiveProblem]:
    found: list[ActiveProblem] = []
    for t in state:
        with t.lock:
            found.extend(t.problems.values())
    return ordered(found)


def shown_evidence(evidence: Mapping[str, Any], policy: TextPolicy) -> dict[str, Any]:
    """A finding's evidence with every statement text in it cut to the policy (or removed)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in STATEMENT_KEYS and isinstance(value, str):
            return policy.show(value)
        return value

    shown: dict[str, Any] = walk(dict(evidence))
    return shown


def with_text_policy(problem: dict[str, Any], policy: TextPolicy) -> dict[str, Any]:
    """A problem with every statement text in its evidence cut to the policy (or removed)."""
    return {**problem, "evidence": shown_evidence(problem["evidence"], policy)}


# Evidence keys that hold a statement's normalized text.
STATEMENT_KEYS = frozenset({"statement", "query", "text", "blocker_statement", "parent_statement"})


def document(
    state: AgentState, generated_at: datetime | None = None, text_policy: TextPolicy = DEFAULT_TEXT_POLICY
) -> dict[str, Any]:
    problems = active_problems(state)
    return {
        "version": 1,
        "generated_at": iso_utc(generated_at or datetime.now(UTC)),
        "targets": [target_json(target_status(t)) for t in state],
        "problems": [with_text_policy(p.finding.to_json(p.first_seen), text_policy) for p in problems],
    }


def check_document(result: CheckResult) -> dict[str, Any]:
    """``pgradar check --format json``: the /problems document, scoped, with ``ignored`` and the windows judged.

    Each PostgreSQL target gets ``window_since``, ``window_seconds`` and
    ``window_source`` (None when its statements could not be read; a pgbouncer
    has none of them); the top level gets the shortest of them (the latest
    ``window_since``). Each problem gets ``ignored`` and ``ignored_by`` (the
    rule). ``scope`` lists the kinds judged.
    """
    targets = []
    for t in result.targets:
        entry = target_json(t.status)
        if not t.status.is_pgbouncer:
            entry.update(_window_fields(t.window))
        targets.append(entry)
    problems = [
        {
            **with_text_policy(f.finding.to_json(f.first_seen), result.text_policy),
            "ignored": f.ignored,
            "ignored_by": f.ignored_by,
        }
        for f in result.findings
    ]
    shortest = _window_fields(result.window)
    return {
        "version": 1,
        "generated_at": iso_utc(result.generated_at),
        "targets": targets,
        "problems": problems,
        "window_since": shortest["window_since"],
        "window_seconds": shortest["window_seconds"],
        "scope": {"kinds": [kind.value for kind in result.scope.kinds], "database": result.scope.database},
        **({"load": dict(result.load)} if result.load is not None else {}),
    }


def _window_fields(w: Window | None) -> dict[str, Any]:
    return {
        "window_since": iso_utc(w.since) if w and w.since else None,
        "window_seconds": round(w.seconds) if w and w.seconds is not None else None,
        "window_source": w.source if w else None,
    }


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"


def object_text(f: Finding) -> str:
    """A finding's object in a few words: ``app public.orders index orders_status_idx``."""
    parts = [
        f.database,
        f.schema and f.relation and f"{f.schema}.{f.relation}",
        f.index and f"index {f.index}",
        f.queryid and f"queryid {f.queryid}",
        f.standby and f"standby {f.standby}",
        f.slot and f"slot {f.slot}",
        f.pool and f"pool {f.pool}",
        f.wait_event and f"wait {f.wait_event}",
    ]
    return " ".join(p for p in parts if p) or "-"


def render_table(result: CheckResult) -> str:
    """The terminal form: each target's health, then the findings not accepted, most severe first."""
    width = max(60, min(shutil.get_terminal_size((120, 40)).columns, 160))
    lines = []
    for target in result.targets:
        t = target.status
        health = "ok" if t.ok else f"DOWN: {t.error}"
        version = t.server_version and f"PostgreSQL {t.server_version // 10000}"
        unknown = "" if t.is_pgbouncer else "?"  # a pgbouncer has no server version
        lines.append(f"target {t.name}: {version or unknown} {t.role or ''} {health}".replace("  ", " "))
        for d in t.disabled:
            lines.extend(textwrap.wrap(_not_seen(d), width, initial_indent="  ", subsequent_indent="    "))
        for k in t.not_seen:
            lines.extend(textwrap.wrap(_kind_not_seen(k), width, initial_indent="  ", subsequent_indent="    "))
    shown = result.counted
    lines.append("")
    lines.append(f"{len(shown)} problem(s)" + (":" if shown else ""))
    for checked in shown:
        p = checked.finding
        lines.append("")
        lines.append(f"[{p.severity.upper()}] {p.kind} on {p.target}: {object_text(p)}")
        lines.extend(textwrap.wrap(p.summary, width, initial_indent="  ", subsequent_indent="  "))
        for i, line in enumerate(p.recommendation.splitlines()):  # one statement or comment a line
            lines.extend(
                textwrap.wrap(
                    line, width, initial_indent="  fix: " if i == 0 else "       ", subsequent_indent="         "
                )
            )
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: CheckResult) -> str:
    """The Markdown report (also the GitHub step summary): targets, then the findings not accepted."""
    lines = [
        "# pgradar check",
        "",
        f"Generated {iso_utc(result.generated_at)}.",
        "",
        "| target | version | role | status |",
        "|---|---|---|---|",
    ]
    for target in result.targets:
        t = target.status
        status = "ok" if t.ok else f"down: {_md(t.error or '')}"
        status += "".join(f"<br>{_md(_not_seen(d))}" for d in t.disabled)
        status += "".join(f"<br>{_md(_kind_not_seen(k))}" for k in t.not_seen)
        lines.append(f"| {t.name} | {t.server_version or ''} | {t.role or ''} | {status} |")
    shown = result.counted
    lines += ["", f"## {len(shown)} problem(s)", ""]
    if shown:
        lines += ["| severity | kind | target | object | summary | fix |", "|---|---|---|---|---|---|"]
        for checked in shown:
            p = checked.finding
            lines.append(
                f"| {p.severity} | {p.kind} | {p.target} | {_md(object_text(p))} | "
                f"{_md(p.summary)} | `{_md(p.recommendation)}` |"
            )
    return "\n".join(lines) + "\n"


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
