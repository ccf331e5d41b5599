"""The forms of ``pgradar check`` that CI reads: JUnit XML and GitHub workflow annotations.

Both render the typed result of the pass (``agent.model.check.CheckResult``):
findings in scope, each marked when accepted, and each target's judged window.

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

from pgradar.agent.model.check import CheckResult, FailOn
from pgradar.agent.model.findings import Finding, TextPolicy, human_seconds
from pgradar.exporters.report import (
    check_document,
    iso_utc,
    object_text,
    render_json,
    render_markdown,
    render_table,
    shown_evidence,
)

CI_FORMATS = ("junit", "github")


def _body(p: Finding, policy: TextPolicy) -> str:
    return (
        f"{p.summary}\n\nobject: {p.target} {object_text(p)}\n\nevidence:\n"
        f"{json.dumps(shown_evidence(p.evidence, policy), indent=2, default=str)}\n\nfix:\n{p.recommendation}\n"
    )


def render_junit(result: CheckResult, fail_on: FailOn) -> str:
    kinds = [kind.value for kind in result.scope.kinds]
    root = ET.Element("testsuites", name="pgradar check")
    total = failures = errors = skipped = 0
    down = result.down
    if down:
        suite = ET.SubElement(root, "testsuite", name="pgradar.targets")
        for t in down:
            case = ET.SubElement(suite, "testcase", classname="pgradar.targets", name=f"reach target {t.name}")
            ET.SubElement(case, "error", message=str(t.error), type="unreachable").text = str(t.error)
        suite.set("tests", str(len(down)))
        suite.set("errors", str(len(down)))
        suite.set("failures", "0")
        total, errors = total + len(down), errors + len(down)
    for kind in kinds:
        found = [f for f in result.findings if f.finding.kind == kind]
        suite = ET.SubElement(root, "testsuite", name=f"pgradar.{kind}")
        s_fail = s_skip = 0
        if not found:
            ET.SubElement(suite, "testcase", classname=f"pgradar.{kind}", name=f"no {kind} found")
        for checked in found:
            p = checked.finding
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pgradar.{kind}",
                name=f"{p.severity} {kind} on {p.target}: {object_text(p)}",
            )
            if checked.ignored:
                ET.SubElement(case, "skipped", message=f"accepted by ignore: {checked.ignored_by or ''}")
                s_skip += 1
            elif checked.fails(fail_on):
                ET.SubElement(case, "failure", message=p.summary, type=p.severity).text = _body(p, result.text_policy)
                s_fail += 1
            else:
                ET.SubElement(case, "system-out").text = _body(p, result.text_policy)
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


def render_github(result: CheckResult, fail_on: FailOn) -> str:
    lines = []
    for t in result.down:
        title = "pgradar: cannot check " + str(t.name)
        lines.append(f"::error title={escape_property(title)}::{escape_data(str(t.error))}")
    counted = result.counted
    for checked in counted:
        p = checked.finding
        level = "error" if checked.fails(fail_on) else "notice" if p.severity == "info" else "warning"
        title = f"pgradar {p.kind} ({p.severity}) on {p.target}: {object_text(p)}"
        message = f"{p.summary}\nfix: {p.recommendation}"
        lines.append(f"::{level} title={escape_property(title)}::{escape_data(message)}")
    ignored = len(result.ignored)
    lines.append(
        f"pgradar check: {len(counted)} problem(s), {len(result.failing(fail_on))} at or above "
        f"--fail-on {fail_on}" + (f", {ignored} ignored" if ignored else "")
    )
    return "\n".join(lines) + "\n"


def append_step_summary(path: str, markdown: str) -> None:
    """Add the Markdown report to the job summary file the runner gave (``$GITHUB_STEP_SUMMARY``)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(markdown)


def window_line(result: CheckResult) -> str:
    """One line for the terminal and Markdown forms: the window each target was judged on."""
    parts = []
    for t in result.targets:
        w = t.window
        if w is not None and w.since is not None:
            span = human_seconds(round(w.seconds)) if w.seconds is not None else "unknown"
            parts.append(f"{t.status.name}: since {iso_utc(w.since)} ({span}, {w.source})")
    return "statement problems judged on counters " + ("; ".join(parts) if parts else "(none read)")


def _accepted_lines(result: CheckResult, bullet: str) -> list[str]:
    ignored = result.ignored
    if not ignored:
        return []
    return [
        f"{len(ignored)} accepted by ignore: in the config (not counted):",
        *(
            f"{bullet}{f.finding.kind} on {f.finding.target}: {object_text(f.finding)} ({f.ignored_by})"
            for f in ignored
        ),
    ]


def render_check(result: CheckResult, fmt: str, fail_on: FailOn) -> str:
    """``pgradar check`` in any of its forms; the human forms list accepted findings apart."""
    if fmt == "json":
        return render_json(check_document(result))
    if fmt == "junit":
        return render_junit(result, fail_on)
    if fmt == "github":
        return render_github(result, fail_on)
    servers = any(not t.status.is_pgbouncer for t in result.targets)  # a pgbouncer alone has no window to say
    if fmt == "markdown":
        return (
            render_markdown(result)
            + (f"\n{window_line(result)}.\n" if servers else "")
            + "".join(f"\n{line}" for line in _accepted_lines(result, "- "))
            + ("\n" if _accepted_lines(result, "") else "")
        )
    return (
        render_table(result)
        + (f"\n{window_line(result)}\n" if servers else "")
        + "".join(f"{line}\n" for line in _accepted_lines(result, "  "))
    )
