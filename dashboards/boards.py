"""The pgradar dashboards, one function each.

Every expression uses only metrics of ``exporters/catalogue.py`` (a test
derives the names from the generated JSON and checks them there), and every
panel's query is run against a real Prometheus that scraped a live agent in
the end-to-end test.

Panels that select ``pgradar_problem`` (singular) list the objects of active
problems: they are empty while nothing is wrong. The counts come from
``pgradar_problems``, which exports zeros too.
"""

from __future__ import annotations

from grafanalib import core as g

from pgradar.agent.model.findings import Area, Kind, Severity

from .kit import (
    RANGE,
    RI,
    TD,
    Cell,
    Q,
    T,
    dashboard,
    database_var,
    kinds_of,
    link,
    metric,
    query_var,
    stat,
    table,
    timeseries,
)
from .load import load
from .vacuum import vacuum

TABLE_KINDS = kinds_of(Area.TABLE)
REPLICATION_KINDS = kinds_of(Area.REPLICATION)
SESSION_KINDS = kinds_of(Area.SESSION)
PROBLEMS_HELP = (
    "Each row is one active problem, its object in the label columns. Its summary, evidence and "
    "the SQL or setting that fixes it are in the agent's /problems JSON (the link on each row "
    "opens it) and in `pgradar check`."
)


# Problem tables keep the instance column: it is the agent's address, and the row link opens its /problems.
PROBLEM_TABLE_HIDE = ("Time", "__name__", "job")


def _problems_link() -> dict[str, str | bool]:
    return {
        "title": "Open /problems on this agent (summary and recommendation)",
        "url": "http://${__data.fields.instance}/problems",
        "targetBlank": True,
    }


def _top_statements(title: str, counter: str, unit: str, description: str, by_range: bool = True, w: int = 12) -> Cell:
    if by_range:
        expr = f"topk(10, sum by (target, database, user, queryid) (increase({counter}{{{TD}}}[{RANGE}])))"
    else:
        expr = f"topk(10, max by (target, database, user, queryid) ({counter}{{{TD}}}))"
    return table(
        title,
        expr,
        unit,
        description,
        w=w,
        links=[
            link(
                "pgradar-statements",
                "Follow this statement",
                database="${__data.fields.database}",
                queryid="${__data.fields.queryid}",
            )
        ],
    )


def overview() -> g.Dashboard:
    rows = [
        [
            stat(
                "Targets up",
                f"sum({metric('pgradar_up')}{{{T}}})",
                "none",
                "Targets whose server answered the last poll.",
                w=3,
            ),
            stat(
                "Targets down",
                f"count({metric('pgradar_up')}{{{T}}} == 0) or vector(0)",
                "none",
                "Targets the agent cannot reach (alert PgradarTargetDown).",
                red_above=1,
                w=3,
            ),
            stat(
                "Active problems",
                f"sum({metric('pgradar_problems')}{{{T}}})",
                "none",
                "Every active problem, any severity.",
                w=3,
            ),
            stat(
                "Critical problems",
                f'sum({metric("pgradar_problems")}{{{T}, severity="{Severity.CRITICAL}"}})',
                "none",
                "Active problems of severity critical.",
                red_above=1,
                w=3,
            ),
            stat(
                "Replication problems",
                f'sum({metric("pgradar_problems")}{{{T}, kind=~"{REPLICATION_KINDS}"}})',
                "none",
                "Standbys behind and inactive slots retaining WAL (see the Replication dashboard).",
                red_above=1,
                w=3,
            ),
            stat(
                "Worst replication lag",
                f'max({metric("pgradar_replication_lag_seconds")}{{{T}, stage="replay"}})',
                "s",
                "Replay lag of the standby furthest behind, as its sender reports it. It keeps its last value "
                "while the primary is idle: read it with the bytes next to it.",
                w=3,
            ),
            stat(
                "Worst replication lag, bytes",
                f'max({metric("pgradar_replication_lag_bytes")}{{{T}, stage="replay"}})',
                "bytes",
                "WAL the standby furthest behind has not replayed yet (alert PostgresReplicationLag).",
                w=3,
            ),
            stat(
                "Longest running query",
                f"max({metric('pgradar_longest_query_seconds')}{{{TD}}})",
                "s",
                "Run time of the longest active statement.",
                w=3,
            ),
        ],
        [
            timeseries(
                "Transactions per second",
                [
                    Q(
                        f"sum by (target, database) (rate({metric('pgradar_database_transactions_committed_total')}{{{TD}}}[{RI}]))",
                        "{{target}} {{database}} commit",
                    ),
                    Q(
                        f"sum by (target, database) (rate({metric('pgradar_database_transactions_rolled_back_total')}{{{TD}}}[{RI}]))",
                        "{{target}} {{database}} rollback",
                    ),
                ],
                "ops",
                "Commits and rollbacks per second.",
            ),
            timeseries(
                "Statement execution time per second",
                [
                    Q(
                        f"sum by (target, database) (rate({metric('pgradar_statements_exec_seconds_total')}{{{TD}}}[{RI}]))",
                        "{{target}} {{database}}",
                    )
                ],
                "s",
                "Seconds of execution per second over every statement (pg_stat_statements): the load the "
                "statements put on the server.",
            ),
        ],
        [
            timeseries(
                "Connections against the limit",
                [
                    Q(f"sum by (target) ({metric('pgradar_sessions')}{{{T}}})", "{{target}} sessions"),
                    Q(f"{metric('pgradar_connections_max')}{{{T}}}", "{{target}} limit"),
                ],
                "short",
                "Client sessions against max_connections minus reserved slots (alert PostgresConnectionsNearLimit).",
            ),
            timeseries(
                "Active problems by severity",
                [Q(f"sum by (severity) ({metric('pgradar_problems')}{{{T}}})", "{{severity}}")],
                "short",
                "Active problems over time; the Active problems dashboard lists them with their objects.",
            ),
        ],
        [
            table(
                "Active problems by kind",
                f"sort_desc(sum by (kind) ({metric('pgradar_problems')}{{{T}}}))",
                "short",
                "Count of active problems per kind (zero when none).",
                w=8,
                h=10,
                value_name="problems",
            ),
            _top_statements(
                "Top statements by total execution time",
                metric("pgradar_statement_exec_seconds_total"),
                "s",
                "The ten statements that spent the most execution time in the selected range.",
                w=16,
            ),
        ],
    ]
    return dashboard(
        "pgradar-overview",
        "pgradar / Overview",
        "Targets, active problems, throughput, connections and the costliest statements.",
        rows,
        [database_var()],
    )


def statements() -> g.Dashboard:
    one = 'target=~"$target", database=~"$database", queryid=~"$queryid"'
    rows = [
        [
            _top_statements(
                "Top by total execution time",
                metric("pgradar_statement_exec_seconds_total"),
                "s",
                "Execution time spent in the selected range.",
            ),
            _top_statements(
                "Top by mean execution time",
                metric("pgradar_statement_mean_exec_seconds"),
                "s",
                "Mean execution time over each statement's latest interval.",
                by_range=False,
            ),
        ],
        [
            _top_statements(
                "Top by calls", metric("pgradar_statement_calls_total"), "short", "Calls in the selected range."
            ),
            _top_statements(
                "Top by rows",
                metric("pgradar_statement_rows_total"),
                "short",
                "Rows returned or affected in the selected range.",
            ),
        ],
        [
            _top_statements(
                "Top by blocks read from disk (I/O)",
                metric("pgradar_statement_shared_blocks_read_total"),
                "short",
                "Shared blocks read from outside shared buffers, in the selected range.",
            ),
            _top_statements(
                "Top by temporary blocks written",
                metric("pgradar_statement_temp_blocks_written_total"),
                "short",
                "Temporary blocks written (sorts and hashes beyond work_mem), in the selected range.",
            ),
        ],
        [
            timeseries(
                "Selected statement: execution time per second",
                [
                    Q(
                        f"sum by (target, database, queryid) (rate({metric('pgradar_statement_exec_seconds_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} exec",
                    ),
                    Q(
                        f"sum by (target, database, queryid) (rate({metric('pgradar_statement_plan_seconds_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} plan",
                    ),
                    Q(
                        f"sum by (target, database, queryid) (rate({metric('pgradar_statement_io_read_seconds_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} I/O read",
                    ),
                ],
                "s",
                "Execution, planning and block read time per second of the statement chosen in $queryid.",
            ),
            timeseries(
                "Selected statement: mean execution time",
                [
                    Q(
                        f"max by (target, database, queryid) ({metric('pgradar_statement_mean_exec_seconds')}{{{one}}})",
                        "{{queryid}}",
                    )
                ],
                "s",
                "Mean execution time over each interval.",
            ),
        ],
        [
            timeseries(
                "Selected statement: calls and rows per second",
                [
                    Q(
                        f"sum by (target, database, queryid) (rate({metric('pgradar_statement_calls_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} calls",
                    ),
                    Q(
                        f"sum by (target, database, queryid) (rate({metric('pgradar_statement_rows_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} rows",
                    ),
                ],
                "ops",
                "Calls and rows per second.",
            ),
            timeseries(
                "Selected statement: blocks per second",
                [
                    Q(
                        f"sum by (target, database, queryid) "
                        f"(rate({metric('pgradar_statement_shared_blocks_hit_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} hit",
                    ),
                    Q(
                        f"sum by (target, database, queryid) "
                        f"(rate({metric('pgradar_statement_shared_blocks_read_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} read",
                    ),
                    Q(
                        f"sum by (target, database, queryid) "
                        f"(rate({metric('pgradar_statement_temp_blocks_written_total')}{{{one}}}[{RI}]))",
                        "{{queryid}} temp written",
                    ),
                ],
                "ops",
                "Shared blocks found in cache, read from disk, and temporary blocks written, per second.",
            ),
        ],
        [
            timeseries(
                "pg_stat_statements entries",
                [Q(f"{metric('pgradar_statements_tracked')}{{{T}}}", "{{target}} entries")],
                "short",
                "Entries in pg_stat_statements; near pg_stat_statements.max, statements get evicted.",
                w=8,
            ),
            timeseries(
                "Evictions per second",
                [Q(f"rate({metric('pgradar_statements_deallocations_total')}{{{T}}}[{RI}])", "{{target}}")],
                "ops",
                "Entries pg_stat_statements evicted for lack of room (14+): raise pg_stat_statements.max if not 0.",
                w=8,
            ),
            timeseries(
                "Calls per second, every statement",
                [
                    Q(
                        f"sum by (target, database) (rate({metric('pgradar_statements_calls_total')}{{{TD}}}[{RI}]))",
                        "{{target}} {{database}}",
                    )
                ],
                "ops",
                "Calls of every statement, top N or not.",
                w=8,
            ),
        ],
    ]
    queryid = query_var(
        "queryid",
        "Statement (queryid)",
        f'label_values({metric("pgradar_statement_calls_total")}{{target=~"$target", database=~"$database"}}, queryid)',
        include_all=False,
        multi=False,
    )
    return dashboard(
        "pgradar-statements",
        "pgradar / Statements",
        "The costliest statements (pg_stat_statements, top N per interval) and one statement followed "
        "over time ($queryid). Statement texts are not labels: `pgradar explain --queryid` shows one.",
        rows,
        [database_var(), queryid],
    )


def _index_problems(kind: Kind, title: str, description: str) -> Cell:
    on = "target, database, schema, relation, index"
    expr = f'{metric("pgradar_index_size_bytes")}{{{TD}}} * on ({on}) group_left (severity) {metric("pgradar_problem")}{{{TD}, kind="{kind}"}}'
    return table(
        title,
        expr,
        "bytes",
        description + " " + PROBLEMS_HELP,
        links=[_problems_link()],
        value_name="size",
        hide=PROBLEM_TABLE_HIDE,
    )


def tables() -> g.Dashboard:
    rel = "target, database, schema, relation"
    rows = [
        [
            table(
                "Table and index problems",
                f'sort_desc(sum by (kind, severity) ({metric("pgradar_problems")}{{{T}, kind=~"{TABLE_KINDS}"}}))',
                "short",
                "Active problems on tables and indexes, by kind and severity.",
                w=8,
                value_name="problems",
            ),
            table(
                "Invalid indexes",
                f"{metric('pgradar_index_valid')}{{{TD}}} == 0",
                "none",
                "Indexes left invalid by a failed CREATE INDEX CONCURRENTLY: they cost writes and serve no "
                "reads. Drop and recreate them.",
                w=16,
                value_name="valid",
            ),
        ],
        [
            _index_problems(
                Kind.UNUSED_INDEX,
                "Unused indexes, with their size",
                "Indexes (almost) never scanned since statistics were reset, not backing a constraint.",
            ),
            _index_problems(
                Kind.DUPLICATE_INDEX,
                "Duplicate indexes, with their size",
                "Indexes with the same definition as another, or a left prefix of one.",
            ),
        ],
        [
            timeseries(
                "Sequential scans per second, by table (top 10)",
                [
                    Q(
                        f"topk(10, sum by ({rel}) (rate({metric('pgradar_table_seq_scans_total')}{{{TD}}}[{RI}])))",
                        "{{database}}.{{schema}}.{{relation}}",
                    )
                ],
                "ops",
                "Sequential scans started per second.",
            ),
            timeseries(
                "Rows read by sequential scans per second (top 10)",
                [
                    Q(
                        f"topk(10, sum by ({rel}) (rate({metric('pgradar_table_seq_rows_read_total')}{{{TD}}}[{RI}])))",
                        "{{database}}.{{schema}}.{{relation}}",
                    )
                ],
                "ops",
                "Rows sequential scans read per second: a large table read often is a missing index.",
            ),
        ],
        [
            timeseries(
                "Dead rows (top 10)",
                [Q(f"topk(10, {metric('pgradar_table_dead_rows')}{{{TD}}})", "{{database}}.{{schema}}.{{relation}}")],
                "short",
                "Estimated dead rows waiting for vacuum.",
            ),
            table(
                "Dead rows share (top 10)",
                f"topk(10, {metric('pgradar_table_dead_rows')}{{{TD}}} / "
                f"({metric('pgradar_table_live_rows')}{{{TD}}} + {metric('pgradar_table_dead_rows')}{{{TD}}} > 0))",
                "percentunit",
                "Dead rows as a share of all rows: above 20% on a large table, vacuum is not keeping up.",
                value_name="dead share",
            ),
        ],
        [
            table(
                "Statistics age (top 10)",
                f"topk(10, time() - {metric('pgradar_table_last_analyze_timestamp_seconds')}{{{TD}}})",
                "s",
                "Time since the last analyze, manual or automatic. Tables never analyzed do not appear here; "
                "the stale_stats problem names them.",
                value_name="since analyze",
            ),
            table(
                "Rows modified since analyze (top 10)",
                f"topk(10, {metric('pgradar_table_modified_since_analyze_rows')}{{{TD}}})",
                "short",
                "Rows changed since the last analyze: the planner does not know about them yet.",
                value_name="modified rows",
            ),
        ],
        [
            table(
                "Time since last vacuum (top 10)",
                f"topk(10, time() - {metric('pgradar_table_last_vacuum_timestamp_seconds')}{{{TD}}})",
                "s",
                "Time since the last vacuum, manual or automatic.",
                value_name="since vacuum",
            ),
            table(
                "Largest tables (top 10)",
                f"topk(10, {metric('pgradar_table_size_bytes')}{{{TD}}})",
                "bytes",
                "Table size with TOAST, without indexes.",
                value_name="size",
            ),
        ],
        [
            timeseries(
                "Index scans per second (top 10)",
                [
                    Q(
                        f"topk(10, sum by ({rel}, index) (rate({metric('pgradar_index_scans_total')}{{{TD}}}[{RI}])))",
                        "{{relation}}.{{index}}",
                    )
                ],
                "ops",
                "Index scans per second.",
            ),
            table(
                "Table XID age (top 10)",
                f"topk(10, {metric('pgradar_table_xid_age')}{{{TD}}})",
                "short",
                "Age of relfrozenxid in transactions; vacuum freezes it. Wraparound protection starts at 2 billion.",
                value_name="xid age",
            ),
        ],
    ]
    return dashboard(
        "pgradar-tables",
        "pgradar / Tables and indexes",
        "Unused, duplicate and invalid indexes, sequential scans, dead rows and statistics age.",
        rows,
        [database_var()],
    )


def replication() -> g.Dashboard:
    rows = [
        [
            stat(
                "Standbys",
                f"sum({metric('pgradar_server_in_recovery')}{{{T}}})",
                "none",
                "Targets that are standbys (in recovery).",
                w=6,
            ),
            stat(
                "Standbys behind",
                f'sum({metric("pgradar_problems")}{{{T}, kind="{Kind.REPLICATION_LAG}"}})',
                "none",
                "Active replication_lag problems (alert PostgresReplicationLag).",
                red_above=1,
                w=6,
            ),
            stat(
                "Inactive slots retaining WAL",
                f'sum({metric("pgradar_problems")}{{{T}, kind="{Kind.REPLICATION_SLOT_INACTIVE}"}})',
                "none",
                "Active replication_slot_inactive problems (alert PostgresReplicationSlotInactive).",
                red_above=1,
                w=6,
            ),
            stat(
                "Replication problems, critical",
                f'sum({metric("pgradar_problems")}{{{T}, kind=~"{REPLICATION_KINDS}", severity="{Severity.CRITICAL}"}})',
                "none",
                "Replication problems of severity critical.",
                red_above=1,
                w=6,
            ),
        ],
        [
            table(
                "Servers and roles",
                f"{metric('pgradar_server_info')}{{{T}}}",
                "none",
                "Version and role of every target.",
                hide=("Time", "__name__", "job", "Value"),
            ),
            timeseries(
                "Role over time",
                [Q(f"{metric('pgradar_server_in_recovery')}{{{T}}}", "{{target}}")],
                "none",
                "1 while a target is in recovery (a standby); a change is a failover or a promotion.",
            ),
        ],
        [
            table(
                "Standbys behind",
                f'{metric("pgradar_problem")}{{{T}, kind="{Kind.REPLICATION_LAG}"}}',
                "none",
                "Standbys behind in bytes or seconds. " + PROBLEMS_HELP,
                links=[_problems_link()],
                hide=(*PROBLEM_TABLE_HIDE, "Value"),
            ),
            table(
                "Inactive replication slots",
                f'{metric("pgradar_problem")}{{{T}, kind="{Kind.REPLICATION_SLOT_INACTIVE}"}}',
                "none",
                "Slots no consumer uses: they keep WAL on the primary until the disk fills. " + PROBLEMS_HELP,
                links=[_problems_link()],
                hide=(*PROBLEM_TABLE_HIDE, "Value"),
            ),
        ],
        [
            timeseries(
                "Replication lag in seconds, by standby and stage",
                [Q(f"{metric('pgradar_replication_lag_seconds')}{{{T}}}", "{{target}} → {{standby}} {{stage}}")],
                "s",
                "Write, flush and replay lag as each sender reports it (pg_stat_replication). The values keep their "
                "last reading while the primary is idle: lag in bytes tells whether anything is waiting.",
            ),
            timeseries(
                "Replication lag in bytes, by standby and stage",
                [Q(f"{metric('pgradar_replication_lag_bytes')}{{{T}}}", "{{target}} → {{standby}} {{stage}}")],
                "bytes",
                "WAL each standby has not yet been sent, written, flushed or replayed, from its sender's position "
                "(alert PostgresReplicationLag on the replay stage).",
            ),
        ],
        [
            table(
                "Replication slots: retained WAL",
                f"{metric('pgradar_replication_slot_retained_bytes')}{{{T}}} * on (target, slot) group_left (slot_type, "
                f"database, wal_status) {metric('pgradar_replication_slot_info')}{{{T}}}",
                "bytes",
                "WAL each slot holds back from removal, with its type and wal_status ('lost': the consumer can "
                "no longer catch up). An inactive slot keeps WAL until the disk fills "
                "(alert PostgresReplicationSlotInactive).",
                value_name="retained WAL",
            ),
            timeseries(
                "Replication slots active",
                [Q(f"{metric('pgradar_replication_slot_active')}{{{T}}}", "{{target}} {{slot}}")],
                "none",
                "1 while a consumer (a standby, pg_receivewal, a logical subscriber) uses the slot; 0 is a slot "
                "nobody reads, retaining WAL.",
            ),
        ],
        [
            timeseries(
                "Retained WAL by slot",
                [Q(f"{metric('pgradar_replication_slot_retained_bytes')}{{{T}}}", "{{target}} {{slot}}")],
                "bytes",
                "WAL each slot holds back over time: a steady climb on an inactive slot ends with a full disk.",
            ),
            timeseries(
                "Standbys: replay paused, receiver streaming",
                [
                    Q(f"{metric('pgradar_standby_replay_paused')}{{{T}}}", "{{target}} replay paused"),
                    Q(f"{metric('pgradar_standby_receiver_streaming')}{{{T}}}", "{{target}} receiver streaming"),
                ],
                "none",
                "On each watched standby: 1 while replay is paused (pg_wal_replay_pause; resume with "
                "pg_wal_replay_resume()), and 1 while its WAL receiver streams from the primary.",
            ),
        ],
        [
            timeseries(
                "Standbys: WAL received, not replayed",
                [Q(f"{metric('pgradar_standby_replay_behind_bytes')}{{{T}}}", "{{target}}")],
                "bytes",
                "On each watched standby, WAL it has received and not yet replayed.",
            ),
            timeseries(
                "Standbys: replay lag by their own clock",
                [Q(f"{metric('pgradar_standby_replay_lag_seconds')}{{{T}}}", "{{target}}")],
                "s",
                "Time since the last replayed commit while WAL waits for replay; 0 when caught up, so an idle "
                "primary is no lag.",
            ),
        ],
        [
            timeseries(
                "Replication problems by severity",
                [
                    Q(
                        f'sum by (kind, severity) ({metric("pgradar_problems")}{{{T}, kind=~"{REPLICATION_KINDS}"}})',
                        "{{kind}} {{severity}}",
                    )
                ],
                "short",
                "Active replication problems over time.",
                w=12,
            ),
            timeseries(
                "Server uptime",
                [Q(f"time() - {metric('pgradar_server_start_time_seconds')}{{{T}}}", "{{target}}")],
                "s",
                "Time since the postmaster started: a restart resets it.",
                w=12,
            ),
        ],
    ]
    return dashboard(
        "pgradar-replication",
        "pgradar / Replication",
        "Standbys and slots: which standby is behind, which slot retains WAL.",
        rows,
    )


def _connections_by(label: str, description: str) -> Cell:
    """Client connections (pgradar_connections) summed by one label, against the connection limit."""
    return timeseries(
        f"Connections by {label} against the limit",
        [
            Q(f"sum by (target, {label}) ({metric('pgradar_connections')}{{{TD}}})", f"{{{{target}}}} {{{{{label}}}}}"),
            Q(f"{metric('pgradar_connections_max')}{{{T}}}", "{{target}} limit"),
        ],
        "short",
        description,
        w=8,
    )


def connections() -> g.Dashboard:
    rows = [
        [
            timeseries(
                "Sessions by state against the limit",
                [
                    Q(f"sum by (target, state) ({metric('pgradar_sessions')}{{{TD}}})", "{{target}} {{state}}"),
                    Q(f"{metric('pgradar_connections_max')}{{{T}}}", "{{target}} limit"),
                ],
                "short",
                "Client sessions by state; the limit is max_connections minus the reserved slots.",
                w=16,
            ),
            stat(
                "Connections used",
                f"max(sum by (target) ({metric('pgradar_sessions')}{{{T}}}) / on (target) {metric('pgradar_connections_max')}{{{T}}})",
                "percentunit",
                "Highest share of the connection limit in use over the selected targets "
                "(alert PostgresConnectionsNearLimit at 80% and 95%).",
                w=8,
                h=8,
                red_above=0.8,
            ),
        ],
        [
            timeseries(
                "Sessions by database",
                [Q(f"sum by (target, database) ({metric('pgradar_sessions')}{{{TD}}})", "{{target}} {{database}}")],
                "short",
                "Client sessions per database.",
            ),
            timeseries(
                "Sessions by wait event type",
                [
                    Q(
                        f"sum by (target, wait_event_type) ({metric('pgradar_sessions')}{{{TD}}})",
                        "{{target}} {{wait_event_type}}",
                    )
                ],
                "short",
                "What sessions wait on: Lock is contention, Client is the application, IO is the disk.",
            ),
        ],
        [
            timeseries(
                "Longest running query",
                [Q(f"{metric('pgradar_longest_query_seconds')}{{{TD}}}", "{{target}} {{database}}")],
                "s",
                "Run time of the longest active statement (alert PostgresLongRunningQuery).",
                w=8,
            ),
            timeseries(
                "Longest idle in transaction",
                [Q(f"{metric('pgradar_longest_idle_in_transaction_seconds')}{{{TD}}}", "{{target}} {{database}}")],
                "s",
                "Longest time a session sat idle inside an open transaction, holding its locks and snapshot "
                "(alert PostgresIdleInTransaction).",
                w=8,
            ),
            timeseries(
                "Oldest open transaction",
                [Q(f"{metric('pgradar_oldest_transaction_seconds')}{{{TD}}}", "{{target}} {{database}}")],
                "s",
                "Age of the oldest open transaction: it holds back vacuum everywhere.",
                w=8,
            ),
        ],
        [
            timeseries(
                "Backends per database",
                [Q(f"{metric('pgradar_database_backends')}{{{TD}}}", "{{target}} {{database}}")],
                "short",
                "Backends connected to each database (pg_stat_database).",
            ),
            table(
                "Pool and session problems",
                f'sort_desc(sum by (kind, severity) ({metric("pgradar_problems")}{{{T}, kind=~"{SESSION_KINDS}"}}))',
                "short",
                "Active problems of pools and sessions by kind and severity.",
                value_name="problems",
            ),
        ],
        [
            timeseries(
                "Deadlocks per database",
                [
                    Q(
                        f"sum by (target, database) (increase({metric('pgradar_database_deadlocks_total')}{{{TD}}}[15m]))",
                        "{{target}} {{database}}",
                    )
                ],
                "short",
                "Transactions aborted to break a deadlock in the 15 minutes before each point (alert "
                "PostgresDeadlocks); the deadlocks problem names the statements and relations when the agent reads "
                "the server log.",
                w=24,
            )
        ],
        [
            _connections_by(
                "state",
                "Client connections by state, the agent's own included, against max_connections minus reserved slots.",
            ),
            _connections_by(
                "user",
                "Who holds the connections, by role; the biggest groups are kept as they are and "
                "the rest summed under '(other)'.",
            ),
            _connections_by("application", "Connections by application_name: which service's pool fills the server."),
        ],
        [
            timeseries(
                "pgbouncer clients per pool, active and waiting",
                [
                    Q(
                        f"sum by (target, pool, state) ({metric('pgradar_pgbouncer_clients')}{{{T}}})",
                        "{{target}} {{pool}} {{state}}",
                    )
                ],
                "short",
                "Clients linked to a server connection (active) and clients queued for one (waiting): a "
                "waiting queue that does not drain is saturation (alert PgbouncerPoolSaturation).",
                w=8,
            ),
            timeseries(
                "pgbouncer longest wait per pool",
                [Q(f"{metric('pgradar_pgbouncer_maxwait_seconds')}{{{T}}}", "{{target}} {{pool}}")],
                "s",
                "How long the oldest waiting client of each pool has waited for a server connection.",
                w=8,
            ),
            timeseries(
                "pgbouncer server connections against pool_size",
                [
                    Q(
                        f"sum by (target, pool, database) ({metric('pgradar_pgbouncer_servers')}{{{T}}})",
                        "{{target}} {{pool}} servers",
                    ),
                    Q(f"{metric('pgradar_pgbouncer_pool_size')}{{{T}}}", "{{target}} {{database}} pool_size"),
                ],
                "short",
                "Server connections of each pool (any state) against the pool_size of its database entry: at "
                "pool_size, new clients wait.",
                w=8,
            ),
        ],
        [
            table(
                "Saturated pools",
                f'{metric("pgradar_problem")}{{{T}, kind="{Kind.POOL_SATURATION}"}}',
                "none",
                "pgbouncer pools where clients wait for a server connection (pool label), or a server near its "
                "connection limit (no pool label). " + PROBLEMS_HELP,
                w=24,
                links=[_problems_link()],
                hide=(*PROBLEM_TABLE_HIDE, "Value"),
            )
        ],
    ]
    return dashboard(
        "pgradar-connections",
        "pgradar / Connections and pools",
        "Sessions by state against the limit, long queries and idle transactions, pool saturation.",
        rows,
        [database_var()],
    )


def problems() -> g.Dashboard:
    rows = [
        [
            stat(
                "Critical",
                f'sum({metric("pgradar_problems")}{{{T}, severity="{Severity.CRITICAL}"}})',
                "none",
                "Active critical problems (alert PgradarCriticalProblem).",
                w=8,
                red_above=1,
            ),
            stat(
                "Warning",
                f'sum({metric("pgradar_problems")}{{{T}, severity="{Severity.WARNING}"}})',
                "none",
                "Active warnings.",
                w=8,
            ),
            stat(
                "Info",
                f'sum({metric("pgradar_problems")}{{{T}, severity="{Severity.INFO}"}})',
                "none",
                "Active problems of severity info: often a window too short to be sure.",
                w=8,
            ),
        ],
        [
            table(
                "Active problems",
                f"{metric('pgradar_problem')}{{{T}}}",
                "none",
                PROBLEMS_HELP,
                w=24,
                h=12,
                hide=(*PROBLEM_TABLE_HIDE, "Value"),
                links=[_problems_link()],
            )
        ],
        [
            table(
                "Active problems by kind",
                f"sort_desc(sum by (kind, severity) ({metric('pgradar_problems')}{{{T}}}))",
                "short",
                "Counts by kind and severity, zeros included.",
                h=10,
                value_name="problems",
            ),
            timeseries(
                "Active problems by severity over time",
                [Q(f"sum by (target, severity) ({metric('pgradar_problems')}{{{T}}})", "{{target}} {{severity}}")],
                "short",
                "How many problems were active when.",
                h=10,
            ),
        ],
    ]
    return dashboard(
        "pgradar-problems",
        "pgradar / Active problems",
        "Every active problem with its object. Summary, evidence and the fix: the agent's /problems "
        "JSON and `pgradar check`.",
        rows,
    )


def agent() -> g.Dashboard:
    tc = "{{target}} {{collector}}"
    rows = [
        [
            table(
                "Targets",
                f"{metric('pgradar_up')}{{{T}}}",
                "none",
                "1: the server answered the last poll (alert PgradarTargetDown).",
                w=8,
                value_name="up",
            ),
            table(
                "Collectors enabled",
                f"{metric('pgradar_collector_enabled')}{{{T}}}",
                "none",
                "0: a missing extension or privilege keeps the collector off; the agent's log names the fix "
                "(alert PgradarCollectorDisabled).",
                w=16,
                value_name="enabled",
            ),
        ],
        [
            timeseries(
                "Collector duration",
                [Q(f"{metric('pgradar_collector_duration_seconds')}{{{T}}}", tc)],
                "s",
                "Duration of each collector's last run.",
            ),
            timeseries(
                "Time since last success",
                [Q(f"time() - {metric('pgradar_collector_last_success_timestamp_seconds')}{{{T}}}", tc)],
                "s",
                "Time since each collector last succeeded: it grows while a collector fails "
                "(alert PgradarCollectorFailing).",
            ),
        ],
        [
            timeseries(
                "Collector errors per second",
                [Q(f"rate({metric('pgradar_collector_errors_total')}{{{T}}}[{RI}])", tc)],
                "ops",
                "Failed collector runs.",
            ),
            timeseries(
                "Collector runs per second",
                [Q(f"rate({metric('pgradar_collector_runs_total')}{{{T}}}[{RI}])", tc)],
                "ops",
                "Collector runs, failed or not.",
            ),
        ],
        [
            timeseries(
                "Statement texts fetched per second",
                [Q(f"rate({metric('pgradar_statement_texts_fetched_total')}{{{T}}}[{RI}])", "{{target}}")],
                "ops",
                "Texts cross the wire only for statements not seen before: a steady rate means churn.",
            ),
            timeseries("Up", [Q(f"{metric('pgradar_up')}{{{T}}}", "{{target}}")], "none", "Reachability over time."),
        ],
    ]
    return dashboard(
        "pgradar-agent",
        "pgradar / Agent",
        "The agent itself: reachability, collector durations, errors and last success.",
        rows,
    )


DASHBOARDS = (overview, statements, tables, replication, connections, problems, agent, load, vacuum)
