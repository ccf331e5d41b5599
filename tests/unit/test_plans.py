"""The plan walk, and seq_scan from plans, on hand-built plans (no server)."""

import json
from dataclasses import replace
from pathlib import Path

from factories import T0, observation, snap, stat

from pgradar.agent.classifiers import plans as pc
from pgradar.agent.model.plans import Candidate, IndexAdvice, PlansSnapshot, StatementPlan, parallel_divisor
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.plans.chooser import candidates, due
from pgradar.agent.plans.walker import walk

PLAN = json.loads((Path(__file__).parent / "fixtures" / "plan_nested.json").read_text())


def test_walk_finds_scans_sorts_loops_and_a_shape() -> None:
    summary = walk(PLAN)
    assert summary.total_cost == 2110.2 and summary.nested_loops == 1
    assert summary.sorts == ("o.created_at DESC",)
    (scan,) = summary.seq_scans
    assert (scan.schema, scan.relation, scan.filter) == ("public", "orders", "(o.customer_id = $1)")
    cheaper = json.loads(json.dumps(PLAN).replace("1990.0", "10.0"))
    assert walk(cheaper).shape_hash == summary.shape_hash  # costs are not the shape
    other = json.loads(json.dumps(PLAN).replace('"Nested Loop"', '"Hash Join"'))
    assert walk(other).shape_hash != summary.shape_hash


def _plan(advice: tuple[IndexAdvice, ...], parsed: bool = True, rows: float = 100_000) -> StatementPlan:
    summary = walk(PLAN)
    summary = replace(summary, seq_scans=tuple(replace(s, reltuples=rows) for s in summary.seq_scans))
    return StatementPlan("app", 5, 42, "u", T0, summary, advice, parsed=parsed)


def _advice(
    verified: bool | None,
    before: float | None = None,
    after: float | None = None,
    rows: float = 100_000,
    partitioned: bool = False,
) -> IndexAdvice:
    return IndexAdvice("public", "orders", ("customer_id",), partitioned, rows, verified, before, after)


def test_seq_scan_with_verified_unverified_and_useless_advice() -> None:
    (found,) = pc.plan_seq_scans("t", _plan((_advice(True, 2110.2, 20.0),)), DEFAULT)
    assert (found.kind, found.severity, found.queryid, found.relation) == ("seq_scan", "warning", "42", "orders")
    assert found.recommendation.startswith(
        "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id);\n-- hypopg: estimated"
    )
    (unverified,) = pc.plan_seq_scans("t", _plan((_advice(None),)), DEFAULT)
    assert "unverified: hypopg is not installed" in unverified.recommendation
    assert list(pc.plan_seq_scans("t", _plan((_advice(True, 2110.2, 1600.0),)), DEFAULT)) == []  # 24% < 30%
    assert list(pc.plan_seq_scans("t", _plan((_advice(None, rows=9_999),)), DEFAULT)) == []  # small table
    (part,) = pc.plan_seq_scans("t", _plan((_advice(None, partitioned=True),)), DEFAULT)
    assert part.recommendation.startswith("CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);")
    assert "CONCURRENTLY is not supported" in part.recommendation


def test_unparsable_statement_gets_plan_only_advice() -> None:
    (found,) = pc.plan_seq_scans("t", _plan((), parsed=False), DEFAULT)
    assert found.severity == "info" and "(o.customer_id = $1)" in found.recommendation
    assert list(pc.plan_seq_scans("t", _plan((), parsed=False, rows=200), DEFAULT)) == []


def test_seq_scan_classifier_needs_a_frequent_or_expensive_statement() -> None:
    plans = PlansSnapshot(T0, (_plan((_advice(None),)),))
    busy = observation(plans=plans, statements=snap(0, stat(42, 100, 10.0), stat(7, 1, 1000.0)))
    assert [f.queryid for f in pc.seq_scan(busy, DEFAULT)] == ["42"]
    rare = observation(plans=plans, statements=snap(0, stat(42, 99, 10.0), stat(7, 1, 1000.0)))
    assert list(pc.seq_scan(rare, DEFAULT)) == []


def test_seq_scan_one_finding_for_the_queryids_of_one_statement() -> None:
    """SQLAlchemy's lazy load bound as int2 and int4: two queryids, two plans, one statement."""
    int2 = _plan((_advice(None),))
    int4 = replace(int2, queryid=43)
    text = "SELECT orders.id FROM orders WHERE $1::INTEGER = orders.customer_id"
    plans = PlansSnapshot(T0, (int2, int4))
    statements = snap(0, stat(42, 60, 10.0), stat(43, 60, 10.0), stat(7, 1, 1000.0))
    texts = {(5, 42): text, (5, 43): text.replace("INTEGER", "BIGINT")}
    (found,) = pc.seq_scan(observation(plans=plans, statements=statements, texts=texts), DEFAULT)
    assert found.queryid == "43" and found.evidence["queryids"] == ["43", "42"] and found.evidence["calls"] == 120
    # Only one of them planned (the top N): still one statement, its calls summed.
    (planned,) = pc.seq_scan(observation(plans=PlansSnapshot(T0, (int2,)), statements=statements, texts=texts), DEFAULT)
    assert planned.queryid == "43" and planned.evidence["calls"] == 120
    apart = {**texts, (5, 43): "SELECT other FROM t WHERE id = $1"}
    # a queryid's text never changes while its snapshot stands (counted_by_text keys on the snapshot): another poll
    polled = snap(0, stat(42, 60, 10.0), stat(43, 60, 10.0), stat(7, 1, 1000.0))
    alone = observation(plans=PlansSnapshot(T0, (int2,)), statements=polled, texts=apart)
    assert list(pc.seq_scan(alone, DEFAULT)) == []  # 60 calls of one statement are not frequent


def test_candidates_costliest_plain_reads_of_user_tables() -> None:
    first = snap(0, stat(1, 10, 100.0), stat(2, 10, 100.0), stat(3, 10, 5.0), stat(5, 1, 1.0))
    second = snap(
        1, stat(1, 20, 110.0), stat(2, 20, 300.0), stat(3, 20, 900.0), stat(4, 5, 5000.0), stat(5, 2, 99_999.0)
    )
    texts = {
        (5, 1): "SELECT a FROM t WHERE b = $1",
        (5, 2): "SELECT * FROM u",
        (5, 4): "SELECT * FROM v",
        (5, 3): "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        (5, 5): "INSERT INTO t SELECT * FROM u",
    }
    # recent cost first (2: +200, 1: +10, 4 is new: all 5000 of it counts as recent);
    # catalog-only reads (the agent's own) and writes other than UPDATE/DELETE are never candidates
    assert [c.queryid for c in candidates([first, second], texts)] == [4, 2, 1]
    updates = {**texts, (5, 5): "UPDATE t SET a = $1 WHERE b = $2"}  # planned without running (DESIGN 4)
    assert [c.queryid for c in candidates([first, second], updates)] == [5, 4, 2, 1]
    third = snap(2, *second.rows)
    assert [c.queryid for c in candidates([second, third], texts)] == [4, 2, 1]  # idle: by total
    assert [c.queryid for c in candidates([first], texts)] == [1, 2]
    # the top N: the write and the catalog read ranked above them do not take places
    assert [c.queryid for c in candidates([first, second], texts, limit=2)] == [4, 2]
    assert candidates([first, second], texts, databases=("other",)) == []


def test_candidates_parse_only_until_the_top_is_full() -> None:
    from pgradar.agent import sqlshape

    rows = [stat(q, 10, 1000.0 - q) for q in range(1, 301)]
    texts = {(5, q): f"SELECT a{q} FROM t{q} WHERE b = $1" for q in range(1, 301)}
    sqlshape.read_kind.cache_clear()
    assert [c.queryid for c in candidates([snap(0, *rows)], texts, limit=3)] == [1, 2, 3]
    assert sqlshape.read_kind.cache_info().currsize == 3


def test_due_replans_after_the_interval() -> None:
    from datetime import timedelta

    c = Candidate("app", 5, 42, "u", "SELECT 1")
    cache = {(5, 42): _plan(())}
    assert due([c], cache, T0 + timedelta(seconds=3599), 3600) == []
    assert due([c], cache, T0 + timedelta(seconds=3600), 3600) == [c]
    assert due([c], {}, T0, 3600) == [c]


def test_stale_stats_from_a_whole_table_estimate() -> None:
    from factories import table

    whole = [
        {
            "Plan": {
                "Node Type": "Seq Scan",
                "Relation Name": "orders",
                "Schema": "public",
                "Total Cost": 900.0,
                "Plan Rows": 130_000,
            }
        }
    ]

    def obs(rows: float, plan_rows: float = 130_000, tables: tuple = ()) -> list:
        summary = walk(json.loads(json.dumps(whole).replace("130000", str(plan_rows))))
        summary = replace(summary, seq_scans=tuple(replace(s, reltuples=rows) for s in summary.seq_scans))
        plans = PlansSnapshot(T0, (StatementPlan("app", 5, 42, "u", T0, summary),))
        return list(pc.plan_estimates(observation(tables=tables, plans=plans), DEFAULT))

    (found,) = obs(100_000)  # 30% more rows than the statistics say
    assert (found.kind, found.relation, found.queryid) == ("stale_stats", "orders", "42")
    assert found.recommendation == "ANALYZE public.orders;"
    assert obs(110_000) == []  # 18%: within the ratio
    assert obs(100_000, plan_rows=70_000) != []  # shrank by 30%
    assert obs(5_000, plan_rows=7_000) == []  # small
    counted = table(rows=100_000, n_mod_since_analyze=30_000, n_tup_ins=100_000, n_tup_upd=30_000)
    assert obs(100_000, tables=(counted,)) == []  # the counter-based rule reports it already


PARALLEL = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Total Cost": 3000.0,
            "Plan Rows": 1,
            "Plans": [
                {
                    "Node Type": "Gather",
                    "Workers Planned": 1,
                    "Total Cost": 2900.0,
                    "Plan Rows": 1,
                    "Plans": [
                        {
                            "Node Type": "Aggregate",
                            "Total Cost": 2800.0,
                            "Plan Rows": 1,
                            "Plans": [
                                {
                                    "Node Type": "Seq Scan",
                                    "Parallel Aware": True,
                                    "Relation Name": "orders",
                                    "Schema": "public",
                                    "Total Cost": 2500.0,
                                    "Plan Rows": 117_647,
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    }
]


def _parallel_obs(
    reltuples: float,
    plan_rows: float = 117_647,
    workers: int = 1,
    standby: bool = False,
    table_rows: float | None = None,
    leader: bool = True,
) -> list:
    from factories import server, settings, table

    doc = json.loads(
        json.dumps(PARALLEL)
        .replace("117647", str(plan_rows))
        .replace('"Workers Planned": 1', f'"Workers Planned": {workers}')
    )
    summary = walk(doc)
    summary = replace(summary, seq_scans=tuple(replace(s, reltuples=reltuples) for s in summary.seq_scans))
    plans = PlansSnapshot(T0, (StatementPlan("app", 5, 42, "u", T0, summary),))
    tables = (table(rows=table_rows if table_rows is not None else reltuples),)
    config = replace(settings(), settings=replace(settings().settings, parallel_leader_participation=leader))
    return list(
        pc.plan_estimates(
            observation(tables=tables, plans=plans, settings=config, server_info=server(standby=standby)),
            DEFAULT,
        )
    )


def test_walk_records_the_workers_of_a_parallel_scan() -> None:
    (scan,) = walk(PARALLEL).seq_scans
    assert (scan.plan_rows, scan.workers) == (117_647, 1)
    (plain,) = walk([{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 5}}]).seq_scans
    assert plain.workers == 0


def test_parallel_seq_scan_of_an_unchanged_table_is_no_stale_stats() -> None:
    """200,000 rows over one worker and the leader (1.7 processes) show as 117,647: nothing changed."""
    assert _parallel_obs(200_000) == []
    assert _parallel_obs(200_000, plan_rows=83_333, workers=2) == []  # 2.4 processes
    assert _parallel_obs(200_000, plan_rows=100_000, workers=2, leader=False) == []  # the workers alone
    assert _parallel_obs(200_000, plan_rows=110_000, workers=2) != []  # 264,000 with the leader
    assert _parallel_obs(200_000, plan_rows=110_000, workers=2, leader=False) == []  # 220,000: 10%
    assert parallel_divisor(0) == 1.0 and parallel_divisor(4) == 4.0 and parallel_divisor(1, False) == 1.0


def test_parallel_seq_scan_of_a_grown_table_is_stale_stats_multiplied_back() -> None:
    (found,) = _parallel_obs(200_000, plan_rows=176_470)  # 300,000 rows over 1.7 processes
    assert found.evidence["plan_rows"] == 299_999 and found.evidence["parallel_workers"] == 1
    assert "planned for 299,999 rows (176,470 per process, 1 worker(s) and the leader)" in found.summary
    assert found.recommendation == "ANALYZE public.orders;"


def test_plan_stale_stats_on_a_standby_says_the_fix_runs_on_the_primary() -> None:
    (found,) = _parallel_obs(200_000, plan_rows=176_470, standby=True)
    assert found.recommendation.splitlines() == [
        "-- on the primary (a standby cannot run ANALYZE; it replays the primary's statistics):",
        "ANALYZE public.orders;",
    ]


def test_plan_made_before_the_last_analyze_is_not_judged() -> None:
    """The cached plan still says 200,000 rows at analyze time; the catalog now says 300,000: analyzed since."""
    assert _parallel_obs(200_000, plan_rows=176_470, table_rows=300_000) == []


def test_counters_summed_over_users_and_share_in_evidence() -> None:
    """One row per user: the agent's few EXPLAIN calls (13 has no toplevel) must not hide the application's."""
    app = stat(42, 500, 900.0)
    agent = stat(42, 3, 0.5, userid=77)
    other = stat(43, 10, 99.5)
    statements = snap(0, app, agent, other)
    summed = pc.per_statement(statements)[(5, 42)]
    assert (summed.calls, summed.total_exec_ms) == (503, 900.5)
    plans = PlansSnapshot(T0, (_plan((_advice(None),)),))
    (found,) = pc.seq_scan(observation(plans=plans, statements=statements), DEFAULT)
    assert found.evidence["calls"] == 503 and found.evidence["exec_time_share"] == 0.9005


def test_standby_leaves_a_table_to_the_watched_primarys_counter_rule() -> None:
    """The primary reports the changed table from its counters (with an ANALYZE that runs there): once."""
    from factories import server, table

    grown = table(rows=200_000, n_mod_since_analyze=150_000, n_tup_ins=200_000, n_tup_upd=150_000)
    primary = observation(tables=(grown,), target="primary")
    doc = json.loads(json.dumps(PARALLEL).replace("117647", "205882"))  # 350,000 over 1.7 processes
    summary = walk(doc)
    summary = replace(summary, seq_scans=tuple(replace(s, reltuples=200_000) for s in summary.seq_scans))
    plans = PlansSnapshot(T0, (StatementPlan("app", 5, 42, "u", T0, summary),))
    standby = observation(
        tables=(table(rows=200_000),), plans=plans, server_info=server(standby=True), target="standby"
    )
    assert len(list(pc.plan_estimates(standby, DEFAULT))) == 1  # alone: reported, fix on the primary
    assert list(pc.plan_estimates(replace(standby, peers={"primary": primary}), DEFAULT)) == []
