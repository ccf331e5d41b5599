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
from enum import StrEnum
from typing import Any

OBJECT_FIELDS = ("database", "schema", "relation", "index", "queryid", "standby", "slot", "pool", "wait_event")


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Place in the order info < warning < critical: as text the values sort otherwise."""
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = tuple(Severity)


class Area(StrEnum):
    """What a kind is about: the tables, replication and connections dashboards each list their area's problems."""

    TABLE = "table"  # a table or index
    DATABASE = "database"  # the database as a whole
    REPLICATION = "replication"
    SESSION = "session"
    STATEMENT = "statement"  # a statement, from its counters or its plan


JUDGED_ON_COUNTERS = True


class Kind(StrEnum):
    """The problem kinds (DESIGN 3.2): the values are a contract, new kinds may be added, none renamed.

    ``judged_on_counters``: the rule reads counter differences, so one
    pass of ``check`` judges everything since the counters' reset (or a
    baseline, or ``--window``), and ``run`` the interval between polls.
    """

    _value_: str
    area: Area
    description: str
    judged_on_counters: bool

    def __new__(cls, value: str, area: Area, description: str, judged_on_counters: bool = False) -> Kind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.area = area
        member.description = description
        member.judged_on_counters = judged_on_counters
        return member

    @classmethod
    def named(cls, text: str) -> Kind | None:
        """The kind called ``text``, or None: for names read from a command line or a config file.

        ``text in Kind`` raises on a plain string before Python 3.12, and type
        checkers read ``Kind(text)`` as a call of ``__new__`` above.
        """
        return next((kind for kind in cls if kind == text), None)

    SEQ_SCAN = (
        "seq_scan",
        Area.TABLE,
        "a frequent or expensive statement reads a large table sequentially where an index would serve",
    )
    UNUSED_INDEX = (
        "unused_index",
        Area.TABLE,
        "an index never (or almost never) scanned since stats reset, not backing a constraint",
    )
    DUPLICATE_INDEX = (
        "duplicate_index",
        Area.TABLE,
        "an index with the same definition as another, or a left prefix of one",
    )
    INVALID_INDEX = "invalid_index", Area.TABLE, "an index left invalid by a failed CREATE INDEX CONCURRENTLY"
    MISSING_FK_INDEX = "missing_fk_index", Area.TABLE, "a foreign key whose referencing columns no index leads with"
    STALE_STATS = "stale_stats", Area.TABLE, "planner statistics out of date"
    DEAD_TUPLES = "dead_tuples", Area.TABLE, "vacuum is not keeping up"
    XID_WRAPAROUND = "xid_wraparound", Area.DATABASE, "transaction ID age approaching the limit"
    REPLICATION_LAG = "replication_lag", Area.REPLICATION, "a standby is behind in bytes or seconds"
    REPLICATION_SLOT_INACTIVE = "replication_slot_inactive", Area.REPLICATION, "an inactive slot retains WAL"
    POOL_SATURATION = (
        "pool_saturation",
        Area.SESSION,
        "clients wait for a connection, or connections near max_connections",
    )
    IDLE_IN_TRANSACTION = "idle_in_transaction", Area.SESSION, "sessions idle inside a transaction for too long"
    LONG_RUNNING_QUERY = "long_running_query", Area.SESSION, "a statement has run for too long"
    LOCK_CONTENTION = "lock_contention", Area.SESSION, "sessions blocked by others' locks"
    TEMP_SPILL = (
        "temp_spill",
        Area.STATEMENT,
        "a statement writes temporary files (sort/hash beyond work_mem)",
        JUDGED_ON_COUNTERS,
    )
    LOW_CACHE_HIT = (
        "low_cache_hit",
        Area.STATEMENT,
        "a statement reads most of its blocks from disk",
        JUDGED_ON_COUNTERS,
    )
    N_PLUS_ONE = (
        "n_plus_one",
        Area.STATEMENT,
        "the same tiny statement runs very many times, one row each",
        JUDGED_ON_COUNTERS,
    )
    SELECT_STAR = "select_star", Area.STATEMENT, "a frequent statement selects every column", JUDGED_ON_COUNTERS
    NON_SARGABLE_PREDICATE = (
        "non_sargable_predicate",
        Area.STATEMENT,
        "a function or cast on an indexed column hides the index",
        JUDGED_ON_COUNTERS,
    )
    PLAN_REGRESSION = "plan_regression", Area.STATEMENT, "a statement's plan changed and it got slower"
    ROW_MISESTIMATE = "row_misestimate", Area.STATEMENT, "the planner's row estimate is far from the actual rows"
    OFFSET_PAGINATION = (
        "offset_pagination",
        Area.STATEMENT,
        "a frequent statement pages with OFFSET and reads far more rows than it returns",
        JUDGED_ON_COUNTERS,
    )
    UNBOUNDED_RESULT = (
        "unbounded_result",
        Area.STATEMENT,
        "a frequent statement returns very many rows per call with no LIMIT",
        JUDGED_ON_COUNTERS,
    )
    PARTITION_PRUNING_MISSED = (
        "partition_pruning_missed",
        Area.STATEMENT,
        "a statement on a partitioned table reads all or nearly all partitions",
        JUDGED_ON_COUNTERS,
    )
    CORRELATED_SUBQUERY = (
        "correlated_subquery",
        Area.STATEMENT,
        "a SubPlan runs once per row of a large outer input",
        JUDGED_ON_COUNTERS,
    )
    DEADLOCKS = "deadlocks", Area.DATABASE, "deadlocks happened in the window", JUDGED_ON_COUNTERS
    STATEMENT_TIMEOUT = (
        "statement_timeout",
        Area.STATEMENT,
        "statements were cancelled by statement_timeout (the server log; pg_stat_statements never records them)",
    )
    WAIT_BOTTLENECK = (
        "wait_bottleneck",
        Area.DATABASE,
        "one wait event (or class, or CPU) holds a large share of a database's load over the window",
    )
    XMIN_HORIZON_HELD = (
        "xmin_horizon_held",
        Area.DATABASE,
        "a session, replication slot, prepared transaction or standby's feedback holds the xmin horizon back",
    )
    TABLE_BLOAT = "table_bloat", Area.TABLE, "wasted space in a table (estimated, or measured by pgstattuple)"
    AUTOVACUUM_LAGGING = (
        "autovacuum_lagging",
        Area.TABLE,
        "dead rows stay above the table's autovacuum trigger, with the reason when visible",
    )
    HOT_UPDATES_LOST = (
        "hot_updates_lost",
        Area.TABLE,
        "many updates, few HOT, because an index covers a column the UPDATE statements set",
    )
    MULTIXACT_WRAPAROUND = "multixact_wraparound", Area.DATABASE, "multixact ID age approaching the limit"
    INDEX_BLOAT = "index_bloat", Area.TABLE, "wasted space in a B-tree index (estimated, or measured by pgstatindex)"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
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
    wait_event: str | None = None  # wait_bottleneck: "type/event", or the class alone

    def __post_init__(self) -> None:
        # A plain string is refused, even a known one: the kind and severity are
        # typed where the finding is made, so a typo fails there, at import.
        if not isinstance(self.kind, Kind):
            raise TypeError(f"a finding's kind is a Kind, not {self.kind!r}")
        if not isinstance(self.severity, Severity):
            raise TypeError(f"a finding's severity is a Severity, not {self.severity!r}")

    @property
    def object(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in OBJECT_FIELDS}

    @property
    def id(self) -> str:
        # wait_event joins the key only where set: every other finding keeps the id it had before it existed
        fields = OBJECT_FIELDS if self.wait_event else OBJECT_FIELDS[:-1]
        key = "\x1f".join([self.kind, self.target, *(getattr(self, f) or "" for f in fields)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_json(self, first_seen: datetime | None = None) -> dict[str, Any]:
        """The problem object of ``pgradar check --format json`` (DESIGN 3.1)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "severity": self.severity.value,
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


TEXT_IN_EVIDENCE = 200  # characters of a statement's text shown in a finding's evidence


def evidence_text(text: str | None) -> str | None:
    """A statement's text as evidence shows it: on one line, cut at ``TEXT_IN_EVIDENCE`` characters."""
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_IN_EVIDENCE else flat[: TEXT_IN_EVIDENCE - 3] + "..."


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
