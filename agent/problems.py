"""Active problems per target: findings kept with the time they were first seen.

A finding seen again on the next pass keeps its ``first_seen`` (same id); a
finding not seen again is gone, so fixing a problem clears it on the next
classification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pgradar.agent.findings import Finding, severity_rank


@dataclass(frozen=True, slots=True)
class ActiveProblem:
    finding: Finding
    first_seen: datetime
    last_seen: datetime


def update(active: Mapping[str, ActiveProblem], findings: Iterable[Finding],
           now: datetime) -> dict[str, ActiveProblem]:
    """The new active set: this pass's findings, each with its first sighting."""
    out: dict[str, ActiveProblem] = {}
    for finding in findings:
        key = finding.id
        # Two rules reporting the same object: the more severe finding stays.
        if key in out and severity_rank(finding.severity) <= severity_rank(out[key].finding.severity):
            continue
        first = active[key].first_seen if key in active else now
        out[key] = ActiveProblem(finding, first, now)
    return out


def ordered(problems: Iterable[ActiveProblem]) -> list[ActiveProblem]:
    """Most severe first, then by kind and object, for stable output."""
    return sorted(problems, key=lambda p: (-severity_rank(p.finding.severity), p.finding.kind,
                                           p.finding.target, [v or "" for v in p.finding.object.values()]))
