"""What one pass of ``pgradar check`` found, as typed records: the gate decides on these.

``CheckResult`` holds each target's health (and what it could not see), the window its
statement counters were judged on, and the findings in scope, each marked when an
``ignore:`` rule accepts it. The exit code and every form's "fails or not" read the
typed severities here; the forms (JSON, table, Markdown, JUnit, GitHub) only render
it. An optional section (such as database load) is one more field with a default of
None, rendered where it is not None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, Finding, Kind, Severity, TextPolicy


class FailOn(StrEnum):
    """``--fail-on``: the least severity that fails the gate, or never."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    NEVER = "never"

    def catches(self, severity: Severity) -> bool:
        return self is not FailOn.NEVER and severity.rank >= Severity(self.value).rank


@dataclass(frozen=True, slots=True)
class Scope:
    """What the gate judges: these kinds, in this database (None: every database)."""

    kinds: tuple[Kind, ...] = tuple(Kind)
    database: str | None = None

    def keeps(self, finding: Finding) -> bool:
        """A finding in scope: its kind is judged, and it is in the database (or belongs to none)."""
        if finding.kind not in self.kinds:
            return False
        return self.database is None or finding.database in (None, self.database)


@dataclass(frozen=True, slots=True)
class Window:
    """The span of counters the statement rules judged on one target."""

    since: datetime | None
    until: datetime
    source: str  # what bounds it: "baseline", "pg_stat_statements reset", "server start", ...

    @property
    def seconds(self) -> float | None:
        return None if self.since is None else max(0.0, (self.until - self.since).total_seconds())


@dataclass(frozen=True, slots=True)
class DisabledCollector:
    """A collector switched off for a missing extension or privilege: what was not seen, why, the fix."""

    collector: str
    reason: str
    fix: str | None


@dataclass(frozen=True, slots=True)
class KindNotSeen:
    """A kind only a source pgradar does not read would show (the server log): why, and the fix."""

    kind: str
    reason: str
    fix: str


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One target's health as the last pass left it."""

    name: str
    server_version: int | None  # server_version_num; None for a pgbouncer or a server never reached
    role: str | None  # "primary", "standby", "pgbouncer", or None when never reached
    ok: bool
    error: str | None
    disabled: tuple[DisabledCollector, ...] = ()
    not_seen: tuple[KindNotSeen, ...] = ()

    @property
    def is_pgbouncer(self) -> bool:
        """No statement counters, so no window to judge or to say."""
        return self.role == "pgbouncer"


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    status: TargetStatus
    window: Window | None = None  # None: its statements were not read


@dataclass(frozen=True, slots=True)
class CheckedFinding:
    finding: Finding
    first_seen: datetime | None = None
    ignored_by: str | None = None  # the ``ignore:`` rule that accepts it, as the config wrote it

    @property
    def ignored(self) -> bool:
        """Accepted: still shown, never counted."""
        return self.ignored_by is not None

    def fails(self, fail_on: FailOn) -> bool:
        """At or above ``--fail-on`` and not accepted: what makes the exit code 1."""
        return not self.ignored and fail_on.catches(self.finding.severity)


@dataclass(frozen=True, slots=True)
class CheckResult:
    generated_at: datetime
    targets: tuple[CheckedTarget, ...]
    findings: tuple[CheckedFinding, ...]  # in scope, most severe first
    scope: Scope = Scope()
    text_policy: TextPolicy = DEFAULT_TEXT_POLICY  # how much statement text the forms show
    # ``check --sample``: database load per target as the JSON shows it (no decision reads it;
    # wait_bottleneck's findings are among ``findings``); None without sampling.
    load: Mapping[str, Any] | None = None

    @property
    def down(self) -> tuple[TargetStatus, ...]:
        return tuple(t.status for t in self.targets if not t.status.ok)

    @property
    def counted(self) -> tuple[CheckedFinding, ...]:
        return tuple(f for f in self.findings if not f.ignored)

    @property
    def ignored(self) -> tuple[CheckedFinding, ...]:
        return tuple(f for f in self.findings if f.ignored)

    @property
    def window(self) -> Window | None:
        """The shortest window judged (the latest start): the whole story for a single target."""
        known = [t.window for t in self.targets if t.window is not None and t.window.since is not None]
        return max(known, key=lambda w: w.since or datetime.min) if known else None

    def failing(self, fail_on: FailOn) -> tuple[CheckedFinding, ...]:
        return tuple(f for f in self.findings if f.fails(fail_on))

    def exit_code(self, fail_on: FailOn) -> int:
        """1 when a finding that no rule accepts is at or above ``fail_on``, else 0 (never: always 0)."""
        return 1 if self.failing(fail_on) else 0
