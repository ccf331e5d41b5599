"""``pgradar check``'s outputs, byte for byte, from one recorded pass (fixtures/check/).

``input.json`` is a pass as the agent leaves it: targets up, down, with collectors
switched off, a pgbouncer; findings of several kinds and severities, some out of
scope (``--exclude-kinds``, ``--database``), some accepted by ``ignore:``; the window
each server was judged on. Every format (and the GitHub step summary, stderr and the
exit code) is compared with the files in ``expected/``, so a change to how ``check``
decides or renders shows here as a diff. After a deliberate change of output, record
them again with ``python tests/unit/test_check_outputs.py`` and read the diff.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.state import AgentState, CollectorStatus, TargetState
from pgradar.agent.settings.config import build
from pgradar.commands.check import CheckError, CheckOptions, report
from pgradar.commands.gate import Window, scope_from

FIXTURES = Path(__file__).parent / "fixtures" / "check"
EXPECTED = FIXTURES / "expected"
FORMATS = {"json": "json", "table": "txt", "markdown": "md", "junit": "xml", "github": "txt"}
FAIL_ON = ("info", "warning", "critical", "never")
COLUMNS = "100"  # the table form wraps at the terminal's width


def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "input.json").read_text(encoding="utf-8"))
    return data


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def finding(p: dict[str, Any]) -> Finding:
    kind = Kind.named(p["kind"])
    assert kind is not None, p["kind"]
    fields = {k: v for k, v in p.items() if k not in ("kind", "severity", "first_seen")}
    return Finding(kind=kind, severity=Severity(p["severity"]), **fields)


def state_of(data: dict[str, Any], names: set[str] | None = None) -> AgentState:
    now = moment(data["generated_at"])
    state = AgentState()
    for t in data["targets"]:
        if names is not None and t["name"] not in names:
            continue
        target = TargetState(
            t["name"],
            kind=t["kind"],
            server=ServerInfo(**t["server"]) if t["server"] else None,
            up=t["up"],
            last_error=t["last_error"],
        )
        for collector, off in t["collectors"].items():
            target.status[collector] = (
                CollectorStatus(runs=1, disabled_reason=off["reason"], disabled_fix=off["fix"])
                if off
                else CollectorStatus(runs=1, last_success_at=now)
            )
        for p in data["problems"]:
            if p["target"] == t["name"]:
                f = finding(p)
                target.problems[f.id] = ActiveProblem(f, moment(p["first_seen"]), now)
        state.targets[t["name"]] = target
    return state


def windows_of(data: dict[str, Any], names: set[str] | None = None) -> dict[str, Window]:
    return {
        t["name"]: Window(moment(w["since"]), moment(w["until"]), w["source"])
        for t in data["targets"]
        if (w := t["window"]) and (names is None or t["name"] in names)
    }


def options(data: dict[str, Any], fmt: str, fail_on: str | None = None) -> CheckOptions:
    flags = data["flags"]
    scope = scope_from(flags["kinds"], flags["exclude_kinds"], flags["database"])
    return CheckOptions(format=fmt, fail_on=fail_on or flags["fail_on"], scope=scope)


def outputs(
    data: dict[str, Any], fmt: str, summary: Path, fail_on: str | None = None, names: set[str] | None = None
) -> dict[str, Any]:
    """One ``check`` output: stdout, stderr, the step summary written, the exit code (of ``names`` alone if given)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = report(
            state_of(data, names),
            windows_of(data, names),
            options(data, fmt, fail_on),
            build(data["config"]),
            moment(data["generated_at"]),
        )
    written = summary.read_text(encoding="utf-8") if summary.exists() else None
    return {"stdout": out.getvalue(), "stderr": err.getvalue(), "summary": written, "exit": code}


@pytest.fixture
def summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", COLUMNS)
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    return path


def expected(name: str) -> str:
    return (EXPECTED / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_as_recorded(fmt: str, summary: Path) -> None:
    got = outputs(recorded(), fmt, summary)
    assert got["stdout"] == expected(f"check.{fmt}.{FORMATS[fmt]}")
    runs = json.loads(expected("runs.json"))
    assert {"stderr": got["stderr"], "exit": got["exit"]} == runs["formats"][fmt]
    if fmt == "github":  # the step summary is the Markdown report, appended
        assert got["summary"] == expected("check.github-summary.md")
    else:
        assert got["summary"] is None


# A target down makes the exit code 2 whatever is found: these are reachable targets alone.
EXIT_CASES = [(names, fail_on) for names in ("primary,standby,bouncer", "primary,bouncer") for fail_on in FAIL_ON]


@pytest.mark.parametrize(("names", "fail_on"), EXIT_CASES)
def test_exit_code_by_fail_on_is_as_recorded(names: str, fail_on: str, summary: Path) -> None:
    got = outputs(recorded(), "json", summary, fail_on, set(names.split(",")))
    assert got["exit"] == json.loads(expected("runs.json"))["exit"][names][fail_on]


def test_every_target_down_is_one_error_as_recorded(summary: Path) -> None:
    data = recorded()
    down = {t["name"] for t in data["targets"] if not t["up"]}
    with pytest.raises(CheckError) as err:
        report(state_of(data, down), {}, options(data, "table"), build(data["config"]))
    assert str(err.value) == json.loads(expected("runs.json"))["all_down_error"]


def record() -> None:  # run by hand after a deliberate change of output
    """Write expected/ from the code as it is."""
    data = recorded()
    EXPECTED.mkdir(exist_ok=True)
    os.environ["COLUMNS"] = COLUMNS
    runs: dict[str, Any] = {"formats": {}, "exit": {}}

    def one(fmt: str, fail_on: str | None = None, names: set[str] | None = None) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "step-summary.md"
            os.environ["GITHUB_STEP_SUMMARY"] = str(path)
            return outputs(data, fmt, path, fail_on, names)

    for fmt, ext in FORMATS.items():
        got = one(fmt)
        (EXPECTED / f"check.{fmt}.{ext}").write_text(got["stdout"], encoding="utf-8")
        if got["summary"] is not None:
            (EXPECTED / f"check.{fmt}-summary.md").write_text(got["summary"], encoding="utf-8")
        runs["formats"][fmt] = {"stderr": got["stderr"], "exit": got["exit"]}
    for names, fail_on in EXIT_CASES:
        runs["exit"].setdefault(names, {})[fail_on] = one("json", fail_on, set(names.split(",")))["exit"]
    down = {t["name"] for t in data["targets"] if not t["up"]}
    try:
        report(state_of(data, down), {}, options(data, "table"), build(data["config"]))
    except CheckError as exc:
        runs["all_down_error"] = str(exc)
    (EXPECTED / "runs.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    record()
