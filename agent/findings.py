"""Findings: a problem with its object, its evidence and its fix (DESIGN 3.1, 3.2).

A finding's ``id`` is a stable fingerprint of its kind, target and object, so
the same problem seen on every pass keeps its id (and its ``first_seen``),
and a different object never shares it. Severity and evidence are not part
of the id: a problem that gets worse is still the same problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
OBJECT_FIELDS = ("database", "schema", "relation", "index", "queryid", "standby", "slot", "pool")

# DESIGN 3.2: stable identifiers; new kinds may be added, none renamed.
KINDS: dict[str, str] = {
    "seq_scan": "a frequent or expensive statement reads a large table sequentially where an index would serve",
    "unused_index": "an index never (or almost never) scanned since stats reset, not backing a constraint",
    "duplicate_index": "an index with the same definition as another, or a left prefix of one",
    "invalid_index": "an index left invalid by a failed CREATE INDEX CONCURRENTLY",
    "missing_fk_index": "a foreign key whose referencing columns no index leads with",
    "stale_stats": "planner statistics out of date",
    "dead_tuples": "vacuum is not keeping up",
    "xid_wraparound": "transaction ID age approaching the limit",
    "replication_lag": "a standby is behind in bytes or seconds",
    "replication_slot_inactive": "an inactive slot retains WAL",
    "pool_saturation": "clients wait for a connection, or connections near max_connections",
    "idle_in_transaction": "sessions idle inside a transaction for too long",
    "long_running_query": "a statement has run for too long",
    "lock_contention": "sessions blocked by others' locks",
    "temp_spill": "a statement writes temporary files (sort/hash beyond work_mem)",
    "low_cache_hit": "a statement reads most of its blocks from disk",
    "n_plus_one": "the same tiny statement runs very many times, one row each",
    "select_star": "a frequent statement selects every column",
    "non_sargable_predicate": "a function or cast on an indexed column hides the index",
    "plan_regression": "a statement's plan changed and it got slower",
    "row_misestimate": "the planner's row estimate is far from the actual rows",
    "offset_pagination": "a frequent statement pages with OFFSET and reads far more rows than it returns",
    "unbounded_result": "a frequent statement returns very many rows per call with no LIMIT",
    "partition_pruning_missed": "a statement on a partitioned table reads all or nearly all partitions",
    "correlated_subquery": "a SubPlan runs once per row of a large outer input",
    "deadlocks": "deadlocks happened in the window",
}


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    severity: Severity
    target: str
    summary: str
    recommendation: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    database: str | None = None
    schema: str | None = None
    relation: str | None = None
    index: str | None = None
    queryid: str | None = None  # pg_stat_statements queryid as a decimal string
    standby: str | None = None
    slot: str | None = None
    pool: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def object(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in OBJECT_FIELDS}

    @property
    def id(self) -> str:
        key = "\x1f".join([self.kind, self.target, *(getattr(self, f) or "" for f in OBJECT_FIELDS)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_json(self, first_seen: datetime | None = None) -> dict[str, Any]:
        """The problem object of ``pgradar check --format json`` (DESIGN 3.1)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "target": self.target,
            **self.object,
            "summary": self.summary,
            "recommendation": self.recommendation,
            "evidence": dict(self.evidence),
        }
        if first_seen is not None:
            out["first_seen"] = first_seen.isoformat().replace("+00:00", "Z")
        return out


# Reserved and type/function-name keywords: as identifiers they must be quoted.
_RESERVED = frozenset(
    """
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric system_user table tablesample
then to trailing true union unique user using variadic verbose when where window with
""".split()
)


def quote_ident(name: str) -> str:
    """An identifier as PostgreSQL needs it in SQL: bare only when plain lower case and not reserved."""
    if name.isidentifier() and name == name.lower() and name.isascii() and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


@dataclass(frozen=True, slots=True)
class TextPolicy:
    """How much of a statement's normalized text leaves the agent (``statement_text`` in the config)."""

    max_length: int = 200
    hide: bool = False

    def show(self, text: str | None) -> str | None:
        if text is None or self.hide:
            return None
        return text if len(text) <= self.max_length else text[: self.max_length - 1] + "…"


DEFAULT_TEXT_POLICY = TextPolicy()
