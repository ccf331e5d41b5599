"""One run of ``pgradar check``: collect, judge a window, scope, print, and the exit code.

The command line parses flags and calls ``run``; everything the gate does
between reading the config and printing sits here (DESIGN 3.1 "check as a
gate"; the window rules and the typed result are in ``commands.gate``, the
baseline file in ``agent.derive.baseline``, the forms in ``exporters.report``
and ``exporters.ci_formats``). Every decision reads the ``CheckResult``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgradar.agent.collect import counters
from pgradar.agent.collect.db import DatabaseError
from pgradar.agent.derive import baseline as baselines
from pgradar.agent.model.check import FailOn, Scope, Window
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import AgentState
from pgradar.agent.settings.config import Config, DatabaseFilter
from pgradar.commands import gate
from pgradar.exporters.ci_formats import CI_FORMATS, append_step_summary, render_check
from pgradar.exporters.report import active_problems, target_status

EXIT_USAGE = 2


class CheckError(Exception):
    """Bad input or an unreachable target: one line on stderr, exit 2."""


@dataclass(frozen=True, slots=True)
class CheckOptions:
    format: str = "table"
    fail_on: str = "critical"
    window_s: float | None = None
    scope: Scope = field(default_factory=Scope)
    save_baseline: str | None = None
    baseline: str | None = None
    sample_s: float = 0.0  # --sample: database load sampled for this long (commands/sample.py)


def read_baseline(path: str) -> baselines.Baseline:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckError(f"--baseline: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CheckError(f"--baseline {path}: not a pgradar baseline (not text)") from None
    try:
        return baselines.from_json(text, path)
    except baselines.BaselineError as exc:
        raise CheckError(str(exc)) from None


def scoped(cfg: Config, database: str | None) -> Config:
    """``--database NAME``: every target visits that database alone."""
    if database is None:
        return cfg
    only = DatabaseFilter((database,), ())
    return replace(cfg, targets=tuple(replace(t, databases=only) for t in cfg.targets))


def _postgres(agent: Agent) -> dict[str, TargetRunner]:
    return {name: rt for name, rt in agent.runtimes.items() if rt.state.kind == "postgresql"}


def _identity(name: str, runtime: TargetRunner) -> baselines.Identity:
    try:
        return gate.identity_of(runtime)
    except DatabaseError as exc:
        raise CheckError(f"cannot read the identity of {name} for the baseline: {exc}") from None


def judge(
    agent: Agent,
    options: CheckOptions,
    saved: baselines.Baseline | None,
    first_pass: datetime,
    wait: Callable[[float], None],
) -> dict[str, Window]:
    """Collect, give the statement rules their window, classify again; the window of each target."""
    agent.run_once()
    windows: dict[str, Window] = {}
    if options.window_s:
        wait(options.window_s)
        agent.run_once()
    for name, rt in _postgres(agent).items():
        if rt.state.server is not None and options.scope.database is not None and not rt.state.databases:
            raise CheckError(
                f"--database {options.scope.database}: no such database on {name} (or one that "
                "does not allow connections)"
            )
    if options.save_baseline:  # the counters as read, before a baseline's differences replace any
        save(agent, options.save_baseline)
    if options.window_s:
        for name, rt in _postgres(agent).items():
            statements = rt.state.current().statements
            if statements is not None:
                windows[name] = Window(first_pass, statements.taken_at, "--window")
        return windows
    for name, rt in _postgres(agent).items():
        server, current = rt.state.server, rt.state.current().statements
        if server is None or current is None:
            continue
        target_saved = None
        if saved is not None:
            target_saved = saved.target(name)
            if target_saved is None:
                raise CheckError(
                    f"baseline {options.baseline} has no target {name} (it holds: "
                    f"{', '.join(t.name for t in saved.targets) or 'none'})"
                )
            why = baselines.refusal(target_saved, _identity(name, rt), str(options.baseline), current)
            if why:
                raise CheckError(why)
            window = Window(target_saved.taken_at, current.taken_at, "baseline")
        else:
            try:
                oldest = counters.oldest_statement_entry(rt.session(), server)
            except DatabaseError:
                oldest = None  # the reset time (or the server start) still bounds it
            window = gate.cumulative_window(server, current, oldest)
        if gate.apply_window(rt.state, window, target_saved):
            windows[name] = window
    agent.classify()
    return windows


def save(agent: Agent, path: str) -> None:
    """Write what this pass read (counters only) for a later ``--baseline``."""
    targets = []
    for name, rt in _postgres(agent).items():
        if not rt.state.up:
            continue
        latest = rt.state.current()
        targets.append(
            baselines.capture(
                name,
                _identity(name, rt),
                latest.statements,
                latest.tables,
                latest.indexes,
                latest.database,
                datetime.now(UTC),
            )
        )
    try:
        Path(path).write_text(baselines.to_json(baselines.Baseline(tuple(targets))), encoding="utf-8")
    except OSError as exc:
        raise CheckError(f"--save-baseline: cannot write {path}: {exc.strerror}") from None


def run(cfg: Config, options: CheckOptions, wait: Callable[[float], None] = time.sleep) -> int:
    """The whole check; returns the exit code, raises CheckError for a one-line exit 2."""
    if options.window_s and options.baseline:
        raise CheckError("--window and --baseline are two ways to choose the window: give one")
    saved = read_baseline(options.baseline) if options.baseline else None
    if options.format == "table":
        print(f"checking {len(cfg.targets) + len(cfg.pgbouncers)} target(s) ...", file=sys.stderr, flush=True)
    agent = Agent(scoped(cfg, options.scope.database))
    load = None
    try:
        windows = judge(agent, options, saved, datetime.now(UTC), wait)
        if options.sample_s:
            from pgradar.commands import sample

            load = sample.load_section(agent, sample.sample_load(agent, options.sample_s), cfg.statement_text)
    finally:
        agent.stop()
    if agent.custom:
        from pgradar.agent.runtime.custom_runner import failures

        for line in failures(agent.custom.values()):
            print(line, file=sys.stderr)
    return report(agent.state, windows, options, cfg, load=load)


def report(
    state: AgentState,
    windows: Mapping[str, Window],
    options: CheckOptions,
    cfg: Config,
    generated_at: datetime | None = None,
    load: Mapping[str, Any] | None = None,
) -> int:
    """Print the pass in ``options.format`` (and the step summary); the exit code, or CheckError when all are down."""
    result = gate.check_result(
        [target_status(t) for t in state],
        active_problems(state),
        windows,
        options.scope,
        cfg.ignore,
        generated_at or datetime.now(UTC),
        cfg.statement_text,
    )
    if load is not None:
        result = replace(result, load=load)
    fail_on = FailOn(options.fail_on)
    down = result.down
    if down and len(down) == len(result.targets) and options.format not in CI_FORMATS:
        raise CheckError("; ".join(f"cannot check {t.name}: {t.error}" for t in down))
    sys.stdout.write(render_check(result, options.format, fail_on))
    if load is not None and options.format in ("table", "markdown"):
        from pgradar.commands import sample

        sys.stdout.write("\n" + sample.load_lines(load))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if options.format == "github" and summary:
        append_step_summary(summary, render_check(result, "markdown", fail_on))
    for t in down:
        print(f"pgradar: error: cannot check {t.name}: {t.error}", file=sys.stderr)
    return EXIT_USAGE if down else result.exit_code(fail_on)
