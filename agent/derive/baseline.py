"""Baselines for ``pgradar check``: the counters of one moment, so a later check judges only what came after.

A CI job or a deploy often runs as a role that may not call
``pg_stat_statements_reset()`` or ``pg_stat_reset()``: it cannot zero the
counters before the tests. Instead ``--save-baseline FILE`` writes the
counters it read (per statement key, per table, per index, per database),
and ``--baseline FILE`` subtracts them: the deltas are what the tests did.

The file holds numbers and object ids only: no statement text, no literal,
no table name (tables and indexes are keyed by database and OID, statements
by userid, dbid, queryid and toplevel), so it may be kept as a CI artifact.

Deltas are only meaningful against the same counters. A baseline is refused
(``refusal`` says why, in one line) when it comes from another
cluster (system identifier), from before a server restart (postmaster start
time: counters may be lost), or from before a reset of pg_stat_statements
(``pg_stat_statements_info.stats_reset``, 14+) or of a database's statistics
(``pg_stat_database.stats_reset``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pgradar.agent.model.activity import DatabaseSnapshot, DatabaseStat
from pgradar.agent.model.catalog import IndexesSnapshot, IndexStat, TablesSnapshot, TableStat
from pgradar.agent.model.statements import COUNTERS, StatementsSnapshot, StatementStat

FORMAT = "pgradar-baseline"
VERSION = 1

STATEMENT_KEY = ("userid", "dbid", "queryid", "toplevel")
STATEMENT_COUNTERS = tuple(COUNTERS)  # what a baseline subtracts: the statement's cumulative counters
TABLE_COUNTERS = (
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_del",
    "n_tup_hot_upd",
)
INDEX_COUNTERS = ("idx_scan", "idx_tup_read", "idx_tup_fetch")
DATABASE_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "conflicts",
    "temp_files",
    "temp_bytes",
    "deadlocks",
    "blk_read_ms",
    "blk_write_ms",
)


class BaselineError(Exception):
    """The file cannot be read or is not a baseline."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What makes two readings of the counters comparable."""

    system_identifier: str | None
    started_at: datetime | None
    pgss_reset: datetime | None  # pg_stat_statements_info.stats_reset (14+), else None
    database_resets: tuple[tuple[str, datetime | None], ...]  # pg_stat_database.stats_reset per database


@dataclass(frozen=True, slots=True)
class TargetBaseline:
    name: str
    taken_at: datetime
    identity: Identity
    statements: tuple[tuple[Any, ...], ...]  # STATEMENT_KEY + STATEMENT_COUNTERS, queryid as text in the file
    tables: tuple[tuple[Any, ...], ...]  # (database, relid) + TABLE_COUNTERS
    indexes: tuple[tuple[Any, ...], ...]  # (database, indexrelid) + INDEX_COUNTERS
    databases: tuple[tuple[Any, ...], ...]  # (database,) + DATABASE_COUNTERS


@dataclass(frozen=True, slots=True)
class Baseline:
    targets: tuple[TargetBaseline, ...]

    def target(self, name: str) -> TargetBaseline | None:
        return next((t for t in self.targets if t.name == name), None)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _when(text: Any, where: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise BaselineError(f"{where}: not a time: {str(text)[:40]!r}") from None


def capture(
    name: str,
    identity: Identity,
    statements: StatementsSnapshot | None,
    tables: TablesSnapshot | None,
    indexes: IndexesSnapshot | None,
    databases: DatabaseSnapshot | None,
    taken_at: datetime,
) -> TargetBaseline:
    """The counters of one target's latest snapshots (no text, no names but databases')."""
    return TargetBaseline(
        name=name,
        taken_at=statements.taken_at if statements is not None else taken_at,
        identity=identity,
        statements=tuple(
            tuple(getattr(r, f) for f in (*STATEMENT_KEY, *STATEMENT_COUNTERS))
            for r in (statements.rows if statements else ())
        ),
        tables=tuple(
            (t.database, t.relid, *(getattr(t, f) for f in TABLE_COUNTERS)) for t in (tables.tables if tables else ())
        ),
        indexes=tuple(
            (i.database, i.indexrelid, *(getattr(i, f) for f in INDEX_COUNTERS))
            for i in (indexes.indexes if indexes else ())
        ),
        databases=tuple(
            (d.database, *(getattr(d, f) for f in DATABASE_COUNTERS))
            for d in (databases.databases if databases else ())
        ),
    )


def to_json(baseline: Baseline) -> str:
    def target(t: TargetBaseline) -> dict[str, Any]:
        return {
            "name": t.name,
            "taken_at": _iso(t.taken_at),
            "system_identifier": t.identity.system_identifier,
            "started_at": _iso(t.identity.started_at),
            "pgss_stats_reset": _iso(t.identity.pgss_reset),
            "database_stats_reset": {db: _iso(when) for db, when in t.identity.database_resets},
            "statement_columns": [*STATEMENT_KEY, *STATEMENT_COUNTERS],
            # queryid is a signed 64-bit number: text, so no JSON reader rounds it
            "statements": [[r[0], r[1], str(r[2]), *r[3:]] for r in t.statements],
            "table_columns": ["database", "relid", *TABLE_COUNTERS],
            "tables": [list(r) for r in t.tables],
            "index_columns": ["database", "indexrelid", *INDEX_COUNTERS],
            "indexes": [list(r) for r in t.indexes],
            "database_columns": ["database", *DATABASE_COUNTERS],
            "databases": [list(r) for r in t.databases],
        }

    return (
        json.dumps({"format": FORMAT, "version": VERSION, "targets": [target(t) for t in baseline.targets]}, indent=1)
        + "\n"
    )


def from_json(text: str, where: str) -> Baseline:
    """A baseline read back; anything else is a BaselineError naming the file."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BaselineError(f"{where}: not a pgradar baseline (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BaselineError(f"{where}: not a pgradar baseline (write one with pgradar check --save-baseline)")
    if data.get("version") != VERSION:
        raise BaselineError(f"{where}: baseline version {data.get('version')!r}, this pgradar reads {VERSION}")
    try:
        targets = []
        for t in data["targets"]:
            expected = {
                "statement_columns": [*STATEMENT_KEY, *STATEMENT_COUNTERS],
                "table_columns": ["database", "relid", *TABLE_COUNTERS],
                "index_columns": ["database", "indexrelid", *INDEX_COUNTERS],
                "database_columns": ["database", *DATABASE_COUNTERS],
            }
            for key, columns in expected.items():
                if t[key] != columns:
                    raise BaselineError(f"{where}: {key} differ from what this pgradar writes")
            identity = Identity(
                t["system_identifier"],
                _when(t["started_at"], where),
                _when(t["pgss_stats_reset"], where),
                tuple((str(db), _when(when, where)) for db, when in t["database_stats_reset"].items()),
            )
            targets.append(
                TargetBaseline(
                    str(t["name"]),
                    _when(t["taken_at"], where) or datetime.min,
                    identity,
                    tuple((int(r[0]), int(r[1]), int(r[2]), bool(r[3]), *r[4:]) for r in t["statements"]),
                    tuple(tuple(r) for r in t["tables"]),
                    tuple(tuple(r) for r in t["indexes"]),
                    tuple(tuple(r) for r in t["databases"]),
                )
            )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise BaselineError(f"{where}: not a pgradar baseline (malformed: {type(exc).__name__} {exc})") from None
    return Baseline(tuple(targets))


def kept_counting(saved: TargetBaseline, current: StatementsSnapshot) -> bool:
    """Some statement of the baseline is still there with counters at or above its baseline.

    On 13 a ``pg_stat_statements_reset()`` leaves no reset time; it drops
    every entry. Eviction under churn drops some and restarts them from
    zero, never all of a busy server's, so "none kept counting" means a reset.
    """
    calls = {tuple(r[:4]): r[4] for r in saved.statements}
    return any(r.calls >= calls[r.key] for r in current.rows if r.key in calls)


def refusal(saved: TargetBaseline, now: Identity, where: str, current: StatementsSnapshot | None = None) -> str | None:
    """Why ``saved`` cannot be subtracted from the counters of ``now``, in one line; None when it can.

    ``current`` (the statements read now) lets a reset be seen where the
    server records no reset time (13).
    """
    was, here = saved.identity, now
    if was.system_identifier != here.system_identifier:
        return (
            f"baseline {where} was taken on another server (system identifier {was.system_identifier} "
            f"there, {here.system_identifier} on target {saved.name})"
        )
    if was.started_at != here.started_at:
        return (
            f"baseline {where} was taken before the server restarted (postmaster start time "
            f"{_iso(was.started_at)} there, {_iso(here.started_at)} now): counters may have been lost"
        )
    if was.pgss_reset != here.pgss_reset:
        return (
            f"baseline {where} was taken before pg_stat_statements was reset (stats reset time "
            f"{_iso(was.pgss_reset)} there, {_iso(here.pgss_reset)} now)"
        )
    if current is not None and was.pgss_reset is None and saved.statements and not kept_counting(saved, current):
        return (
            f"baseline {where} was taken before pg_stat_statements was reset (none of its "
            f"{len(saved.statements)} statements kept its counters; this server records no reset time)"
        )
    before = dict(was.database_resets)
    for database, reset in here.database_resets:
        if database in before and before[database] != reset and not _entry_appeared(saved, database, before[database]):
            return (
                f"baseline {where} was taken before the statistics of database {database} were reset "
                f"(stats reset time {_iso(before[database])} there, {_iso(reset)} now)"
            )
    return None


def _entry_appeared(saved: TargetBaseline, database: str, reset_before: datetime | None) -> bool:
    """A reset time where the baseline had none, over a database the baseline saw nothing counted in.

    On 13 and 14 the statistics collector creates a database's entry, stamped
    with a reset time, once a backend has reported activity there; until then
    pg_stat_database shows zeros and no reset time. The time appearing later is
    that entry's creation, not a reset, and a baseline of zeros subtracts
    from anything. On 15+ a first reset also moves the time from none, but a
    database with nothing counted loses nothing to it either.
    """
    if reset_before is not None:
        return False
    counters = (
        *(r[1:] for r in saved.databases if r[0] == database),
        *(r[2:] for r in (*saved.tables, *saved.indexes) if r[0] == database),  # after (database, relid)
    )
    return not any(any(c) for c in counters)


def statements_before(saved: TargetBaseline, current: StatementsSnapshot) -> StatementsSnapshot:
    """The baseline as a statements snapshot to subtract (labels come from the current side)."""
    rows = tuple(
        StatementStat(
            userid=r[0],
            dbid=r[1],
            queryid=r[2],
            toplevel=r[3],
            database="",
            username="",
            max_exec_ms=0.0,
            **dict(zip(STATEMENT_COUNTERS, r[4:], strict=True)),
        )
        for r in saved.statements
    )
    return StatementsSnapshot(saved.taken_at, rows, current.info, new_texts=0)


def tables_before(saved: TargetBaseline, current: TablesSnapshot) -> TablesSnapshot:
    """The current tables with the baseline's counters: the first of the history the rules difference."""
    by_key = {(r[0], r[1]): r[2:] for r in saved.tables}
    rows: list[TableStat] = []
    for t in current.tables:
        counters = by_key.get((t.database, t.relid))
        if counters is not None:
            rows.append(replace(t, **dict(zip(TABLE_COUNTERS, counters, strict=True))))
        else:  # created after the baseline: all its scans happened since
            zeros: dict[str, Any] = dict.fromkeys(TABLE_COUNTERS, 0)
            rows.append(replace(t, **zeros))
    return TablesSnapshot(saved.taken_at, tuple(rows))


def indexes_since(saved: TargetBaseline, current: IndexesSnapshot) -> IndexesSnapshot:
    """The current indexes with their scans since the baseline (all of them for an index created after)."""
    by_key = {(r[0], r[1]): r[2:] for r in saved.indexes}
    rows: list[IndexStat] = []
    for i in current.indexes:
        before = dict(zip(INDEX_COUNTERS, by_key.get((i.database, i.indexrelid), (0, 0, 0)), strict=True))
        rows.append(replace(i, **{f: max(0, getattr(i, f) - before[f]) for f in INDEX_COUNTERS}))
    return replace(current, indexes=tuple(rows))


def databases_before(saved: TargetBaseline, current: DatabaseSnapshot) -> DatabaseSnapshot:
    by_name = {r[0]: r[1:] for r in saved.databases}
    rows: list[DatabaseStat] = []
    for d in current.databases:
        counters = by_name.get(d.database)
        values = (
            dict(zip(DATABASE_COUNTERS, counters, strict=True))
            if counters is not None
            else dict.fromkeys(DATABASE_COUNTERS, 0)
        )
        rows.append(replace(d, **values))
    return DatabaseSnapshot(saved.taken_at, tuple(rows))


def database_resets(snapshot: DatabaseSnapshot | None) -> tuple[tuple[str, datetime | None], ...]:
    return tuple((d.database, d.stats_reset) for d in snapshot.databases) if snapshot is not None else ()
