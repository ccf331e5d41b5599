"""Query-pattern and deadlock rules on hand-built observations: threshold edges and the quiet look-alikes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from factories import T0, commits, delta, interval, observation

from pgradar.agent.classifiers import CLASSIFIERS
from pgradar.agent.classifiers.deadlocks import deadlocks
from pgradar.agent.classifiers.patterns import (
    correlated_subquery,
    offset_pagination,
    partition_pruning_missed,
    unbounded_result,
)
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.plans import AutoExplainSnapshot, PartitionedUse, PlansSnapshot, StatementPlan
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.plans.autoexplain import LogTail
from pgradar.agent.plans.walker import walk

T = DEFAULT
FIXTURES = Path(__file__).parent / "fixtures" / "plans"


def test_rules_are_registered() -> None:
    assert {unbounded_result, offset_pagination, correlated_subquery, deadlocks} <= set(CLASSIFIERS)


def test_no_interval_no_findings() -> None:
    obs = observation()
    for rule in (unbounded_result, offset_pagination, correlated_subquery, deadlocks):
        assert list(rule(obs, T)) == []


# --- unbounded_result -------------------------------------------------------------------------

DUMP = "SELECT id, payload FROM events WHERE kind = $1"
REPORT = "SELECT id, payload FROM events WHERE kind = $1 ORDER BY id LIMIT $2"


def test_unbounded_result_at_the_edges() -> None:
    texts = {(5, 1): DUMP, (5, 2): DUMP + " AND id > $2", (5, 3): REPORT, (5, 4): "SELECT * FROM t"}
    found = list(
        unbounded_result(
            observation(
                interval(
                    delta(1, calls=50, rows=50 * 10_000),  # at both thresholds
                    delta(2, calls=49, rows=49 * 20_000),  # too rare
                    delta(3, calls=500, rows=500 * 20_000),  # bounded by LIMIT (a big one, but the user chose it)
                    delta(4, calls=500, rows=500 * 9_999),  # fewer rows than the threshold
                ),
                texts=texts,
            ),
            T,
        )
    )
    assert [f.queryid for f in found] == ["1"]
    f = found[0]
    assert f.kind == "unbounded_result" and f.severity == "warning" and f.database == "app"
    assert f.evidence["rows_per_call"] == 10_000 and f.evidence["calls"] == 50
    assert "LIMIT" in f.recommendation


def test_unbounded_result_quiet_for_a_report_of_twenty_rows_and_for_writes() -> None:
    texts = {
        (5, 1): "SELECT region, sum(total) FROM orders GROUP BY region",
        (5, 2): "UPDATE t SET a = $1",
        (5, 3): "SELECT broken FROM (",
    }
    found = list(
        unbounded_result(
            observation(
                interval(
                    delta(1, calls=5000, rows=5000 * 20),
                    delta(2, calls=500, rows=500 * 50_000),
                    delta(3, calls=500, rows=500 * 50_000),
                ),
                texts=texts,
            ),
            T,
        )
    )
    assert found == []


def test_unbounded_result_bytes_from_the_plan_width() -> None:
    obs = observation(interval(delta(1, calls=60, rows=60 * 20_000)), texts={(5, 1): DUMP})
    summary = walk(
        [
            {
                "Plan": {
                    "Node Type": "Seq Scan",
                    "Relation Name": "events",
                    "Schema": "public",
                    "Total Cost": 100.0,
                    "Plan Rows": 20000,
                    "Plan Width": 50,
                }
            }
        ]
    )
    plan = StatementPlan("app", 5, 1, "u", T0, summary)
    obs = replace(obs, snapshots=replace(obs.snapshots, plans=PlansSnapshot(T0, (plan,))))
    (f,) = unbounded_result(obs, T)
    assert f.evidence["row_width_bytes"] == 50 and f.evidence["bytes_per_call"] == 1_000_000


# --- offset_pagination ------------------------------------------------------------------------

PAGED = "SELECT id, at FROM events ORDER BY at DESC LIMIT $1 OFFSET $2"


def test_offset_pagination_at_the_edges() -> None:
    texts = {(5, q): PAGED + f" -- {q}" for q in (1, 2, 3, 4)}
    texts[(5, 5)] = "SELECT id FROM events ORDER BY at LIMIT $1"  # no OFFSET
    texts[(5, 6)] = "SELECT id FROM events ORDER BY at LIMIT 20 OFFSET 0"
    found = list(
        offset_pagination(
            observation(
                interval(
                    delta(1, calls=50, rows=50 * 20, hit=50 * 1000),  # 1000 buffers per call, 50 per row: at the edges
                    delta(2, calls=49, rows=49 * 20, hit=49 * 5000),  # too rare
                    delta(3, calls=500, rows=500 * 20, hit=500 * 999),  # a small table (or a small offset): few buffers
                    delta(4, calls=500, rows=500 * 100, hit=500 * 1999),  # returns what it reads: 19.99 buffers per row
                    delta(5, calls=500, rows=500 * 20, hit=500 * 5000),
                    delta(6, calls=500, rows=500 * 20, hit=500 * 5000),
                ),
                texts=texts,
            ),
            T,
        )
    )
    assert [f.queryid for f in found] == ["1"]
    f = found[0]
    assert (f.kind, f.database, f.schema, f.relation) == ("offset_pagination", "app", "public", "events")
    assert f.evidence["blocks_per_call"] == 1000 and f.evidence["offset"] == "$2"
    assert f.recommendation.startswith("CREATE INDEX CONCURRENTLY events_at_idx ON public.events (at);")
    assert "WHERE at < $last_at ORDER BY at DESC LIMIT $n" in f.recommendation


def test_offset_pagination_keyset_keeps_the_filter_and_names_an_existing_index() -> None:
    from factories import index

    text = "SELECT e.id FROM events e WHERE kind = $1 ORDER BY e.at, e.id LIMIT $2 OFFSET $3"
    obs = observation(
        interval(delta(1, calls=100, rows=2000, hit=100 * 4000)),
        texts={(5, 1): text},
        indexes=(index("events_at_id", ["at", "id"], relation="events", database="app"),),
    )
    (f,) = offset_pagination(obs, T)
    assert "events_at_id" in f.recommendation and "CREATE INDEX" not in f.recommendation
    assert "WHERE (kind = $1) AND (at, id) > ($last_at, $last_id) ORDER BY at, id LIMIT $n" in f.recommendation
    assert f.evidence["order_by"] == ["at", "id"]


# --- correlated_subquery ------------------------------------------------------------------------


def _plan(name: str) -> StatementPlan:
    return StatementPlan("app", 5, 1, "u", T0, walk(json.loads((FIXTURES / name).read_text())))


def _with_plan(obs: Observation, *plans: StatementPlan) -> Observation:
    return replace(obs, snapshots=replace(obs.snapshots, plans=PlansSnapshot(T0, plans)))


def test_correlated_subquery_from_real_plans() -> None:
    """Plans from PostgreSQL 13 and 18: a SubPlan per row (found), hashed and InitPlan (not)."""
    for major in (13, 18):
        busy = observation(interval(delta(1, calls=100, exec_ms=5000)), texts={(5, 1): "SELECT ..."})
        (f,) = correlated_subquery(_with_plan(busy, _plan(f"correlated.{major}.json")), T)
        assert f.kind == "correlated_subquery" and f.queryid == "1" and f.database == "app"
        assert f.evidence["outer_rows_estimate"] >= 1000 and f.evidence["scanned_each_run"] == ["public.lines"]
        assert f.recommendation.startswith("CREATE INDEX CONCURRENTLY lines_order_id_idx ON public.lines (order_id);\n")
        assert f.evidence["correlated_on"] == ["public.lines.order_id"]
        for quiet in ("hashed", "initplan", "indexed", "small_outer"):
            plan = _plan(f"correlated_{quiet}.{major}.json")
            assert list(correlated_subquery(_with_plan(busy, plan), T)) == [], (major, quiet)
        rare = observation(
            interval(delta(1, calls=1, exec_ms=1), delta(2, calls=10, exec_ms=1000)), texts={(5, 1): "SELECT ..."}
        )
        assert list(correlated_subquery(_with_plan(rare, _plan(f"correlated.{major}.json")), T)) == []


# --- deadlocks -------------------------------------------------------------------------------------


def _deadlocks_at(seconds: float, **counts: int):
    snap = commits(seconds, **dict.fromkeys(counts, 0))
    return replace(snap, databases=tuple(replace(d, deadlocks=counts[d.database]) for d in snap.databases))


def test_deadlocks_in_the_window() -> None:
    history = (_deadlocks_at(0, app=3, quiet=7), _deadlocks_at(60, app=3, quiet=7), _deadlocks_at(120, app=5, quiet=7))
    found = list(deadlocks(observation(history={"database": history}), T))
    assert [(f.database, f.severity, f.evidence["deadlocks"]) for f in found] == [("app", "warning", 2)]
    assert found[0].evidence["window_seconds"] == 120 and "FOR UPDATE" in found[0].recommendation
    # a window shorter than what is kept: the newest snapshot at least that old
    short = replace(T, deadlocks_window_s=60)
    assert [f.evidence["window_seconds"] for f in deadlocks(observation(history={"database": history}), short)] == [60]
    calm = (_deadlocks_at(0, app=5), _deadlocks_at(60, app=5))
    assert list(deadlocks(observation(history={"database": calm}), T)) == []
    assert list(deadlocks(observation(history={"database": history[-1:]}), T)) == []  # one poll: no window
    many = (_deadlocks_at(0, app=0), _deadlocks_at(60, app=10))
    assert [f.severity for f in deadlocks(observation(history={"database": many}), T)] == ["critical"]
    reset = (_deadlocks_at(0, app=50), _deadlocks_at(60, app=1))
    assert [f.evidence["deadlocks"] for f in deadlocks(observation(history={"database": reset}), T)] == [1]


def test_deadlocks_in_one_pass_count_since_the_reset_and_say_so() -> None:
    """check without a window: the before-snapshot (gate.databases_at) counts from zero since stats_reset."""
    now = _deadlocks_at(600, app=4, quiet=0)
    reset_at = now.taken_at - timedelta(seconds=3600)
    start = replace(
        _deadlocks_at(500, app=4, quiet=0),
        databases=tuple(replace(d, deadlocks=0, deadlocks_since=reset_at, stats_reset=reset_at) for d in now.databases),
    )
    now = replace(now, databases=tuple(replace(d, stats_reset=reset_at) for d in now.databases))
    (f,) = deadlocks(observation(history={"database": (start, now)}), T)
    assert (f.database, f.evidence["deadlocks"]) == ("app", 4)
    assert f.evidence["window_seconds"] == 3600 and f.evidence["window_source"] == "stats_reset"
    assert "4 deadlocks in database app in the last 60 min" in f.summary, f.summary


STDERR_DEADLOCK = """\
2026-12-01 22:00:00.100 UTC [4242] ERROR:  deadlock detected
2026-12-01 22:00:00.100 UTC [4242] DETAIL:  Process 4242 waits for ShareLock on transaction 740; blocked by process 43.
\tProcess 43 waits for ShareLock on transaction 739; blocked by process 4242.
\tProcess 4242: UPDATE accounts SET balance = balance - 10 WHERE id = 2
\tProcess 43: UPDATE accounts SET balance = balance + 10 WHERE id = 1
2026-12-01 22:00:00.100 UTC [4242] HINT:  See server log for query details.
2026-12-01 22:00:00.100 UTC [4242] CONTEXT:  while updating tuple (0,2) in relation "accounts"
2026-12-01 22:00:00.100 UTC [4242] STATEMENT:  UPDATE accounts SET balance = balance - 10 WHERE id = 2
2026-12-01 22:00:01.000 UTC [4250] LOG:  checkpoint starting: time
"""


def test_deadlock_reports_from_the_log(tmp_path: Path) -> None:
    jsonline = json.dumps(
        {
            "timestamp": "2026-12-01 22:00:02 UTC",
            "error_severity": "ERROR",
            "state_code": "40P01",
            "message": "deadlock detected",
            "dbname": "shop",
            "detail": "Process 1 waits for ShareLock on transaction 9; blocked by process 2.\n"
            "Process 2 waits for ShareLock on transaction 8; blocked by process 1.\n"
            "Process 1: UPDATE \"Stock\" SET n = n - 1 WHERE sku = 'a-1'\n"
            "Process 2: UPDATE \"Stock\" SET n = n - 1 WHERE sku = 'b-2'",
            "context": 'while updating tuple (0,1) in relation "Stock"',
        }
    )
    log = tmp_path / "postgresql.log"
    log.write_text(STDERR_DEADLOCK + jsonline + "\n")
    tail = LogTail(str(log))
    tail.read(T0)
    first, second = tail.deadlocks
    assert first.database is None and first.relations == ("accounts",)
    assert first.statements == (
        "UPDATE accounts SET balance = balance - ? WHERE id = ?",
        "UPDATE accounts SET balance = balance + ? WHERE id = ?",
    )
    assert first.waits[0].startswith("Process 4242 waits for ShareLock")
    assert second.database == "shop" and second.relations == ("Stock",)
    assert second.statements[0] == 'UPDATE "Stock" SET n = n - ? WHERE sku = ?'
    history = (_deadlocks_at(-60, app=0), _deadlocks_at(60, app=1))
    obs = observation(
        history={"database": history},
        auto_explain=AutoExplainSnapshot(T0 + timedelta(seconds=60), str(log), (), deadlocks=tail.deadlocks),
    )
    (f,) = deadlocks(obs, T)
    assert f.evidence["relations"] == ["accounts"] and len(f.evidence["reports"]) == 1  # shop's is another db
    assert "on accounts" in f.summary and "'" not in json.dumps(f.evidence["statements"])


# --- partition_pruning_missed -----------------------------------------------------------------------


def _partitioned_plan(
    queryid: int, constrained: bool, scanned: int, removed: int = 0, key: tuple[str | None, ...] = ("at",)
) -> StatementPlan:
    leaves = tuple(f"public.events_q{i}" for i in range(1, 5))
    children = [
        {
            "Node Type": "Seq Scan",
            "Relation Name": f"events_q{i}",
            "Schema": "public",
            "Plan Rows": 10,
            "Total Cost": 1.0,
        }
        for i in range(1, scanned + 1)
    ]
    root = {"Node Type": "Append", "Total Cost": 10.0, "Plan Rows": 40, "Plans": children}
    if removed:
        root["Subplans Removed"] = removed
    summary = walk([{"Plan": root}])
    part = PartitionedUse("public", "events", key, "RANGE (at)", leaves, constrained, 40_000.0)
    return StatementPlan("app", 5, queryid, "u", T0, summary, partitioned=(part,))


def test_partition_pruning_missed_rests_on_the_text_and_the_plan_confirms() -> None:
    texts = {
        (5, 1): "SELECT count(*) FROM events WHERE account_id = $1",
        (5, 2): "SELECT count(*) FROM events WHERE date_trunc('month', at) = $1",
        (5, 3): "SELECT count(*) FROM events WHERE at >= $1 AND at < $2",
        (5, 4): "SELECT count(*) FROM events WHERE account_id = $1 -- 4",
        (5, 5): "SELECT count(*) FROM events WHERE account_id = $1 -- 5",
        (5, 6): "SELECT count(*) FROM events WHERE account_id = $1 -- 6",
    }
    obs = observation(interval(*(delta(q, calls=100) for q in range(1, 7))), texts=texts)
    obs = _with_plan(
        obs,
        _partitioned_plan(1, False, 4),
        _partitioned_plan(2, False, 4),
        _partitioned_plan(3, True, 4),  # 18's generic plan of a range lists every partition: quiet
        _partitioned_plan(4, False, 0, removed=4),  # 13-15: removed at executor start
        _partitioned_plan(5, False, 3),  # 3 of 4: below 0.8
        _partitioned_plan(6, False, 4, key=(None,)),
    )  # an expression key: not judged
    found = {f.queryid: f for f in partition_pruning_missed(obs, T)}
    assert sorted(found) == ["1", "2"]
    assert found["1"].evidence["partitions_scanned"] == 4 and not found["1"].evidence["key_in_function"]
    assert found["2"].evidence["key_in_function"] and "inside a function" in found["2"].summary
    assert (found["1"].schema, found["1"].relation) == ("public", "events")
    assert "at >= $from AND at < $to" in found["1"].recommendation
    rare = observation(interval(delta(1, calls=5, exec_ms=1), delta(9, calls=5, exec_ms=100)), texts=texts)
    assert list(partition_pruning_missed(_with_plan(rare, _partitioned_plan(1, False, 4)), T)) == []


def test_a_hashed_subplan_is_told_from_another_by_its_whole_number() -> None:
    scan = {
        "Node Type": "Seq Scan",
        "Parent Relationship": "SubPlan",
        "Schema": "public",
        "Alias": "l",
        "Total Cost": 500.0,
    }
    plan = [
        {
            "Plan": {
                "Node Type": "Seq Scan",
                "Relation Name": "o",
                "Schema": "public",
                "Alias": "o",
                "Plan Rows": 5000,
                "Filter": "(hashed SubPlan 10)",
                "Plans": [
                    {**scan, "Subplan Name": "SubPlan 1", "Relation Name": "lines", "Filter": "(l.x = o.id)"},
                    {**scan, "Subplan Name": "SubPlan 10", "Relation Name": "other"},
                ],
            }
        }
    ]
    runs = walk(plan).subplans
    assert [(r.name, r.hashed, r.outer_rows) for r in runs] == [("SubPlan 1", False, 5000), ("SubPlan 10", True, 5000)]
    assert runs[0].correlated == (("public.lines", "x"),) and runs[0].seq_scans == ("public.lines",)


def test_deep_pages_judged_on_rows_read_at_the_edges() -> None:
    from pgradar.agent.classifiers.patterns import deep_pages

    assert deep_pages(10_000, 20, 1.0, T)  # at every edge
    assert not deep_pages(9_999, 20, 5.0, T)  # a shallow page, or a small table: few rows read
    assert not deep_pages(10_000, 101, 5.0, T)  # reads about what it returns (99 rows read per row)
    assert not deep_pages(50_000, 20, 0.99, T)  # the index's other users read it: the time does not confirm


def test_rows_of_a_list_of_values_are_bounded_by_the_list() -> None:
    """18 folds IN lists of every length into one entry: their rows per call are the lists', not unbounded."""
    from pgradar.agent.classifiers.patterns import by_list

    assert by_list("SELECT id, v FROM items WHERE id IN ($1 /*, ... */)")  # 18's folded text
    assert by_list("SELECT id, v FROM items WHERE id IN ($1, $2, $3)")
    assert by_list("SELECT id FROM items WHERE id = ANY($1)")
    assert not by_list("SELECT id, v FROM items WHERE kind = $1")
    assert not by_list("SELECT id FROM items WHERE kind IN ('a', 'b')")  # the rule reads normalized texts ($n)
