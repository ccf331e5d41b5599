"""The catalog as the agent reads it: tables, indexes, foreign keys, on-disk sizes.

Row types are frozen and slotted; their field names are the column names of
the SQL in ``agent/collect/sql`` (the driver builds them directly from the rows), so
renaming a field means renaming the column in every variant, which the
per-version integration test catches. Per-database snapshots keep the rows of
a database that failed one poll (``carry_over``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol, cast

from pgradar.agent.model.activity import DatabaseSnapshot


@dataclass(frozen=True, slots=True)
class TableStat:
    database: str
    relid: int
    schema: str
    relation: str
    relkind: str
    reltuples: float
    size_bytes: int | None
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    idx_tup_fetch: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    n_tup_hot_upd: int
    n_live_tup: int
    n_dead_tup: int
    n_mod_since_analyze: int
    n_ins_since_vacuum: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    vacuum_count: int
    analyze_count: int
    last_seq_scan: datetime | None
    relfrozenxid: int | None  # None: no storage (a partitioned table); its age: TablesSnapshot.xid_age
    reloptions: list[str]
    column_count: int = 0  # live columns (select_star: is the table wide?), from the sizes collector

    @property
    def last_analyzed(self) -> datetime | None:
        times = [t for t in (self.last_analyze, self.last_autoanalyze) if t is not None]
        return max(times) if times else None

    @property
    def last_vacuumed(self) -> datetime | None:
        times = [t for t in (self.last_vacuum, self.last_autovacuum) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class IndexStat:
    database: str
    indexrelid: int
    relid: int
    schema: str
    relation: str
    index: str
    idx_scan: int
    idx_tup_read: int
    idx_tup_fetch: int
    size_bytes: int | None
    definition: str
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    key_count: int
    columns: list[str | None]  # None where the key is an expression
    predicate: str | None
    expressions: str | None
    constraint_type: str | None  # 'p', 'u' or 'x' when the index backs a constraint
    last_idx_scan: datetime | None
    # For an index of a partition attached to a partitioned index: the
    # partitioned index and table at the top of the tree (one index to the user).
    root_schema: str | None = None
    root_relation: str | None = None
    root_index: str | None = None
    # format_type() of each entry of ``columns`` (None for an expression):
    # which casts of a column are no-ops, what type a rewritten predicate takes
    column_types: tuple[str | None, ...] | list[str | None] = ()

    @property
    def keys(self) -> tuple[str | None, ...]:
        """The key columns (None for an expression), without INCLUDE columns."""
        return tuple(self.columns[: self.key_count])


@dataclass(frozen=True, slots=True)
class IndexCounters:
    """What an index poll reads every time (indexes/counters), with the stamps of its catalog rows and of its size."""

    database: str
    indexrelid: int
    relid: int
    schema: str
    relation: str
    index: str
    idx_scan: int
    idx_tup_read: int
    idx_tup_fetch: int
    last_idx_scan: datetime | None
    stamp: str
    size_stamp: str | None  # None: the size cannot be vouched for, read it every time


@dataclass(frozen=True, slots=True)
class IndexBytes:
    """One index's on-disk size (indexes/sizes), read again only when its size stamp changes."""

    indexrelid: int
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """The catalog side of an index (indexes/definitions), read again only when its stamp changes."""

    indexrelid: int
    definition: str
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    key_count: int
    columns: list[str | None]
    predicate: str | None
    expressions: str | None
    constraint_type: str | None
    root_schema: str | None
    root_relation: str | None
    root_index: str | None
    column_types: tuple[str | None, ...] | list[str | None]


def index_stat(c: IndexCounters, d: IndexDefinition, size_bytes: int | None) -> IndexStat:
    """One index's row from this poll's counters and its (possibly earlier) definition and size."""
    return IndexStat(
        c.database,
        c.indexrelid,
        c.relid,
        c.schema,
        c.relation,
        c.index,
        c.idx_scan,
        c.idx_tup_read,
        c.idx_tup_fetch,
        size_bytes,
        d.definition,
        d.method,
        d.is_unique,
        d.is_primary,
        d.is_valid,
        d.key_count,
        d.columns,
        d.predicate,
        d.expressions,
        d.constraint_type,
        c.last_idx_scan,
        d.root_schema,
        d.root_relation,
        d.root_index,
        d.column_types,
    )


class PerDatabase(Protocol):
    """A snapshot gathered database by database, some of which may have failed."""

    failed_databases: tuple[str, ...]

    def rows(self) -> tuple[Any, ...]: ...

    def with_rows(self, rows: tuple[Any, ...]) -> PerDatabase: ...


def carry_over(previous: PerDatabase | None, current: PerDatabase) -> PerDatabase:
    """``current`` with the previous rows of the databases that failed this time.

    A database that times out once (a lock held by DDL, a restart) should not
    make its tables vanish from the metrics and the classifiers for a cycle.
    """
    if previous is None or not current.failed_databases:
        return current
    failed = current.failed_databases
    kept = tuple(r for r in previous.rows() if r.database in failed)
    merged: Any = current.with_rows(current.rows() + kept)
    before: Any = previous
    if isinstance(merged, TablesSnapshot) and isinstance(before, TablesSnapshot):  # and the base of their xid ages
        kept_bases = {db: x for db, x in before.next_xid.items() if db in failed}
        merged = replace(merged, next_xid={**kept_bases, **merged.next_xid})
    return cast(PerDatabase, merged)


INT32_MAX = 2**31 - 1


def xid_age(xid: int, next_xid: int) -> int:
    """What PostgreSQL's age(xid) returns when the next transaction id is ``next_xid`` (both 32-bit).

    The difference wraps at 2^32 and is read as a signed 32-bit number; the
    permanent ids below 3 (frozen, bootstrap) are infinitely old: INT32_MAX.
    """
    if xid < 3:
        return INT32_MAX
    return (next_xid - xid + 2**31) % 2**32 - 2**31


@dataclass(frozen=True, slots=True)
class TablesSnapshot:
    taken_at: datetime
    tables: tuple[TableStat, ...]
    failed_databases: tuple[str, ...] = ()
    # database -> the transaction id age() counted from when its tables were read
    next_xid: Mapping[str, int] = field(default_factory=dict)

    def rows(self) -> tuple[TableStat, ...]:
        return self.tables

    def with_rows(self, rows: tuple[Any, ...]) -> TablesSnapshot:
        return replace(self, tables=rows)

    def xid_age(self, table: TableStat) -> int | None:
        """age(relfrozenxid) of ``table`` at this poll; None for a table without storage or an unknown base."""
        base = self.next_xid.get(table.database)
        if table.relfrozenxid is None or base is None:
            return None
        return xid_age(table.relfrozenxid, base)


@dataclass(frozen=True, slots=True)
class TableSize:
    database: str
    relid: int
    size_bytes: int | None
    column_count: int


@dataclass(frozen=True, slots=True)
class TableSizeStamp:
    """What a sizes poll reads of every table (sizes/table_stamps): no relation is opened for it."""

    database: str
    relid: int
    column_count: int
    stamp: str | None  # None: the size cannot be vouched for, read it every time


@dataclass(frozen=True, slots=True)
class TableBytes:
    """One table's on-disk size (sizes/table_sizes), read again only when its stamp changes."""

    relid: int
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    database: str
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class SizesSnapshot:
    """On-disk sizes, collected apart from the counters and less often (each is a file-system call)."""

    taken_at: datetime
    tables: tuple[TableSize, ...]
    databases: tuple[DatabaseSize, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[TableSize, ...]:
        return self.tables

    def with_rows(self, rows: tuple[Any, ...]) -> SizesSnapshot:
        return replace(self, tables=rows)


_TABLE_FIELDS = [f.name for f in fields(TableStat)]
_TABLE_VALUES = attrgetter(*_TABLE_FIELDS)
_SIZE_AT, _COLUMNS_AT = _TABLE_FIELDS.index("size_bytes"), _TABLE_FIELDS.index("column_count")


def _sized(table: TableStat, size: TableSize) -> TableStat:
    """``table`` with ``size``'s figures: every table of every tables poll, so not ``dataclasses.replace``.

    ``replace`` asks every field by name and passes them by keyword, which
    costs many times reading them in one ``attrgetter`` call and passing
    them in order.
    """
    values = list(_TABLE_VALUES(table))
    values[_SIZE_AT], values[_COLUMNS_AT] = size.size_bytes, size.column_count
    return TableStat(*values)


# (database, relid) -> (the row as read, the size it got, the row with that size)
SizedTables = dict[tuple[str, int], tuple[TableStat, TableSize, TableStat]]


def fill_sizes(snapshot: Any, sizes: SizesSnapshot | None, sized: SizedTables | None = None) -> Any:
    """A tables or database snapshot with the sizes (and column counts) of the latest sizes snapshot filled in.

    ``sized`` (the target's, kept across polls) remembers the sized copy of
    each row: a tables poll hands back the same object for an idle table
    (``collect_tables``), which then gets the same sized copy instead of a
    new one per poll. It keeps only the tables of this snapshot.
    """
    if sizes is None:
        return snapshot
    if isinstance(snapshot, TablesSnapshot):
        by_table = {(z.database, z.relid): z for z in sizes.tables}
        known = dict(sized) if sized is not None else {}
        made: SizedTables = {}
        tables = []
        for t in snapshot.tables:
            key = (t.database, t.relid)
            z = by_table.get(key)
            if z is None or (t.size_bytes == z.size_bytes and t.column_count == z.column_count):
                tables.append(t)
                continue
            before = known.get(key)
            if before is not None and before[0] is t and (before[1] is z or before[1] == z):
                copy = before[2]
            else:
                copy = _sized(t, z)
            made[key] = (t, z, copy)
            tables.append(copy)
        if sized is not None:
            sized.clear()
            sized.update(made)
        return replace(snapshot, tables=tuple(tables))
    if isinstance(snapshot, DatabaseSnapshot):
        by_name = {z.database: z.size_bytes for z in sizes.databases}
        return replace(
            snapshot,
            databases=tuple(replace(d, size_bytes=by_name.get(d.database, d.size_bytes)) for d in snapshot.databases),
        )
    return snapshot


@dataclass(frozen=True, slots=True)
class IndexesSnapshot:
    taken_at: datetime
    indexes: tuple[IndexStat, ...]
    failed_databases: tuple[str, ...] = ()

    def rows(self) -> tuple[IndexStat, ...]:
        return self.indexes

    def with_rows(self, rows: tuple[Any, ...]) -> IndexesSnapshot:
        return replace(self, indexes=rows)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    database: str
    constraint_oid: int
    schema: str
    relation: str
    relkind: str  # 'p' for a partitioned table
    constraint_name: str
    columns: list[str]
    referenced_schema: str
    referenced_relation: str
    reltuples: float  # of the referencing table (summed over partitions)
    size_bytes: int
    index_keys: list[str]  # each non-partial index's key columns, comma-joined ('' for an expression)


@dataclass(frozen=True, slots=True)
class ForeignKeyCounters:
    """What a foreign-key poll reads every time (foreign_keys/counters), with the stamp of its catalog rows."""

    database: str
    constraint_oid: int
    reltuples: float
    size_bytes: int
    stamp: str


@dataclass(frozen=True, slots=True)
class ForeignKeyDefinition:
    """The catalog side of a foreign key (foreign_keys/definitions), read again only when its stamp changes."""

    constraint_oid: int
    schema: str
    relation: str
    relkind: str
    constraint_name: str
    columns: list[str]
    referenced_schema: str
    referenced_relation: str
    index_keys: list[str]


def foreign_key(c: ForeignKeyCounters, d: ForeignKeyDefinition) -> ForeignKey:
    """One foreign key's row from this poll's counters and its (possibly earlier) definition."""
    return ForeignKey(
        c.database,
        c.constraint_oid,
        d.schema,
        d.relation,
        d.relkind,
        d.constraint_name,
        d.columns,
        d.referenced_schema,
        d.referenced_relation,
        c.reltuples,
        c.size_bytes,
        d.index_keys,
    )


@dataclass(frozen=True, slots=True)
class ForeignKeysSnapshot:
    taken_at: datetime
    foreign_keys: tuple[ForeignKey, ...]
    failed_databases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IndexFirstSeen:
    """When the agent first saw each index; None for those present at its first look.

    PostgreSQL keeps no creation time for an index, so an index that appears
    while the agent watches is dated by the agent; one there from the start
    is as old as the statistics window at least.
    """

    taken_at: datetime
    first_seen: tuple[tuple[tuple[str, int], datetime | None], ...]  # ((database, indexrelid), when)
    source: str = "index first seen by pgradar"  # what the times are (check --baseline: the baseline's)

    # Asked once per index by the unused_index rule (a dict built per call made that quadratic):
    # built once with the snapshot, which is never changed.
    by_index: dict[tuple[str, int], datetime | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_index", dict(self.first_seen))

    def of(self, database: str, indexrelid: int) -> datetime | None:
        return self.by_index.get((database, indexrelid))
