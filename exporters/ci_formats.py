"""The forms of ``pgradar check`` that CI reads: JUnit XML and GitHub workflow annotations.

Both render the gate document (``agent.gate.gate_document``): problems in
scope, each with ``ignored``, and each target's judged window.

JUnit: one test suite per kind judged; a problem is a test case, failed when
it is at or above ``--fail-on`` (its summary, evidence and fix in the failure
body), passed below it, skipped when the config's ``ignore:`` accepts it; a
kind with no problem is one passing case ("no <kind> found"), so a report
shows what was checked. A target that could not be reached is an errored
case. CI systems (GitHub, GitLab, Jenkins) show these as test results.

GitHub: one workflow command per problem not ignored (``::error`` at or above
``--fail-on``, ``::warning`` for warning and critical below it, ``::notice``
for info), escaped by the runner's rules: ``%``, CR and LF in the message;
also ``:`` and ``,`` in a property (the title). The Markdown report goes to
``$GITHUB_STEP_SUMMARY`` (appended, as the runner expects from every step).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from pgradar.agent.model.findings import Severity, human_seconds

CI_FORMATS = ("junit", "github")


def _object(p: Mapping[str, Any]) -> str:
    parts = [
        p.get("database"),
        p.get("schema") and p.get("relation") and f"{p['schema']}.{p['relation']}",
        p.get("index") and f"index {p['index']}",
        p.get("queryid") and f"queryid {p['queryid']}",
        p.get("standby") and f"standby {p['standby']}",
        p.get("slot") and f"slot {p['slot']}",
        p.get("pool") and f"pool {p['pool']}",
        p.get("wait_event") and f"wait {p['wait_event']}",
    ]
    return " ".join(x for x in parts if x) or "-"


def fails(problem: Mapping[str, Any], fail_on: str) -> bool:
    """At or above ``fail_on`` and not accepted: what makes the exit code 1."""
    return (
        fail_on != "never"
        and not problem.get("ignored")
        and Severity(problem["severity"]).rank >= Severity(fail_on).rank
    )


def _body(p: Mapping[str, Any]) -> str:
    return (
        f"{p['summary']}\n\nobject: {p['target']} {_object(p)}\n\nevidence:\n"
        f"{json.dumps(p['evidence'], indent=2, default=str)}\n\nfix:\n{p['recommendation']}\n"
    )


def render_junit(doc: Mapping[str, Any], fail_on: str) -> str:
    kinds: list[str] = list(doc.get("scope", {}).get("kinds") or sorted({p["kind"] for p in doc["problems"]}))
    root = ET.Element("testsuites", name="pgradar check")
    total = failures = errors = skipped = 0
    down = [t for t in doc["targets"] if not t["ok"]]
    if down:
        suite = ET.SubElement(root, "testsuite", name="pgradar.targets")
        for t in down:
            case = ET.SubElement(suite, "testcase", classname="pgradar.targets", name=f"reach target {t['name']}")
            ET.SubElement(case, "error", message=str(t["error"]), type="unreachable").text = str(t["error"])
        suite.set("tests", str(len(down)))
        suite.set("errors", str(len(down)))
        suite.set("failures", "0")
        total, errors = total + len(down), errors + len(down)
    for kind in kinds:
        found = [p for p in doc["problems"] if p["kind"] == kind]
        suite = ET.SubElement(root, "testsuite", name=f"pgradar.{kind}")
        s_fail = s_skip = 0
        if not found:
            ET.SubElement(suite, "testcase", classname=f"pgradar.{kind}", name=f"no {kind} found")
        for p in found:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pgradar.{kind}",
                name=f"{p['severity']} {kind} on {p['target']}: {_object(p)}",
            )
            if p.get("ignored"):
                ET.SubElement(case, "skipped", message=f"accepted by ignore: {p.get('ignored_by') or ''}")
                s_skip += 1
            elif fails(p, fail_on):
                ET.SubElement(case, "failure", message=p["summary"], type=p["severity"]).text = _body(p)
                s_fail += 1
            else:
                ET.SubElement(case, "system-out").text = _body(p)
        n = max(1, len(found))
        suite.set("tests", str(n))
        suite.set("failures", str(s_fail))
        suite.set("errors", "0")
        suite.set("skipped", str(s_skip))
        total, failures, skipped = total + n, failures + s_fail, skipped + s_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the GitHub runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (title=...): the message's escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(doc: Mapping[str, Any], fail_on: str) -> str:
    lines = []
    for t in doc["targets"]:
        if not t["ok"]:
            title = "pgradar: cannot check " + str(t["name"])
            lines.append(f"::error title={escape_property(title)}::{escape_data(str(t['error']))}")
    for p in doc["problems"]:
        if p.get("ignored"):
            continue
        level = "error" if fails(p, fail_on) else "notice" if p["severity"] == "info" else "warning"
        title = f"pgradar {p['kind']} ({p['severity']}) on {p['target']}: {_object(p)}"
        message = f"{p['summary']}\nfix: {p['recommendation']}"
        lines.append(f"::{level} title={escape_property(title)}::{escape_data(message)}")
    counted = [p for p in doc["problems"] if not p.get("ignored")]
    ignored = len(doc["problems"]) - len(counted)
    lines.append(
        f"pgradar check: {len(counted)} problem(s), {sum(fails(p, fail_on) for p in counted)} at or above "
        f"--fail-on {fail_on}" + (f", {ignored} ignored" if ignored else "")
    )
    return "\n".join(lines) + "\n"


def append_step_summary(path: str, markdown: str) -> None:
    """Add the Markdown report to the job summary file the runner gave (``$GITHUB_STEP_SUMMARY``)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(markdown)


def window_line(doc: Mapping[str, Any]) -> str:
    """One line for the terminal and Markdown forms: the window each target was judged on."""
    parts = []
    for t in doc["targets"]:
        if t.get("window_since"):
            span = human_seconds(t["window_seconds"]) if t["window_seconds"] is not None else "unknown"
            parts.append(f"{t['name']}: since {t['window_since']} ({span}, {t['window_source']})")
    return "statement problems judged on counters " + ("; ".join(parts) if parts else "(none read)")


def _accepted_lines(doc: Mapping[str, Any], bullet: str) -> list[str]:
    ignored = [p for p in doc["problems"] if p.get("ignored")]
    if not ignored:
        return []
    return [
        f"{len(ignored)} accepted by ignore: in the config (not counted):",
        *(f"{bullet}{p['kind']} on {p['target']}: {_object(p)} ({p.get('ignored_by')})" for p in ignored),
    ]


def render_check(doc: Mapping[str, Any], fmt: str, fail_on: str) -> str:
    """``pgradar check`` in any of its forms; the human forms list accepted findings apart."""
    from pgradar.exporters.report import render_json, render_markdown, render_table

    if fmt == "json":
        return render_json(dict(doc))
    if fmt == "junit":
        return render_junit(doc, fail_on)
    if fmt == "github":
        return render_github(doc, fail_on)
    shown = {**doc, "problems": [p for p in doc["problems"] if not p.get("ignored")]}
    servers = any("window_since" in t for t in doc["targets"])  # a pgbouncer alone has no window to say
    if fmt == "markdown":
        return (
            render_markdown(shown)
            + (f"\n{window_line(doc)}.\n" if servers else "")
            + "".join(f"\n{line}" for line in _accepted_lines(doc, "- "))
            + ("\n" if _accepted_lines(doc, "") else "")
        )
    return (
        render_table(shown)
        + (f"\n{window_line(doc)}\n" if servers else "")
        + "".join(f"{line}\n" for line in _accepted_lines(doc, "  "))
    )
