"""The Database load dashboard: average active sessions by wait class, by database and by event, and the
top statements by load with their waits (sampled every second by the load collector)."""

from __future__ import annotations

from grafanalib import core as g

from .kit import RANGE, RI, TD, Q, T, dashboard, database_var, link, metric, stat, table, timeseries


def load() -> g.Dashboard:
    db_load = metric("pgradar_db_load_seconds_total")
    stmt_load = metric("pgradar_statement_load_seconds_total")
    rows = [
        [
            timeseries(
                "Database load by wait class (average active sessions)",
                [Q(f"sum by (wait_event_type) (rate({db_load}{{{TD}}}[{RI}]))", "{{wait_event_type}}")],
                "short",
                "Active sessions sampled every second, by what they wait on (CPU: active with no wait event). "
                "Above the server's cores, sessions queue for CPU (alert PgradarLoadAboveCores when cpus: is set).",
                w=16,
                stack=True,
            ),
            stat(
                "Load now (AAS)",
                f"sum(rate({db_load}{{{TD}}}[{RI}]))",
                "short",
                "Average active sessions over the last minutes: 1 is one session busy all the time.",
                w=4,
                h=8,
            ),
            stat(
                "Samples missed",
                f"1 - sum(rate({metric('pgradar_load_sampled_seconds_total')}{{{T}}}[{RI}]))"
                f" / count(rate({metric('pgradar_load_sampled_seconds_total')}{{{T}}}[{RI}]))",
                "percentunit",
                "Share of the time no sample stood for (a sample failed, came late or was skipped): load is "
                "undercounted then, never invented.",
                w=4,
                h=8,
                red_above=0.1,
            ),
        ],
        [
            timeseries(
                "Load by database",
                [Q(f"sum by (target, database) (rate({db_load}{{{TD}}}[{RI}]))", "{{target}} {{database}}")],
                "short",
                "Average active sessions per database.",
                stack=True,
            ),
            timeseries(
                "Load by wait event (top 10)",
                [
                    Q(
                        f"topk(10, sum by (wait_event_type, wait_event) (rate({db_load}{{{TD}}}[{RI}])))",
                        "{{wait_event_type}}/{{wait_event}}",
                    )
                ],
                "short",
                "The events behind the classes: docs/waits.md says what each means and what fixes it.",
                stack=True,
            ),
        ],
        [
            table(
                "Top statements by load, with their waits",
                f"topk(20, sum by (target, database, queryid, wait_event_type) (rate({stmt_load}{{{TD}}}[{RANGE}])))",
                "short",
                "Average active sessions of each top statement in the selected range, one row per wait class "
                '(its wait profile); queryid="other" sums the rest. The link follows the statement.',
                w=24,
                links=[
                    link(
                        "pgradar-statements",
                        "Follow this statement",
                        database="${__data.fields.database}",
                        queryid="${__data.fields.queryid}",
                    )
                ],
                value_name="AAS",
            ),
        ],
        [
            timeseries(
                "Top statements by load over time",
                [
                    Q(
                        f'topk(10, sum by (database, queryid) (rate({stmt_load}{{{TD}, queryid!="other"}}[{RI}])))',
                        "{{database}} {{queryid}}",
                    )
                ],
                "short",
                "Average active sessions of the heaviest statements.",
                w=24,
                stack=True,
            ),
        ],
    ]
    return dashboard(
        "pgradar-load",
        "pgradar / Database load",
        "Where the time goes right now: active sessions sampled every second, by wait class, wait event, "
        "database and statement (average active sessions).",
        rows,
        [database_var()],
    )
