"""Thresholds of the classifiers: defaults, documented, changeable per target.

Each field is one number a classifier compares against; the config file sets
them under ``thresholds:`` (for every target) or ``targets[i].thresholds:``
(for one). The config schema is derived from these fields, so adding a field
here is all it takes to make it configurable. Keep the README table in step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Thresholds:
    # --- tables and indexes ------------------------------------------------------------
    large_table_rows: float = 10_000  # below this a sequential scan is the right plan
    large_table_bytes: float = 8 * 1024 * 1024
    seq_scan_share: float = 0.5  # of a large table's scans, sequential, to suspect it
    unused_index_min_age_s: float = 7 * 86400  # observation window for a warning (shorter: info)
    unused_index_min_bytes: float = 1024 * 1024
    stale_stats_modified_ratio: float = 0.2  # rows modified since analyze / reltuples
    stale_stats_grace_s: float = 600  # analyzed this recently and autovacuum is due: info, not warning
    dead_tuples_ratio: float = 0.2  # dead / (live + dead)
    dead_tuples_min_rows: float = 10_000
    xid_age_warning: float = 500_000_000
    xid_age_critical: float = 1_200_000_000
    seq_scan_min_scans: float = 100  # sequential scans of a large table, for the table-level finding
    unused_index_max_scans: float = 0  # "almost never": at most this many scans in the window
    # --- EXPLAIN and index advice --------------------------------------------------------
    explain_top_statements: float = 10  # the costliest N statements are planned each cycle
    explain_budget_s: float = 5  # planning time per cycle and target; the rest waits for the next
    explain_replan_s: float = 3600  # a cached plan is planned again after this long
    index_advice_min_gain: float = 0.3  # hypopg: recommend only when the cost drops by this share
    index_advice_max_share: float = 0.2  # a filter keeping more of the table than this gets no index advice
    plan_regression_factor: float = 2  # mean time under the new plan shape / under the old, at or above
    plan_regression_critical_factor: float = 10  # the same ratio, for critical
    plan_regression_min_calls: float = 20  # calls counted under each shape before judging
    plan_regression_min_ms: float = 1  # the new mean time at least this (a 0.01 -> 0.03 ms change is noise)
    explain_analyze_budget_s: float = 2  # EXPLAIN ANALYZE (standby, when on): execution time per cycle
    explain_analyze_max_mean_ms: float = 500  # statements slower than this on average are not run
    # --- replication, sessions, pools --------------------------------------------------------
    replication_lag_warning_s: float = 30
    replication_lag_critical_s: float = 300
    replication_lag_warning_bytes: float = 256 * 1024 * 1024
    replication_lag_critical_bytes: float = 2 * 1024 * 1024 * 1024
    slot_retained_warning_bytes: float = 1024 * 1024 * 1024
    slot_retained_critical_bytes: float = 10 * 1024 * 1024 * 1024
    slot_inactive_warning_s: float = 86400  # an inactive slot (any size) this long is a warning, not info
    connections_warning_ratio: float = 0.8
    connections_critical_ratio: float = 0.95
    pool_waiting_clients: float = 5  # a queue this long is saturation even before anyone waited a second
    pool_maxwait_warning_s: float = 1
    pool_maxwait_critical_s: float = 10
    idle_in_transaction_warning_s: float = 60
    idle_in_transaction_critical_s: float = 600
    long_query_warning_s: float = 300
    long_query_critical_s: float = 1800
    lock_wait_warning_s: float = 10
    lock_wait_critical_s: float = 60
    # --- statements -------------------------------------------------------------------------
    statement_min_calls: float = 100  # per interval, for "frequent"
    statement_min_share: float = 0.05  # of total execution time, for "expensive"
    temp_spill_bytes_per_call: float = 1024 * 1024  # temp blocks written per call, in bytes
    low_cache_hit_read_ratio: float = 0.5  # shared_blks_read / (hit + read), at or above
    low_cache_hit_min_blocks: float = 1000  # blocks read from disk in the interval
    n_plus_one_min_calls: float = 500  # calls of one statement text in the interval
    n_plus_one_calls_per_xact: float = 10  # calls per committed transaction
    # Read by no rule since n_plus_one is judged on the call pattern (a lookup run once per row of its
    # parent), whatever its rows per call and time; accepted so that configs that set them still load.
    n_plus_one_max_rows_per_call: float = 1.5
    n_plus_one_max_mean_ms: float = 2
    select_star_min_columns: float = 10  # a table at least this wide
    misestimate_factor: float = 10  # actual/estimated rows (or the inverse), at or above
    misestimate_min_rows: float = 1000  # the larger of the two, at or above
    misestimate_max_age_s: float = 3600  # plans read from the log longer ago are not judged
    # --- query patterns (docs/query-patterns.md) -----------------------------------------------
    unbounded_min_rows_per_call: float = 10_000  # rows returned per call, at or above, with no LIMIT
    unbounded_min_calls: float = 50  # calls in the interval, at or above
    offset_min_calls: float = 50  # calls in the interval of a statement with OFFSET, at or above
    offset_min_blocks_per_call: float = 1000  # buffers touched per call, at or above (what the skipped rows cost)
    offset_min_blocks_per_row: float = 20  # buffers touched per row returned, at or above
    offset_min_rows_read_per_call: float = 10_000  # rows its Limit reads per call (index entries, or the table sorted)
    offset_min_rows_read_per_row: float = 100  # rows read per row returned, at or above
    offset_min_ms_per_call: float = 1.0  # mean execution time per call, at or above (the reading costs)
    statement_timeout_window_s: float = 900  # cancellations seen in the server log over this long
    statement_timeout_min_cancels: float = 1  # cancellations of one statement in the window, at or above
    statement_timeout_critical: float = 10  # cancellations in the window, for critical
    partition_scan_share: float = 0.8  # of a partitioned table's partitions in the plan, at or above
    correlated_min_outer_rows: float = 1000  # estimated rows the SubPlan runs for, at or above
    deadlocks_window_s: float = 900  # deadlocks counted over this long (at least the latest interval)
    deadlocks_critical: float = 10  # deadlocks in the window, for critical
    # --- database load (wait_bottleneck, docs/waits.md) ------------------------------------------
    load_window_s: float = 300  # the sampled load judged: the last this many seconds
    load_min_window_s: float = 20  # sampled seconds in the window, at least, before judging
    load_recent_s: float = 30  # the bottleneck must still hold over the last this many seconds
    load_min_aas: float = 1  # the database's average active sessions over the window, at or above
    load_wait_share: float = 0.3  # of the database's load, one wait event (or class) at or above
    # --- vacuum and the cost of writes (docs/kinds.md) -----------------------------------------
    xmin_horizon_warning_s: float = 3600  # a holder has kept the xmin horizon this long
    xmin_horizon_critical_s: float = 6 * 3600
    xmin_horizon_critical_xids: float = 100_000_000  # or its xmin is this many transactions old
    bloat_min_bytes: float = 100 * 1024 * 1024  # wasted space in a table or index, at or above
    bloat_ratio: float = 0.3  # and this share of its size
    bloat_measure_max_bytes: float = 10 * 1024**3  # pgstattuple measures tables up to this size
    bloat_measure_budget_s: float = 5  # pgstattuple's time per poll and target; the rest keep the estimate
    autovacuum_lag_s: float = 3600  # dead rows above the table's autovacuum trigger this long
    hot_min_updates: float = 10_000  # updates of a table in the window, at or above
    hot_min_share: float = 0.5  # HOT updates / updates below this
    mxid_age_warning: float = 500_000_000  # mxid_age(datminmxid): multixacts wrap at about 2 billion too
    mxid_age_critical: float = 1_200_000_000


DEFAULT = Thresholds()
NAMES = tuple(f.name for f in fields(Thresholds))


def with_overrides(base: Thresholds, values: dict[str, Any]) -> Thresholds:
    """``base`` with the given fields replaced; values the config check refused are left out."""
    numbers = {
        k: float(v) for k, v in values.items() if k in NAMES and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return replace(base, **numbers)
