"""What vacuum can and cannot do: the holders of the xmin horizon, bloat figures.

Row fields are the columns of ``agent/collect/sql/vacuum``; the driver builds
them from the rows directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

BACKEND = "backend"
PREPARED = "prepared"
SLOT = "slot"
STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class HorizonHolder:
    """One thing that keeps vacuum from removing rows dead since its ``xmin``.

    ``holder`` is what it is (backend, prepared, slot, standby); ``name`` what
    names it there (a pid, a gid, a slot's name, a standby's application_name).
    ``database`` is where it holds the horizon ('' for every database: a
    physical slot, a standby). ``held_seconds`` is how long the server says
    it has held it (None where it cannot say); ``seen_seconds`` how long
    pgradar has seen it hold the same xmin (filled by the collector).
    """

    holder: str
    name: str
    pid: int | None
    database: str
    username: str
    application: str  # a slot: its type (physical, logical)
    state: str
    queryid: int | None  # 14+, a session's statement
    xmin: int
    xmin_age: int
    held_seconds: float | None
    catalog_only: bool  # a logical slot's catalog_xmin: only the system catalogs keep their dead rows
    active: bool | None  # a slot: a consumer is connected
    seen_seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.holder, self.name, self.xmin)


@dataclass(frozen=True, slots=True)
class VacuumProgress:
    """One VACUUM running now (vacuum/progress)."""

    pid: int
    database: str
    relid: int
    phase: str
    autovacuum: bool
    running_seconds: float | None
    max_workers: int  # autovacuum_max_workers


@dataclass(frozen=True, slots=True)
class VacuumSnapshot:
    taken_at: datetime
    holders: tuple[HorizonHolder, ...]
    running: tuple[VacuumProgress, ...] = ()

    @property
    def workers_busy(self) -> tuple[int, int] | None:
        """(autovacuum workers running, autovacuum_max_workers); None when no VACUUM runs."""
        if not self.running:
            return None
        return sum(r.autovacuum for r in self.running), self.running[0].max_workers


ESTIMATE = "estimate"
PGSTATTUPLE = "pgstattuple"


@dataclass(frozen=True, slots=True)
class TableBloatEstimate:
    """One table's wasted space as the statistics estimate it (bloat/tables): heap and TOAST pages."""

    database: str
    relid: int
    schema: str
    relation: str
    size_bytes: int
    wasted_bytes: int | None  # None: a variable-width column has no readable statistics
    fillfactor: int
    toast_relid: int | None
    mxid_age: int = 0  # age of its oldest multixact (relminmxid, its TOAST table's included)


@dataclass(frozen=True, slots=True)
class Measured:
    """pgstattuple_approx's figure for one table (bloat/measure)."""

    size_bytes: int
    wasted_bytes: int


@dataclass(frozen=True, slots=True)
class IndexBloatEstimate:
    """One B-tree index's wasted space as the statistics estimate it (bloat/indexes)."""

    database: str
    indexrelid: int
    schema: str
    relation: str
    index: str
    size_bytes: int
    wasted_bytes: int | None  # None: a variable-width key has no readable statistics
    fillfactor: int


class _Figures:
    """The figure a finding rests on: pgstattuple's where it measured this poll, else the estimate."""

    __slots__ = ()
    estimate: TableBloatEstimate | IndexBloatEstimate
    measured: Measured | None

    @property
    def basis(self) -> str:
        return PGSTATTUPLE if self.measured is not None else ESTIMATE

    @property
    def wasted_bytes(self) -> int | None:
        return self.measured.wasted_bytes if self.measured is not None else self.estimate.wasted_bytes

    @property
    def size_bytes(self) -> int:
        return self.measured.size_bytes if self.measured is not None else self.estimate.size_bytes


@dataclass(frozen=True, slots=True)
class TableBloat(_Figures):
    estimate: TableBloatEstimate
    measured: Measured | None = None


@dataclass(frozen=True, slots=True)
class IndexBloat(_Figures):
    estimate: IndexBloatEstimate
    measured: Measured | None = None


@dataclass(frozen=True, slots=True)
class BloatSnapshot:
    taken_at: datetime
    tables: tuple[TableBloat, ...]
    failed_databases: tuple[str, ...] = ()
    indexes: tuple[IndexBloat, ...] = ()
    unmeasured: tuple[str, ...] = ()  # databases without pgstattuple: estimates only
