"""Active problems per target: findings kept with the time they were first seen.

A finding seen again on the next pass keeps its ``first_seen`` (same id); a
finding not seen again is gone, so fixing a problem clears it on the next
classification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pgradar.agent.model.findings import Finding


@dataclass(frozen=True, slots=True)
class ActiveProblem:
    finding: Finding
    first_seen: datetime
    last_seen: datetime


def update(active: Mapping[str, ActiveProblem], findings: Iterable[Finding], now: datetime) -> dict[str, ActiveProblem]:
    """The new active set: this pass's findings, each with its first sighting."""
    out: dict[str, ActiveProblem] = {}
    for finding in findings:
        key = finding.id
        # Two rules reporting the same object: the more severe finding stays.
        if key in out and finding.severity.rank <= out[key].finding.severity.rank:
            continue
        first = active[key].first_seen if key in active else now
        out[key] = ActiveProblem(finding, first, now)
    return out


# Evidence keys that measure a problem's weight, by the unit it is measured in.
SHARE_KEYS = ("exec_time_share",)
BYTES_KEYS = ("retained_bytes", "lag_bytes", "replay_behind_bytes", "temp_bytes_per_call", "size_bytes")
SECONDS_KEYS = (
    "lag_seconds",
    "longest_seconds",
    "longest_wait_seconds",
    "query_seconds",
    "xact_seconds",
    "state_seconds",
    "maxwait_seconds",
    "inactive_seconds",
)


def _first_number(evidence: Mapping[str, object], keys: tuple[str, ...]) -> float:
    for key in keys:
        value = evidence.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0


def impact(finding: Finding) -> tuple[float, float, float]:
    """How much a problem weighs within its severity: (share of execution time, bytes, seconds).

    Compared in that order: a statement taking 40% of the server's time
    comes before one taking 2%, a slot holding 30 GB before a 2 GB table,
    a standby 10 minutes behind before one 40 seconds behind. A problem
    that measures none of them comes after those that do.
    """
    evidence = finding.evidence
    return (
        _first_number(evidence, SHARE_KEYS),
        _first_number(evidence, BYTES_KEYS),
        _first_number(evidence, SECONDS_KEYS),
    )


def ordered(problems: Iterable[ActiveProblem]) -> list[ActiveProblem]:
    """Most severe first, then the heaviest (``impact``), then by kind and object, for stable output.

    The status page, the table and the Markdown report read like a
    diagnosis: the first problem is the one to fix first.
    """

    def key(p: ActiveProblem) -> tuple[object, ...]:
        share, size, seconds = impact(p.finding)
        return (
            -p.finding.severity.rank,
            -share,
            -size,
            -seconds,
            p.finding.kind,
            p.finding.target,
            [v or "" for v in p.finding.object.values()],
        )

    return sorted(problems, key=key)
