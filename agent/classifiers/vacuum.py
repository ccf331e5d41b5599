"""Vacuum and the cost of writes: what vacuum leaves behind and what makes it fall behind.

Bloat (estimated from the statistics, measured with pgstattuple where it can),
autovacuum that stays behind a table's own trigger (with the reason when
visible), updates that lose HOT because an index covers what they set, and
multixact age. Who holds the xmin horizon is ``classifiers.horizon``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pgradar.agent.classifiers.horizon import xmin_horizon_held
from pgradar.agent.classifiers.tables import AutovacuumLimit, autovacuum_limit, first_kept, kept_rows, table_rows
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.catalog import TableStat
from pgradar.agent.model.findings import Finding, Kind, Severity, human_bytes, human_seconds, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.model.vacuum import IndexBloat, TableBloat
from pgradar.agent.sqlshape.writes import UpdatedColumns, updated_columns

MAX_STATEMENTS = 10  # UPDATE statements named in one finding's evidence

B = TypeVar("B", TableBloat, IndexBloat)


def bloated(wasted: int | None, size: int, t: Thresholds) -> bool:
    """At least ``bloat_min_bytes`` wasted and at least ``bloat_ratio`` of the size."""
    return wasted is not None and size > 0 and wasted >= t.bloat_min_bytes and wasted >= size * t.bloat_ratio


@per_snapshot  # the bloat poll is hourly; its 10,000 entries were judged again at every pass
def bloated_entries(entries: Sequence[B], t: Thresholds) -> tuple[B, ...]:
    """The tables or indexes of a bloat poll that are ``bloated``."""
    return tuple(b for b in entries if bloated(b.wasted_bytes, b.size_bytes, t))


def bloat_evidence(b: TableBloat | IndexBloat) -> dict[str, Any]:
    """Both figures where both are known, and which one the finding rests on."""
    wasted, size = b.wasted_bytes or 0, b.size_bytes
    return {
        "wasted_bytes": wasted,
        "size_bytes": size,
        "wasted_ratio": round(wasted / size, 3) if size else None,
        "basis": b.basis,
        "estimated_wasted_bytes": b.estimate.wasted_bytes,
        "measured_wasted_bytes": b.measured.wasted_bytes if b.measured else None,
        "fillfactor": b.estimate.fillfactor,
    }


def table_bloat(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A table wastes at least ``bloat_min_bytes`` and ``bloat_ratio`` of its pages (heap and TOAST).

    The figure is pgstattuple_approx's where it measured the table this poll
    (``basis: pgstattuple``), else the statistics estimate (``basis:
    estimate``, from pg_stats widths and reltuples; no table read). Space a
    plain VACUUM frees is reused by later writes but stays allocated; only a
    rewrite gives it back, so the fix is ``VACUUM FULL`` with the lock it takes
    said, and pg_repack as the online way. Evidence: wasted and total bytes,
    the share, the basis, both figures where both are known, the fillfactor
    and the dead rows the tables poll counted.
    """
    snapshot = obs.snapshots.bloat
    if snapshot is None or (obs.on_standby and obs.primary_watched):
        return
    dead = {(r.database, r.relid): r.n_dead_tup for r in obs.snapshots.tables.tables} if obs.snapshots.tables else {}
    for b in bloated_entries(snapshot.tables, t):
        wasted, size = b.wasted_bytes or 0, b.size_bytes
        e = b.estimate
        name = qualified(e.schema, e.relation)
        n_dead = dead.get((e.database, e.relid))
        yield Finding(
            Kind.TABLE_BLOAT,
            Severity.WARNING,
            obs.target,
            f"{name} in {e.database} wastes {human_bytes(wasted)} of {human_bytes(size)} ({wasted / size:.0%}, "
            f"{'measured by pgstattuple' if b.measured else 'estimated from statistics'})",
            f"VACUUM FULL {name}; -- returns the space to the system; takes an ACCESS EXCLUSIVE lock: no reads or "
            f"writes of the table until it ends; online instead: pg_repack --table={name} --dbname={e.database}; "
            f"a plain VACUUM {name}; only makes the space reusable by later writes, without a lock",
            {**bloat_evidence(b), "n_dead_tup": n_dead},
            database=e.database,
            schema=e.schema,
            relation=e.relation,
        )


def index_bloat(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A B-tree index wastes at least ``bloat_min_bytes`` and ``bloat_ratio`` of its pages.

    The figure is pgstatindex's where it measured the index this poll (leaf
    pages less what the entries fill at the fillfactor, plus empty and
    deleted pages; ``basis: pgstattuple``), else the statistics estimate
    (``basis: estimate``). A rebuild without a write lock returns it:
    ``REINDEX INDEX CONCURRENTLY``. Evidence as for table_bloat.
    """
    snapshot = obs.snapshots.bloat
    if snapshot is None or (obs.on_standby and obs.primary_watched):
        return
    for b in bloated_entries(snapshot.indexes, t):
        wasted, size = b.wasted_bytes or 0, b.size_bytes
        e = b.estimate
        name = qualified(e.schema, e.index)
        yield Finding(
            Kind.INDEX_BLOAT,
            Severity.WARNING,
            obs.target,
            f"index {name} on {quote_ident(e.relation)} in {e.database} wastes {human_bytes(wasted)} of "
            f"{human_bytes(size)} ({wasted / size:.0%}, "
            f"{'measured by pgstatindex' if b.measured else 'estimated from statistics'})",
            f"REINDEX INDEX CONCURRENTLY {name}; -- rebuilds it beside the old one; reads and writes go on",
            bloat_evidence(b),
            database=e.database,
            schema=e.schema,
            relation=e.relation,
            index=e.index,
        )


def above_trigger_since(obs: Observation, table: TableStat, trigger: float) -> datetime:
    """The first kept tables poll of the unbroken run up to the latest in which the table was above ``trigger``."""
    since = obs.now
    key = (table.database, table.relid)
    for snapshot, rows in zip(reversed(obs.history.tables), reversed(kept_rows(obs)), strict=True):
        row = rows.get(key)
        if row is None or row.n_dead_tup <= trigger:
            break
        since = snapshot.taken_at
    return since


def _lag_reasons(
    obs: Observation,
    table: TableStat,
    limit: AutovacuumLimit,
    rows: float,
    horizon: Finding | None,
) -> list[tuple[str, str]]:
    """(reason, fix) for each cause pgradar can see, the one to act on first first."""
    name = qualified(table.schema, table.relation)
    settings = obs.snapshots.settings
    vacuum = obs.snapshots.vacuum
    found: list[tuple[str, str]] = []
    if horizon is not None:
        found.append(
            (
                f"the xmin horizon is held ({horizon.evidence['holder']}): vacuum cannot remove rows dead since",
                "-- first release the horizon: the xmin_horizon_held finding"
                + (f" of database {horizon.database}" if horizon.database else "")
                + " names the holder and its fix",
            )
        )
    if settings is not None and not settings.settings.autovacuum:
        found.append(("autovacuum is off on the server", "ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();"))
    elif not limit.enabled:
        found.append(("autovacuum is off for this table", f"ALTER TABLE {name} RESET (autovacuum_enabled);"))
    running = [r for r in (vacuum.running if vacuum else ()) if (r.database, r.relid) == (table.database, table.relid)]
    busy = vacuum.workers_busy if vacuum else None
    if running:
        r = running[0]
        found.append(
            (
                f"a VACUUM has run on it for {human_seconds(r.running_seconds or 0)} (phase {r.phase}), paced by its "
                "cost limit",
                f"ALTER TABLE {name} SET (autovacuum_vacuum_cost_limit = 2000); -- ten times the default pace",
            )
        )
    elif busy is not None and busy[0] >= busy[1]:
        found.append(
            (
                f"every autovacuum worker is busy ({busy[0]} of autovacuum_max_workers {busy[1]}) on other tables",
                f"ALTER SYSTEM SET autovacuum_max_workers = {busy[1] + 2}; -- a restart applies it before 18",
            )
        )
    if limit.enabled and limit.scale_factor * rows > 1_000_000:
        scale = 0.01 if rows >= 10_000_000 else 0.05
        found.append(
            (
                f"its scale factor {limit.scale_factor} lets {limit.trigger(rows):,.0f} dead rows pile up before "
                "autovacuum starts",
                f"ALTER TABLE {name} SET (autovacuum_vacuum_scale_factor = {scale}, autovacuum_vacuum_threshold = "
                f"1000); -- starts at {1000 + scale * rows:,.0f} dead rows",
            )
        )
    return found


def autovacuum_lagging(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Dead rows stay above the table's own autovacuum trigger for ``autovacuum_lag_s``, or vacuum ran and left them.

    The trigger is ``autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor
    * rows`` with the table's reloptions over the settings. It counts as
    lagging when the kept tables polls show it above the trigger for
    ``autovacuum_lag_s``, or (one pass is enough) when a VACUUM ran while a
    holder of the xmin horizon already held it and the dead rows are still
    above the trigger (vacuum runs again and again without lowering them),
    or autovacuum is off for it (no run will come).
    At least ``dead_tuples_min_rows`` dead rows. The reasons it can see, in
    the order to act on them: the horizon (pointing to xmin_horizon_held),
    autovacuum off (server or table), a VACUUM on the table now paced by its
    cost limit, every autovacuum worker busy (pg_stat_progress_vacuum), a
    scale factor that lets more than a million dead rows wait (the
    ``ALTER TABLE ... SET`` with numbers). The fix is those, then a VACUUM.
    """
    if obs.on_standby:
        return
    tables = obs.snapshots.tables
    if tables is None:
        return
    settings = obs.snapshots.settings.settings if obs.snapshots.settings is not None else None
    horizons = list(xmin_horizon_held(obs, t))
    for table in tables.tables:
        if table.n_dead_tup < t.dead_tuples_min_rows:
            continue  # most tables, decided before the reloptions are read
        rows = table_rows(table)
        limit = autovacuum_limit(table, settings, "vacuum")
        trigger = limit.trigger(rows)
        if table.n_dead_tup <= trigger:
            continue
        horizon = next((h for h in horizons if h.database in (table.database, None)), None)
        above_s = (obs.now - above_trigger_since(obs, table, trigger)).total_seconds()
        last = table.last_vacuumed
        vacuumed_behind = (
            horizon is not None
            and last is not None
            and float(horizon.evidence["held_seconds"]) > (obs.now - last).total_seconds()
        )
        autovacuum_off = not limit.enabled  # the server's switch is in it: nothing will come, however long we wait
        if above_s < t.autovacuum_lag_s and not vacuumed_behind and not autovacuum_off:
            continue
        name = qualified(table.schema, table.relation)
        reasons = _lag_reasons(obs, table, limit, rows, horizon)
        why = "; ".join(r for r, _ in reasons) or "no cause visible from here (autovacuum_naptime, cost limits)"
        yield Finding(
            Kind.AUTOVACUUM_LAGGING,
            Severity.WARNING,
            obs.target,
            f"{name} in {table.database}: {table.n_dead_tup:,} dead rows above its autovacuum trigger "
            f"({trigger:,.0f})"
            + (f" for {human_seconds(above_s)}" if above_s else ", left by the last VACUUM")
            + f": {why}",
            "\n".join([*(fix for _, fix in reasons), f"VACUUM (VERBOSE) {name};"]),
            {
                "n_dead_tup": table.n_dead_tup,
                "trigger_rows": round(trigger),
                "autovacuum_vacuum_threshold": limit.threshold,
                "autovacuum_vacuum_scale_factor": limit.scale_factor,
                "autovacuum_enabled": limit.enabled,
                "above_trigger_seconds": round(above_s),
                "last_vacuum": last.isoformat() if last else None,
                "reasons": [r for r, _ in reasons],
                "horizon_finding": horizon.id if horizon else None,
            },
            database=table.database,
            schema=table.schema,
            relation=table.relation,
        )


def update_counts(kept: Sequence[Mapping[tuple[str, int], TableStat]], table: TableStat) -> tuple[int, int, str]:
    """(updates, HOT updates, window): over the kept polls (kept_rows) when they saw enough, else since the reset."""
    first = first_kept(kept, table)
    if first is not None and first is not table and table.n_tup_upd >= first.n_tup_upd:
        updates = table.n_tup_upd - first.n_tup_upd
        if updates > 0 and table.n_tup_hot_upd >= first.n_tup_hot_upd:
            return updates, table.n_tup_hot_upd - first.n_tup_hot_upd, "kept polls"
    return table.n_tup_upd, table.n_tup_hot_upd, "since statistics reset"


def _setters(obs: Observation, table: TableStat) -> list[tuple[int, int, UpdatedColumns]]:
    """(queryid, calls, what it sets) of the UPDATE statements of ``table`` that pg_stat_statements knows."""
    snapshot = obs.snapshots.statements
    if snapshot is None:
        return []
    calls: dict[tuple[int, int], int] = {}
    for r in snapshot.rows:
        if r.database == table.database:
            calls[(r.dbid, r.queryid)] = calls.get((r.dbid, r.queryid), 0) + r.calls
    found = []
    for key, n in calls.items():
        text = obs.statement_texts.get(key)
        sets = updated_columns(text) if text else None
        if sets is not None and sets.table == table.relation and sets.schema in (None, table.schema):
            found.append((key[1], n, sets))
    return sorted(found, key=lambda f: -f[1])


def hot_updates_lost(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Many updates, few HOT, because an index covers a column the UPDATE statements set.

    A table with at least ``hot_min_updates`` updates (over the kept polls
    when they saw that many, else since the statistics reset) and a HOT
    share below ``hot_min_share``, where an index of the table (its keys or
    INCLUDE columns) holds a column that an UPDATE statement of the table
    sets (read with sqlglot from pg_stat_statements texts). Such an update
    writes a new entry in every index of the table, not only that one. An
    UPDATE of columns no index holds is HOT-able, so a table whose statements
    set only those is left alone. The fix drops the index (not one backing
    a constraint), its scans in evidence to weigh what it serves.
    """
    if obs.on_standby:
        return
    tables, indexes = obs.snapshots.tables, obs.snapshots.indexes
    if tables is None or indexes is None:
        return
    kept = kept_rows(obs)
    for table in tables.tables:
        if table.n_tup_upd < t.hot_min_updates:
            continue  # fewer updates ever than the rule needs in its window: most tables, no lookup
        updates, hot, window = update_counts(kept, table)
        if updates < t.hot_min_updates or hot >= updates * t.hot_min_share:
            continue
        own = [i for i in indexes.indexes if (i.database, i.relid) == (table.database, table.relid)]
        setters = _setters(obs, table)
        set_columns = {c for _, _, s in setters for c in s.columns}
        breaking = [i for i in own if set_columns & {c for c in i.columns if c is not None}]
        if not breaking:
            continue
        name = qualified(table.schema, table.relation)
        fixes = []
        for i in breaking:
            cols = sorted(set_columns & {c for c in i.columns if c is not None})
            index_name = qualified(i.schema, i.index)
            if i.constraint_type or i.is_unique:
                fixes.append(f"-- {index_name} backs a constraint on {', '.join(cols)}: keep it, update those less")
            else:
                fixes.append(
                    f"DROP INDEX CONCURRENTLY {index_name}; -- every UPDATE of {', '.join(cols)} writes all "
                    f"{len(own)} indexes of the table; this one was scanned {i.idx_scan:,} times; recreate it with: "
                    f"{i.definition};"
                )
        share = hot / updates
        yield Finding(
            Kind.HOT_UPDATES_LOST,
            Severity.WARNING,
            obs.target,
            f"{name} in {table.database}: {share:.0%} of {updates:,} updates are HOT ({window}); "
            f"{', '.join(i.index for i in breaking)} hold(s) a column its UPDATE statements set, so each update "
            f"writes all {len(own)} indexes",
            "\n".join(fixes),
            {
                "updates": updates,
                "hot_updates": hot,
                "hot_share": round(share, 3),
                "window": window,
                "indexes_written_per_update": len(own),
                "indexes": [
                    {
                        "index": i.index,
                        "columns": [c for c in i.columns if c is not None],
                        "idx_scan": i.idx_scan,
                        "size_bytes": i.size_bytes,
                        "constraint": i.constraint_type,
                    }
                    for i in breaking
                ],
                "statements": [
                    {"queryid": str(q), "calls": n, "columns": list(s.columns)} for q, n, s in setters[:MAX_STATEMENTS]
                ],
            },
            database=table.database,
            schema=table.schema,
            relation=table.relation,
        )


def multixact_wraparound(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A database whose ``mxid_age(datminmxid)`` reaches ``mxid_age_warning`` (critical at ``mxid_age_critical``).

    Multixact IDs (row locks shared by several transactions, foreign keys'
    FOR KEY SHARE) wrap around like transaction IDs: near 2 billion the
    server stops writing. When one table's relminmxid holds the database
    back (the only one whose age is within 10% of the database's, from the
    bloat poll's read of pg_class), the fix freezes that table; else the
    whole database.
    Beside xid_wraparound, reported once for a primary and its standbys.
    """
    if obs.on_standby and obs.primary_watched:
        return
    databases = obs.snapshots.database
    if databases is None:
        return
    bloat = obs.snapshots.bloat
    for db in databases.databases:
        age = db.mxid_age
        if age < t.mxid_age_warning:
            continue
        severity = Severity.CRITICAL if age >= t.mxid_age_critical else Severity.WARNING
        candidates = [b.estimate for b in (bloat.tables if bloat else ()) if b.estimate.database == db.database]
        holding = [e for e in candidates if e.mxid_age >= 0.9 * age]
        oldest = holding[0] if len(holding) == 1 else None  # several as old: freezing one would not move it
        evidence = {
            "mxid_age": age,
            "xid_age": db.xid_age,
            "warning_at": t.mxid_age_warning,
            "critical_at": t.mxid_age_critical,
        }
        where = f"-- in database {quote_ident(db.database)}:\n"
        if oldest is not None:
            target = qualified(oldest.schema, oldest.relation)
            yield Finding(
                Kind.MULTIXACT_WRAPAROUND,
                severity,
                obs.target,
                f"database {db.database}: multixact ID age {age:,}, held back by {target} (age "
                f"{oldest.mxid_age:,}); writes stop near 2,000,000,000",
                f"{where}VACUUM (FREEZE, VERBOSE) {target};",
                {**evidence, "table_mxid_age": oldest.mxid_age},
                database=db.database,
                schema=oldest.schema,
                relation=oldest.relation,
            )
        else:
            yield Finding(
                Kind.MULTIXACT_WRAPAROUND,
                severity,
                obs.target,
                f"database {db.database}: multixact ID age {age:,}; writes stop near 2,000,000,000",
                f"{where}VACUUM (FREEZE, VERBOSE);",
                evidence,
                database=db.database,
            )


CLASSIFIERS = (
    table_bloat,
    index_bloat,
    autovacuum_lagging,
    hot_updates_lost,
    multixact_wraparound,
)
