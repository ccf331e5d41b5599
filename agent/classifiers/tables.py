"""Table problems: stale_stats, dead_tuples, xid_wraparound, and seq_scan seen from table counters.

Small tables are never problems here: a sequential scan, a few dead rows or
an old analyze on a table of a few hundred rows cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pgradar.agent import sqlshape
from pgradar.agent.classifiers.fixes import create_index_sql
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.activity import DatabaseSnapshot, Settings, SettingsSnapshot
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot, TableStat
from pgradar.agent.model.findings import Finding, Kind, Severity, human_bytes, human_seconds, qualified, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.model.thresholds import Thresholds


def is_large(rows: float, size_bytes: float | None, t: Thresholds) -> bool:
    """Large enough that its problems matter: by rows, or by bytes for wide rows."""
    return rows >= t.large_table_rows or (size_bytes or 0) >= t.large_table_bytes


def table_rows(table: TableStat) -> float:
    """Rows as best known: reltuples (-1 before the first analyze on 14+) or the live count."""
    return max(table.reltuples, float(table.n_live_tup), 0.0)


@per_snapshot
def large_tables(tables: Sequence[TableStat], t: Thresholds) -> tuple[tuple[TableStat, float], ...]:
    """(table, its rows) of the tables large enough to matter: several rules ask at every pass."""
    return tuple((table, rows) for table in tables if is_large(rows := table_rows(table), table.size_bytes, t))


def _tables(obs: Observation) -> tuple[TableStat, ...]:
    snap: TablesSnapshot | None = obs.snapshots.tables
    return snap.tables if snap is not None else ()


def _settings(obs: Observation) -> Settings | None:
    snap: SettingsSnapshot | None = obs.snapshots.settings
    return snap.settings if snap is not None else None


def reloption(table: TableStat, name: str) -> str | None:
    for option in table.reloptions or ():
        key, _, value = option.partition("=")
        if key == name:
            return value
    return None


def _table_float(table: TableStat, name: str, default: float) -> float:
    value = reloption(table, name)
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _finding(
    kind: Kind,
    severity: Severity,
    obs: Observation,
    table: TableStat,
    summary: str,
    recommendation: str,
    evidence: dict[str, object],
) -> Finding:
    return Finding(
        kind,
        severity,
        obs.target,
        summary,
        recommendation,
        evidence,
        database=table.database,
        schema=table.schema,
        relation=table.relation,
    )


# --- stale_stats -----------------------------------------------------------------------


def modified_since_analyze(table: TableStat) -> float:
    """Rows changed since the last analyze, with the bulk-load race discounted (DESIGN 7).

    After a load and an ANALYZE in the same session, the loader's insert
    counts arrive after the analyze zeroed the counter, so
    ``n_mod_since_analyze`` still counts every loaded row. When it counts at
    least every insert ever made while the analyze's ``reltuples`` already
    holds them, those inserts were seen by the analyze: what is left is the
    other changes, or the drift between live rows and ``reltuples``.
    """
    mods = float(table.n_mod_since_analyze)
    inserted = float(table.n_tup_ins)
    if table.last_analyzed is not None and inserted > 0 and mods >= inserted and table.reltuples >= 0.9 * inserted:
        return max(mods - inserted, abs(table.n_live_tup - table.reltuples))
    return mods


@dataclass(frozen=True, slots=True)
class AutovacuumLimit:
    enabled: bool
    threshold: float
    scale_factor: float

    def trigger(self, rows: float) -> float:
        return self.threshold + self.scale_factor * max(rows, 0.0)


def autovacuum_limit(table: TableStat, settings: Settings | None, kind: str) -> AutovacuumLimit:
    """When autovacuum runs ``kind`` ('analyze' or 'vacuum') here: per-table reloptions over the settings."""
    defaults = {"analyze": (50, 0.1), "vacuum": (50, 0.2)}[kind]
    # stored as written: WITH (autovacuum_enabled = off) is "off", = false is "false"
    switch = (reloption(table, "autovacuum_enabled") or "on").lower()
    enabled = (settings.autovacuum if settings else True) and switch not in ("false", "off", "no", "0", "f", "n", "of")
    threshold = _table_float(
        table,
        f"autovacuum_{kind}_threshold",
        getattr(settings, f"autovacuum_{kind}_threshold") if settings else defaults[0],
    )
    scale = _table_float(
        table,
        f"autovacuum_{kind}_scale_factor",
        getattr(settings, f"autovacuum_{kind}_scale_factor") if settings else defaults[1],
    )
    return AutovacuumLimit(enabled, threshold, scale)


def autovacuum_fix(name: str, table: TableStat, limit: AutovacuumLimit, changed: float, ratio: float) -> str:
    """The per-table setting to add when autovacuum's own limits are why it did not act."""
    target = qualified(table.schema, table.relation)
    if not limit.enabled:
        return f"ALTER TABLE {target} RESET (autovacuum_enabled);  -- autovacuum is off for this table"
    rows = table_rows(table)
    if limit.trigger(rows) > changed:
        wanted = max(round(ratio / 4, 3), 0.001)
        return (
            f"ALTER TABLE {target} SET (autovacuum_{name}_scale_factor = {wanted});  -- autovacuum waits for "
            f"{limit.trigger(rows):.0f} changed rows on this table"
        )
    return ""


def stale_stats(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Large tables never analyzed, or with many rows changed since the last analyze.

    Changed rows are ``n_mod_since_analyze`` (race-corrected, see
    ``modified_since_analyze``) against the table's rows; at
    ``stale_stats_modified_ratio`` the planner works from a different table.
    The fix is ANALYZE now, and the per-table autovacuum setting when its
    limits are the reason it has not analyzed yet. A table autovacuum is
    due to analyze, analyzed less than ``stale_stats_grace_s`` ago, is info:
    a busy insert-only table is always a little behind, and autovacuum's
    next round (``autovacuum_naptime``) fixes it. Partitioned parents are
    left out: autovacuum never analyzes them and their partitions carry the
    statistics plans use.
    """
    if obs.on_standby:  # analyze times and change counts are the standby's own; ANALYZE runs on the primary
        return
    settings = _settings(obs)
    for table, rows in large_tables(_tables(obs), t):
        if table.relkind == "p":
            continue
        changed = modified_since_analyze(table)
        base = table.reltuples if table.reltuples > 0 else float(table.n_live_tup)
        ratio = changed / max(base, 1.0)
        if table.last_analyzed is not None and ratio < t.stale_stats_modified_ratio:
            continue  # the usual case, decided before any evidence is written
        target = qualified(table.schema, table.relation)
        limit = autovacuum_limit(table, settings, "analyze")
        evidence: dict[str, object] = {
            "n_mod_since_analyze": table.n_mod_since_analyze,
            "modified_estimate": round(changed),
            "reltuples": table.reltuples,
            "n_live_tup": table.n_live_tup,
            "last_analyze": _iso(table.last_analyzed),
            "autovacuum_analyze_trigger_rows": round(limit.trigger(rows)),
            "autovacuum_enabled": limit.enabled,
        }
        fix = autovacuum_fix("analyze", table, limit, changed, t.stale_stats_modified_ratio)
        recommendation = f"ANALYZE {target};" + (f"\n{fix}" if fix else "")
        if table.last_analyzed is None:
            yield _finding(
                Kind.STALE_STATS,
                Severity.WARNING,
                obs,
                table,
                f"{target} ({rows:,.0f} rows) has never been analyzed: the planner guesses its size "
                "and value distribution",
                recommendation,
                evidence,
            )
        elif ratio >= t.stale_stats_modified_ratio:
            since = (obs.now - table.last_analyzed).total_seconds()
            due = limit.enabled and not fix and since < t.stale_stats_grace_s
            severity: Severity = Severity.INFO if due else Severity.WARNING
            why = (
                f"; autovacuum is due to analyze it (last analyze {human_seconds(since)} ago)"
                if due
                else "; plans use out-of-date statistics"
            )
            yield _finding(
                Kind.STALE_STATS,
                severity,
                obs,
                table,
                f"{target}: {changed:,.0f} rows changed since the last analyze, {ratio:.0%} of {base:,.0f}{why}",
                recommendation,
                {**evidence, "ratio": round(ratio, 3)},
            )


def _iso(moment: object) -> str | None:
    return moment.isoformat() if moment is not None else None  # type: ignore[attr-defined]


# --- dead_tuples -----------------------------------------------------------------------


def dead_tuples(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Dead rows at least ``dead_tuples_min_rows`` and ``dead_tuples_ratio`` of the table.

    Critical at twice the ratio (or above half the table): every scan reads
    the dead rows, and the table and its indexes keep growing. The fix is a
    VACUUM now, and the per-table autovacuum setting when autovacuum's limits
    let it wait; when autovacuum should have run already, a long transaction
    holding back the xmin horizon is the usual cause.
    """
    if obs.on_standby:  # dead-row counts are the standby's own; VACUUM runs on the primary
        return
    settings = _settings(obs)
    for table in _tables(obs):
        dead = float(table.n_dead_tup)
        total = dead + table.n_live_tup
        if dead < t.dead_tuples_min_rows or total <= 0:
            continue
        ratio = dead / total
        if ratio < t.dead_tuples_ratio:
            continue
        target = qualified(table.schema, table.relation)
        limit = autovacuum_limit(table, settings, "vacuum")
        fix = autovacuum_fix("vacuum", table, limit, dead, t.dead_tuples_ratio)
        hint = fix or (
            "-- autovacuum should have run: look for long transactions holding back the xmin horizon "
            "(pg_stat_activity.backend_xmin, replication slots, prepared transactions)"
        )
        severity: Severity = Severity.CRITICAL if ratio >= min(2 * t.dead_tuples_ratio, 0.5) else Severity.WARNING
        yield _finding(
            Kind.DEAD_TUPLES,
            severity,
            obs,
            table,
            f"{target}: {dead:,.0f} dead rows, {ratio:.0%} of the table; vacuum is not keeping up",
            f"VACUUM (VERBOSE, ANALYZE) {target};\n{hint}",
            {
                "n_dead_tup": table.n_dead_tup,
                "n_live_tup": table.n_live_tup,
                "ratio": round(ratio, 3),
                "last_vacuum": _iso(table.last_vacuumed),
                "size_bytes": table.size_bytes,
                "autovacuum_vacuum_trigger_rows": round(limit.trigger(table_rows(table))),
            },
        )


# --- xid_wraparound --------------------------------------------------------------------


def xid_wraparound(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A database whose datfrozenxid age reaches ``xid_age_warning`` (critical at ``xid_age_critical``).

    At about 2 billion the server stops accepting writes. When one table's
    relfrozenxid is what holds the database back (its age within 10% of the
    database's), the finding names it and the fix freezes that table; else
    the whole database needs a VACUUM (FREEZE).
    """
    if obs.on_standby and obs.primary_watched:  # the same datfrozenxid: reported on the primary
        return
    snap: DatabaseSnapshot | None = obs.snapshots.database
    if snap is None:
        return
    tables: TablesSnapshot | None = obs.snapshots.tables
    for db in snap.databases:
        age = float(db.xid_age)
        if age < t.xid_age_warning:
            continue
        severity: Severity = Severity.CRITICAL if age >= t.xid_age_critical else Severity.WARNING
        ages = (
            [
                (table_age, x)
                for x in tables.tables
                if x.database == db.database and (table_age := tables.xid_age(x)) is not None
            ]
            if tables is not None
            else []
        )
        oldest_age, oldest = max(ages, key=lambda a: a[0], default=(0, None))
        evidence: dict[str, object] = {
            "xid_age": db.xid_age,
            "mxid_age": db.mxid_age,
            "warning_at": t.xid_age_warning,
            "critical_at": t.xid_age_critical,
        }
        if oldest is not None and oldest_age >= 0.9 * age:
            target = qualified(oldest.schema, oldest.relation)
            yield Finding(
                Kind.XID_WRAPAROUND,
                severity,
                obs.target,
                f"database {db.database}: transaction ID age {age:,.0f}, held back by {target} "
                f"(age {oldest_age:,}); writes stop near 2,000,000,000",
                f"-- in database {quote_ident(db.database)}:\nVACUUM (FREEZE, VERBOSE) {target};",
                {**evidence, "table_xid_age": oldest_age},
                database=db.database,
                schema=oldest.schema,
                relation=oldest.relation,
            )
        else:
            yield Finding(
                Kind.XID_WRAPAROUND,
                severity,
                obs.target,
                f"database {db.database}: transaction ID age {age:,.0f}; writes stop near 2,000,000,000",
                f"-- in database {quote_ident(db.database)}:\nVACUUM (FREEZE, VERBOSE);",
                evidence,
                database=db.database,
            )


# --- seq_scan from table counters ----------------------------------------------------------


@per_snapshot  # three rules ask for a table's row in the kept polls at every pass: a lookup, not a scan per table
def kept_by_relid(*kept: Sequence[TableStat]) -> tuple[dict[tuple[str, int], TableStat], ...]:
    """One dict per kept tables poll, oldest first: each table's row by (database, relid)."""
    return tuple({(r.database, r.relid): r for r in rows} for rows in kept)


def kept_rows(obs: Observation) -> tuple[dict[tuple[str, int], TableStat], ...]:
    return kept_by_relid(*(snapshot.tables for snapshot in obs.history.tables))


def first_kept(kept: Sequence[Mapping[tuple[str, int], TableStat]], table: TableStat) -> TableStat | None:
    """The table's row in the oldest kept poll that saw it (``kept_rows``)."""
    key = (table.database, table.relid)
    return next((rows[key] for rows in kept if key in rows), None)


def _scan_counts(kept: Sequence[Mapping[tuple[str, int], TableStat]], table: TableStat) -> tuple[int, int, int]:
    """(seq scans, rows they read, index scans) over the kept history, or since stats reset.

    Counters since a reset long ago would keep blaming a table that is
    indexed now; the difference over the kept snapshots tells what happens
    lately. It falls back to the totals when there is one snapshot or the
    counters went backwards (a reset).
    """
    first = first_kept(kept, table)
    if (
        first is not None
        and first is not table
        and table.seq_scan >= first.seq_scan
        and table.idx_scan >= first.idx_scan
        and table.seq_tup_read >= first.seq_tup_read
    ):
        return (
            table.seq_scan - first.seq_scan,
            table.seq_tup_read - first.seq_tup_read,
            table.idx_scan - first.idx_scan,
        )
    return table.seq_scan, table.seq_tup_read, table.idx_scan


def _planned_relations(obs: Observation) -> set[tuple[str, str, str]]:
    """Relations that a plan-level seq_scan covers (it names the statement and the index)."""
    plans = obs.snapshots.plans
    if plans is None:
        return set()
    return {
        (p.database, scan.schema, scan.relation) for p in plans.plans for scan in p.seq_scans if scan.schema is not None
    }


MAX_TEXTS_SEARCHED = 50


def suggested_index(obs: Observation, table: TableStat) -> tuple[tuple[str, ...], int, int] | None:
    """An index for a table from the statements that filter it: (columns, equality columns, queryid) or None.

    The costliest statements with a known text (at most ``MAX_TEXTS_SEARCHED``)
    are read with sqlglot; the first that filters this table gives the
    proposal, unless an existing index already leads with it.
    """
    statements: StatementsSnapshot | None = obs.snapshots.statements
    indexes: IndexesSnapshot | None = obs.snapshots.indexes
    if statements is None:
        return None
    existing = [
        [c or "" for c in i.keys]
        for i in (indexes.indexes if indexes else ())
        if i.database == table.database and i.relid == table.relid and i.predicate is None
    ]
    rows = sorted(
        (r for r in statements.rows if r.database == table.database and r.toplevel), key=lambda r: -r.total_exec_ms
    )[:MAX_TEXTS_SEARCHED]
    for row in rows:
        text = obs.statement_texts.get((row.dbid, row.queryid))
        for use in (sqlshape.table_uses(text) or ()) if text else ():
            if use.table != table.relation or use.schema not in (None, table.schema):
                continue
            columns = sqlshape.propose_index(use)
            if columns and not sqlshape.covered_by(columns, existing, len(use.equality)):
                return columns, sqlshape.equality_count(use), row.queryid
    return None


def table_seq_scans(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A large table read mostly by sequential scans, each reading most of it.

    At least ``seq_scan_min_scans`` scans, ``seq_scan_share`` of all its
    scans, averaging ``large_table_rows`` rows each. Counters do not say
    which statement: the index comes from the costliest statement that
    filters the table (``suggested_index``, unverified), else the
    recommendation is the query that finds the statements (then
    ``pgradar explain --queryid``). A relation a plan-level finding covers
    is left to that one.
    """
    planned = _planned_relations(obs)
    kept = kept_rows(obs)
    for table, _ in large_tables(_tables(obs), t):
        seq, read, idx = _scan_counts(kept, table)
        if seq < max(t.seq_scan_min_scans, 1) or seq / max(seq + idx, 1) < t.seq_scan_share:
            continue
        if read / seq < t.large_table_rows or (table.database, table.schema, table.relation) in planned:
            continue
        target = qualified(table.schema, table.relation)
        evidence: dict[str, object] = {
            "seq_scan": seq,
            "seq_tup_read": read,
            "idx_scan": idx,
            "reltuples": table.reltuples,
            "size_bytes": table.size_bytes,
        }
        summary = (
            f"{target}: {seq} sequential scans reading {read / seq:,.0f} rows each "
            f"({human_bytes(table.size_bytes or 0)}), {seq / max(seq + idx, 1):.0%} of its scans"
        )
        suggestion = suggested_index(obs, table)
        if suggestion is not None:
            columns, equality, queryid = suggestion
            comment = f"-- from statement {queryid}'s text, unverified: `pgradar explain --queryid {queryid}` plans it"
            sql = create_index_sql(table.schema, table.relation, columns, table.relkind == "p") + "\n" + comment
            candidate = {
                "columns": list(columns),
                "equality": equality,
                "partitioned": table.relkind == "p",
                "sql": sql,
                "comment": comment,
            }
            yield _finding(
                Kind.SEQ_SCAN,
                Severity.WARNING,
                obs,
                table,
                summary + f"; statement {queryid} filters on ({', '.join(columns)})",
                sql,
                {
                    **evidence,
                    "statement_queryid": str(queryid),
                    "columns": list(columns),
                    "index_candidates": [candidate],
                },
            )
            continue
        pattern = table.relation.replace("'", "''")
        yield _finding(
            Kind.SEQ_SCAN,
            Severity.WARNING,
            obs,
            table,
            summary,
            "-- find the statements, then `pgradar explain --queryid N` names the index:\n"
            "SELECT queryid, calls, round(total_exec_time) AS total_ms, left(query, 120) "
            "FROM pg_stat_statements\n"
            f" WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" AND query ILIKE '%{pattern}%'\n ORDER BY total_exec_time DESC LIMIT 10;",
            evidence,
        )


CLASSIFIERS = (stale_stats, dead_tuples, xid_wraparound, table_seq_scans)
