"""Custom SQL collectors as records: what a query runs and what its columns become, and its results.

The settings read them from a file (``agent/settings/custom_queries.py``),
the runtime runs them, the derivations turn rows into series
(``agent/derive/custom_series.py``) and the exporter renders the series
(``exporters/custom.py``): each reads these records, none the others'.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

DEFAULT_INTERVAL_S = 60.0
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_SERIES = 1000


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A semver range as postgres_exporter's ``runonserver`` takes it (blang/semver).

    Comparisons joined by spaces must all hold; alternatives are joined by
    ``||``. A PostgreSQL 13.23 server is version 13.23.0, 9.6.20 is 9.6.20.
    """

    text: str
    alternatives: tuple[tuple[tuple[str, tuple[int, int, int]], ...], ...]

    def contains(self, version: tuple[int, int, int]) -> bool:
        return any(all(_compare(version, op, bound) for op, bound in alt) for alt in self.alternatives)


def _compare(version: tuple[int, int, int], op: str, bound: tuple[int, int, int]) -> bool:
    return {
        ">=": version >= bound,
        "<=": version <= bound,
        ">": version > bound,
        "<": version < bound,
        "!=": version != bound,
        "==": version == bound,
        "=": version == bound,
    }[op]


def server_semver(version_num: int) -> tuple[int, int, int]:
    """server_version_num as the semver postgres_exporter compares: 130023 -> 13.23.0, 90620 -> 9.6.20."""
    if version_num >= 100000:
        return (version_num // 10000, version_num % 10000, 0)
    return (version_num // 10000, version_num // 100 % 100, version_num % 100)


@dataclass(frozen=True, slots=True)
class Column:
    """One result column and what it becomes (``metric`` empty for labels and discarded columns)."""

    name: str
    usage: str
    help: str = ""
    metric: str = ""
    kind: str = "gauge"  # gauge, counter, untyped or histogram: the TYPE line
    scale: float = 1.0  # multiplies a number into the metric's unit
    duration_ms: bool = False  # postgres_exporter's DURATION: a duration text read as milliseconds
    mapping: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class CustomQuery:
    """One custom collector: what it runs, where, how often, and what its columns become."""

    name: str
    sql: str
    columns: tuple[Column, ...]
    source: str  # the file (or "config") it came from, for messages
    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    databases: tuple[str, ...] | None = None  # None: the target's own database; ("*",): every one it visits
    on: str = "any"
    versions: VersionRange | None = None
    max_series: int = DEFAULT_MAX_SERIES
    exporter_format: bool = False  # postgres_exporter's: ``server`` label, unlisted columns untyped

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.usage == "label")

    @property
    def extra_labels(self) -> tuple[str, ...]:
        """The labels pgradar adds to every series of this query, in order."""
        return (
            ("target",)
            + (("server",) if self.exporter_format else ())
            + (("database",) if self.databases is not None else ())
        )

    @property
    def every_database(self) -> bool:
        return self.databases == ("*",)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def metric_names(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.columns if c.metric)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric of a custom query, ready to render: samples are (label values, value)."""

    name: str
    kind: str  # gauge, counter, untyped, histogram
    help: str
    labels: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], Any], ...]  # histogram value: (buckets ((le, count), ...), sum)
    unlisted: bool = False  # from a column the file does not list (postgres_exporter's format)


@dataclass(frozen=True, slots=True)
class Rows:
    """What one database answered: its column names and rows, in order."""

    database: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Series:
    """The series of one run of one query on one target, and what had to be left out."""

    families: tuple[Family, ...]
    series: int
    dropped: int  # over max_series
    duplicates: int  # a label set given twice: the first row is kept
    problems: tuple[str, ...]  # values that could not be read, once per column
