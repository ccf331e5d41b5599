"""The Vacuum dashboard: who holds the xmin horizon, dead rows, autovacuum workers, bloat, HOT updates."""

from __future__ import annotations

from grafanalib import core as g

from pgradar.agent.model.findings import Kind

from .kit import RI, TD, Q, T, dashboard, database_var, metric, stat, table, timeseries

VACUUM_KINDS = "|".join(
    (
        Kind.XMIN_HORIZON_HELD,
        Kind.TABLE_BLOAT,
        Kind.INDEX_BLOAT,
        Kind.AUTOVACUUM_LAGGING,
        Kind.HOT_UPDATES_LOST,
        Kind.MULTIXACT_WRAPAROUND,
        Kind.DEAD_TUPLES,
        Kind.XID_WRAPAROUND,
    )
)


def vacuum() -> g.Dashboard:
    rel = "target, database, schema, relation"
    rows = [
        [
            stat(
                "xmin horizon held",
                f"max({metric('pgradar_xmin_horizon_age_seconds')}{{{T}}})",
                "s",
                "How long the oldest holder has kept the xmin horizon: vacuum leaves every row dead since then "
                "(alert PostgresXminHorizonHeld).",
                red_above=3600,
                w=6,
            ),
            stat(
                "Autovacuum workers busy",
                f"sum({metric('pgradar_autovacuum_workers_busy')}{{{T}}})",
                "none",
                "Autovacuum workers running a VACUUM now; when all of autovacuum_max_workers are busy, tables wait.",
                w=6,
            ),
            stat(
                "Oldest multixact age",
                f"max({metric('pgradar_database_mxid_age')}{{{TD}}})",
                "short",
                "mxid_age(datminmxid): multixact IDs wrap at about 2 billion (alert PostgresMultixactWraparound).",
                red_above=500_000_000,
                w=6,
            ),
            table(
                "Vacuum problems",
                f'sort_desc(sum by (kind, severity) ({metric("pgradar_problems")}{{{T}, kind=~"{VACUUM_KINDS}"}}))',
                "short",
                "Active vacuum problems by kind and severity; /problems names each holder, table and index "
                "with its fix.",
                w=6,
                value_name="problems",
            ),
        ],
        [
            timeseries(
                "xmin horizon age by holder kind",
                [Q(f"{metric('pgradar_xmin_horizon_age_seconds')}{{{T}}}", "{{target}} {{holder}}")],
                "s",
                "The longest hold of each kind: backend (a session's transaction), prepared (a prepared "
                "transaction), slot (a replication slot's xmin or catalog_xmin), standby (hot_standby_feedback).",
            ),
            timeseries(
                "xmin horizon age in transactions, by holder kind",
                [Q(f"{metric('pgradar_xmin_horizon_age_xids')}{{{T}}}", "{{target}} {{holder}}")],
                "short",
                "Transactions since the oldest xmin each kind of holder keeps.",
            ),
        ],
        [
            timeseries(
                "Dead rows by table (top 10)",
                [Q(f"topk(10, {metric('pgradar_table_dead_rows')}{{{TD}}})", "{{relation}}")],
                "short",
                "Rows dead and not yet removed by vacuum.",
            ),
            timeseries(
                "HOT share of updates by table (top 10 by updates)",
                [
                    Q(
                        f"sum by ({rel}) (rate({metric('pgradar_table_rows_hot_updated_total')}{{{TD}}}[{RI}])) / "
                        f"(topk(10, sum by ({rel}) (rate({metric('pgradar_table_rows_updated_total')}{{{TD}}}[{RI}]))"
                        ") > 0)",
                        "{{relation}}",
                    )
                ],
                "percentunit",
                "Share of updates that wrote no index entry (HOT); a low share with an index on an updated column "
                "is hot_updates_lost.",
            ),
        ],
        [
            table(
                "Table bloat (top 20)",
                f"sort_desc({metric('pgradar_table_bloat_bytes')}{{{TD}}})",
                "bytes",
                "Wasted bytes of the most bloated tables: pgstattuple's figure where it measured them, else the "
                "estimate from pg_stats (the table_bloat finding says which).",
                value_name="wasted",
            ),
            table(
                "Index bloat (top 20)",
                f"sort_desc({metric('pgradar_index_bloat_bytes')}{{{TD}}})",
                "bytes",
                "Wasted bytes of the most bloated B-tree indexes (REINDEX INDEX CONCURRENTLY returns them).",
                value_name="wasted",
            ),
        ],
    ]
    return dashboard(
        "pgradar-vacuum",
        "pgradar / Vacuum",
        "Who holds the xmin horizon, dead rows, autovacuum workers, bloat and HOT updates.",
        rows,
        [database_var()],
    )
