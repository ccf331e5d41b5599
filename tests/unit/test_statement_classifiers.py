"""The statement classifiers on hand-built observations: threshold edges and negative cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from factories import T0, commits, delta, foreign_key, interval, observation, snap, stat, table

from pgradar.agent.classifiers import CLASSIFIERS
from pgradar.agent.classifiers.nplusone import n_plus_one
from pgradar.agent.classifiers.statements import (
    low_cache_hit,
    mem_setting,
    row_misestimate,
    select_star,
    temp_spill,
)
from pgradar.agent.model.catalog import ForeignKey
from pgradar.agent.model.plans import AutoExplainSnapshot, PlanNode, PlanSample
from pgradar.agent.model.thresholds import DEFAULT

T = DEFAULT


def test_every_statement_rule_is_registered() -> None:
    assert {temp_spill, low_cache_hit, n_plus_one, select_star, row_misestimate} <= set(CLASSIFIERS)


def test_no_interval_no_findings() -> None:
    obs = observation()
    for rule in (temp_spill, low_cache_hit, n_plus_one, select_star, row_misestimate):
        assert list(rule(obs, T)) == []


# --- temp_spill ----------------------------------------------------------------------------


def test_temp_spill_at_the_threshold() -> None:
    at = delta(1, calls=2, exec_ms=100, temp_written=2 * 128, username="Reporter")  # 1 MiB per call
    below = delta(2, calls=2, exec_ms=100, temp_written=2 * 127)
    found = list(
        temp_spill(
            observation(interval(at, below), texts={(5, 1): "SELECT * FROM t ORDER BY a", (5, 2): "SELECT 1"}), T
        )
    )
    assert [f.queryid for f in found] == ["1"]
    f = found[0]
    assert f.evidence["temp_bytes_per_call"] == 1 << 20 and f.evidence["suggested_work_mem"] == "4MB"
    assert f.recommendation.startswith("ALTER ROLE \"Reporter\" SET work_mem = '4MB';")
    assert "SET LOCAL work_mem" in f.recommendation and "ORDER BY" in f.recommendation
    assert f.severity == "critical"  # half the interval's time


def test_temp_spill_severity_follows_its_share_of_time() -> None:
    spill = delta(1, calls=1, exec_ms=1, temp_written=1000)
    busy = delta(2, calls=1000, exec_ms=1000)
    (f,) = temp_spill(observation(interval(spill, busy)), T)
    assert f.severity == "warning" and f.evidence["exec_time_share"] < T.statement_min_share


def test_temp_spill_ignores_utility_statements() -> None:
    build = delta(1, calls=1, temp_written=100_000)
    assert list(temp_spill(observation(interval(build), texts={(5, 1): "CREATE INDEX i ON t (a)"}), T)) == []


@pytest.mark.parametrize(
    ("n_bytes", "setting"), [(0, "4MB"), (5 << 20, "8MB"), (64 << 20, "64MB"), (65 << 20, "128MB"), (1 << 40, "2GB")]
)
def test_suggested_work_mem(n_bytes: int, setting: str) -> None:
    assert mem_setting(n_bytes) == setting


# --- low_cache_hit ----------------------------------------------------------------------------


def test_low_cache_hit_at_the_edges() -> None:
    disk = delta(1, calls=10, exec_ms=500, hit=1000, read=1000)  # read ratio exactly 0.5
    cached = delta(2, calls=10, exec_ms=500, hit=100_000, read=1000)
    found = list(low_cache_hit(observation(interval(disk, cached)), T))
    assert [f.queryid for f in found] == ["1"]
    assert found[0].evidence["hit_ratio"] == 0.5 and found[0].evidence["bytes_read_per_call"] == 100 * 8192


def test_low_cache_hit_rare_query_is_noise() -> None:
    rare = delta(1, calls=1, exec_ms=4.9, read=5000)  # 4.9% of the time
    busy = delta(2, calls=1000, exec_ms=95.1, hit=10_000)
    assert list(low_cache_hit(observation(interval(rare, busy)), T)) == []


def test_low_cache_hit_needs_enough_blocks() -> None:
    small = delta(1, calls=1, exec_ms=100, read=999)
    assert list(low_cache_hit(observation(interval(small)), T)) == []


# --- n_plus_one --------------------------------------------------------------------------------

PARENT = "SELECT id FROM customers WHERE region = $1"
CHILD = "SELECT name FROM accounts WHERE customer_id = $1"


def nplus1(
    child_calls: int = 600,
    xacts: int = 6,
    child_rows: int | None = None,
    child_ms: float = 6.0,
    parent_rows: int = 600,
    second_text: str | None = None,
    parent_calls: int = 6,
    child_text: str = CHILD,
    foreign_keys: tuple[ForeignKey, ...] | None = None,
    explicit: bool = True,
):
    half = child_calls // 2
    rows = child_calls if child_rows is None else child_rows
    deltas = (
        delta(1, calls=parent_calls, exec_ms=3, rows=parent_rows),
        delta(2, calls=half, exec_ms=child_ms / 2, rows=rows // 2),  # int2 binding
        delta(3, calls=child_calls - half, exec_ms=child_ms / 2, rows=rows - rows // 2),  # int4
        *((delta(9, calls=xacts, exec_ms=0.1),) if explicit else ()),  # COMMIT: explicit transactions
    )
    texts = {(5, 1): PARENT, (5, 2): child_text, (5, 3): second_text or child_text, (5, 9): "COMMIT"}
    return observation(
        interval(*deltas),
        texts=texts,
        history={"database": (commits(0, app=100), commits(60, app=100 + xacts))},
        foreign_keys=foreign_keys,
    )


def test_n_plus_one_both_signals() -> None:
    (f,) = n_plus_one(nplus1(), T)
    ev = f.evidence
    assert f.severity == "warning" and f.queryid == "3" and f.database == "app"  # the largest queryid
    assert ev["calls"] == 600 and ev["queryids"] == ["3", "2"] and ev["rows_per_call"] == 1
    assert ev["calls_per_transaction"] == 100 and ev["calls_per_second"] == 10
    assert ev["parent_queryid"] == "1" and ev["parent_rows"] == 600
    assert "ANY($1)" in f.recommendation


def test_n_plus_one_groups_texts_differing_in_layout_only() -> None:
    (f,) = n_plus_one(nplus1(second_text="select name\n  FROM accounts WHERE customer_id = $1;"), T)
    assert f.evidence["queryids"] == ["3", "2"]


@pytest.mark.parametrize(
    "second",
    [
        "SELECT name FROM accounts WHERE customer_id = $1::INTEGER",  # SQLAlchemy casts its parameters
        "SELECT name FROM accounts WHERE customer_id = $1::BIGINT",
        "SELECT name FROM accounts WHERE customer_id = CAST($1 AS int)",
    ],
)
def test_n_plus_one_groups_texts_differing_in_parameter_casts(second: str) -> None:
    (f,) = n_plus_one(nplus1(second_text=second), T)
    assert f.evidence["queryids"] == ["3", "2"] and f.evidence["calls"] == 600


def test_n_plus_one_parameter_on_the_left() -> None:
    (f,) = n_plus_one(
        nplus1(child_text="SELECT accounts.name FROM accounts WHERE $1::INTEGER = accounts.customer_id"), T
    )
    assert f.evidence["lookup_keys"] == ["accounts.customer_id"] and f.evidence["calls"] == 600


def test_n_plus_one_split_texts_alone_are_below_the_calls_threshold() -> None:
    assert list(n_plus_one(nplus1(second_text="SELECT other FROM x WHERE id = $1"), T)) == []


def test_n_plus_one_thresholds() -> None:
    assert list(n_plus_one(nplus1(child_calls=499, parent_rows=499), T)) == []
    assert len(list(n_plus_one(nplus1(child_calls=500, parent_rows=500), T))) == 1


def test_n_plus_one_whatever_the_rows_and_time_of_the_child() -> None:
    # A lazy-loaded collection returns several rows a call, and a scan for lack of an index is slow:
    # still one lookup per parent row (the index is the seq_scan findings' business).
    (f,) = n_plus_one(nplus1(child_rows=10 * 600, child_ms=600 * 9.0), T)
    assert f.evidence["rows_per_call"] == 10 and f.evidence["mean_exec_ms"] == 9 and f.severity == "warning"


@pytest.mark.parametrize(
    "batched",
    [
        "SELECT name FROM accounts WHERE customer_id = ANY($1)",
        "SELECT name FROM accounts WHERE customer_id IN ($1, $2, $3)",
        "SELECT accounts.name FROM accounts WHERE accounts.customer_id IN ($1::INTEGER, $2::INTEGER)",
        "SELECT name FROM accounts",
    ],
)
def test_n_plus_one_batched_loads_are_quiet(batched: str) -> None:
    assert list(n_plus_one(nplus1(child_text=batched), T)) == []


ACCOUNTS_FK = foreign_key(
    ["customer_id"], [], relation="accounts", referenced_relation="customers", constraint_name="accounts_customer_fk"
)


def test_n_plus_one_parent_linked_by_a_foreign_key_is_a_warning() -> None:
    # autocommit: the parent alone tells
    (f,) = n_plus_one(nplus1(xacts=606, explicit=False, foreign_keys=(ACCOUNTS_FK,)), T)
    assert f.severity == "warning" and f.evidence["parent_queryid"] == "1"
    assert f.evidence["lookup_keys"] == ["accounts.customer_id"]


def test_n_plus_one_many_to_one_lazy_load() -> None:
    # A page of orders, then each order's customer by its primary key: orders.customer_id references customers.
    orders_fk = foreign_key(["customer_id"], [], relation="orders", referenced_relation="customers")
    obs = nplus1(
        xacts=606,
        explicit=False,
        child_text="SELECT customers.id, customers.email FROM customers WHERE customers.id = $1::INTEGER",
        foreign_keys=(orders_fk,),
    )
    page = "SELECT orders.id, orders.customer_id FROM orders ORDER BY orders.id LIMIT $1::INTEGER OFFSET $2::INTEGER"
    texts = {**obs.statement_texts, (5, 1): page}
    (f,) = n_plus_one(replace(obs, statement_texts=texts), T)
    assert f.severity == "warning" and f.evidence["lookup_keys"] == ["customers.id"]
    assert f.recommendation.startswith(
        "SELECT customers.id, customers.email FROM customers WHERE customers.id = ANY($1);"
    )


def test_n_plus_one_one_lookup_per_parent_and_table() -> None:
    # A page of orders drives the lazy load of each order's customer (550 calls for 550 rows); a frequent
    # lookup of customers by id (600 calls, one per request) matches the page's rows by chance: it is not
    # driven by it, the closer count keeps the parent.
    orders_fk = foreign_key(["customer_id"], [], relation="orders", referenced_relation="customers")
    page = "SELECT orders.id, orders.customer_id FROM orders ORDER BY orders.id LIMIT $1 OFFSET $2"
    lazy = "SELECT customers.id, customers.email FROM customers WHERE customers.id = $1::INTEGER"
    frequent = "SELECT customers.name FROM customers WHERE customers.id = $1::INTEGER"
    deltas = (
        delta(1, calls=11, exec_ms=3, rows=550),
        delta(2, calls=550, exec_ms=5, rows=550),
        delta(3, calls=600, exec_ms=5, rows=600),
    )
    obs = observation(
        interval(*deltas), texts={(5, 1): page, (5, 2): lazy, (5, 3): frequent}, foreign_keys=(orders_fk,)
    )
    (f,) = n_plus_one(obs, T)
    assert f.queryid == "2" and f.evidence["parent_queryid"] == "1"


def test_n_plus_one_runs_at_most_once_per_parent_row() -> None:
    assert list(n_plus_one(nplus1(parent_rows=546, xacts=606, explicit=False), T)) != []  # 600 <= 1.1 x 546
    assert list(n_plus_one(nplus1(parent_rows=540, xacts=606, explicit=False), T)) == []  # 600 > 1.1 x 540


def test_n_plus_one_savepoints_are_no_transactions() -> None:
    obs = nplus1(xacts=6, explicit=False, parent_rows=5000)  # no parent: only calls per transaction could tell
    deltas = (*obs.statement_intervals[-1].deltas, delta(8, calls=600, exec_ms=1))
    texts = {**obs.statement_texts, (5, 8): "ROLLBACK TO SAVEPOINT sa_savepoint_1"}
    bare = observation(interval(*deltas), texts=texts)
    assert list(n_plus_one(bare, T)) == []


def test_n_plus_one_lookup_no_parent_drives_is_quiet() -> None:
    # The page reads customers, the lookup reads wallets, and a foreign key ties wallets to another table:
    # the counts match by chance, the parent does not drive the lookup.
    wallets = foreign_key(["owner_id"], [], relation="wallets", referenced_relation="owners")
    obs = nplus1(
        xacts=606, explicit=False, child_text="SELECT balance FROM wallets WHERE owner_id = $1", foreign_keys=(wallets,)
    )
    assert list(n_plus_one(obs, T)) == []


def test_n_plus_one_one_signal_is_info() -> None:
    no_parent = nplus1(parent_rows=5000)  # parent returns far more rows than the child's calls
    (f,) = n_plus_one(no_parent, T)
    assert f.severity == "info" and f.evidence["parent_queryid"] is None
    autocommit = nplus1(xacts=606, explicit=False)  # one transaction per call: only the parent tells
    (g,) = n_plus_one(autocommit, T)
    assert g.severity == "info" and g.evidence["parent_queryid"] == "1"


def test_n_plus_one_lagging_commit_counts_alone_are_not_judged() -> None:
    # Autocommit statements (no COMMIT in pg_stat_statements) and pg_stat_database still holding most
    # commits back (15+ reports an idle session's up to ten seconds late): 100 calls per counted
    # transaction that are really one. Not driven by the parent either (it returns far more rows).
    lagging = nplus1(parent_rows=5000, xacts=6, explicit=False)
    assert list(n_plus_one(lagging, T)) == []


def test_pgbench_shape_is_not_n_plus_one() -> None:
    # Every statement once per transaction, one row each: calls == transactions.
    deltas = tuple(delta(i, calls=6000, exec_ms=300, rows=6000) for i in range(1, 4))
    texts = {
        (5, 1): "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        (5, 2): "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        (5, 3): "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
    }
    obs = observation(interval(*deltas), texts=texts, history={"database": (commits(0, app=0), commits(60, app=6000))})
    assert list(n_plus_one(obs, T)) == []


def test_n_plus_one_without_transaction_counts_uses_the_parent() -> None:
    obs = nplus1(explicit=False)
    bare = observation(*obs.statement_intervals, texts=dict(obs.statement_texts))
    (f,) = n_plus_one(bare, T)
    assert f.severity == "info" and f.evidence["calls_per_transaction"] is None


def test_n_plus_one_counts_explicit_transactions_without_pg_stat_database() -> None:
    obs = nplus1()  # 6 COMMITs in pg_stat_statements, no database snapshot
    bare = observation(*obs.statement_intervals, texts=dict(obs.statement_texts))
    (f,) = n_plus_one(bare, T)
    assert f.severity == "warning" and f.evidence["calls_per_transaction"] == 100


def test_n_plus_one_ignores_writes() -> None:
    deltas = (delta(1, calls=1000, exec_ms=10, rows=1000),)
    obs = observation(
        interval(*deltas),
        texts={(5, 1): "INSERT INTO t VALUES ($1,$2)"},
        history={"database": (commits(0, app=0), commits(60, app=1))},
    )
    assert list(n_plus_one(obs, T)) == []


# --- select_star --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT * FROM wide WHERE id = $1", ["wide"]),
        ("select w.* from public.wide w join narrow n on n.id = w.id where w.id in ($1,$2)", ["wide"]),
        ("SELECT * FROM narrow WHERE id = $1", []),
        ("SELECT count(*) FROM wide", []),
        ("SELECT id FROM (SELECT * FROM wide) s", []),
        ("SELECT * FROM other.wide", []),
        ("SELECT * FROM wide WHERE created > date $1", ["wide"]),
    ],
)
def test_select_star(text: str, expected: list[str]) -> None:
    tables = (
        table("wide", column_count=10),
        table("narrow", column_count=3),
        table("wide", column_count=40, database="elsewhere"),
    )
    obs = observation(interval(delta(1, calls=100, rows=100)), texts={(5, 1): text}, tables=tables)
    found = list(select_star(obs, T))
    assert [f.relation for f in found] == expected
    if found:
        assert found[0].evidence["columns"] == 10 and found[0].schema == "public" and found[0].queryid == "1"


def test_select_star_needs_frequent_calls() -> None:
    obs = observation(
        interval(delta(1, calls=99)), texts={(5, 1): "SELECT * FROM wide"}, tables=(table("wide", column_count=30),)
    )
    assert list(select_star(obs, T)) == []


# --- row_misestimate ------------------------------------------------------------------------------


def plan(
    queryid: int | None,
    estimated: float,
    actual: float,
    query: str = "SELECT * FROM items WHERE s = $1",
    age_s: float = 60,
) -> PlanSample:
    node = PlanNode("Seq Scan", "public", "items", estimated, actual, 1, "(s = 'b'::text)")
    return PlanSample(queryid, None, query, 12.5, (node,), T0 + timedelta(minutes=5, seconds=-age_s))


def misestimate_obs(*plans: PlanSample):
    statements = snap(0, stat(77, 10, 5.0))
    return observation(
        statements=statements,
        texts={(5, 77): "SELECT * FROM items WHERE s = $1"},
        auto_explain=AutoExplainSnapshot(T0, "/log", plans),
        now=T0 + timedelta(minutes=5),
    )


def test_row_misestimate_edges() -> None:
    (f,) = row_misestimate(misestimate_obs(plan(77, 100, 1000)), T)  # 10x, 1000 rows
    assert (f.database, f.schema, f.relation, f.queryid) == ("app", "public", "items", "77")
    assert f.recommendation.startswith("ANALYZE public.items;")
    assert f.evidence["factor"] == 10 and f.evidence["condition"] == "(s = 'b'::text)"
    assert list(row_misestimate(misestimate_obs(plan(77, 101, 1000)), T)) == []  # 9.9x
    assert list(row_misestimate(misestimate_obs(plan(77, 99, 999)), T)) == []  # too few rows
    (over,) = row_misestimate(misestimate_obs(plan(77, 50_000, 10)), T)
    assert "overestimated" in over.summary


def test_row_misestimate_matches_text_without_query_identifier() -> None:
    (f,) = row_misestimate(misestimate_obs(plan(None, 1, 5000, query="SELECT * FROM items WHERE s = 'b'")), T)
    assert f.queryid == "77" and f.database == "app"
    (g,) = row_misestimate(misestimate_obs(plan(None, 1, 5000, query="SELECT 1 FROM unknown")), T)
    assert g.queryid is None and g.database is None


def test_row_misestimate_ignores_old_plans() -> None:
    assert list(row_misestimate(misestimate_obs(plan(77, 1, 5000, age_s=3601)), T)) == []


def test_row_misestimate_from_explain_analyze_on_a_standby() -> None:
    from dataclasses import replace

    from pgradar.agent.model.plans import AnalyzeSnapshot

    ran = replace(plan(77, 250, 50_000), source="explain_analyze")
    obs = misestimate_obs()
    obs = replace(obs, snapshots=replace(obs.snapshots, explain_analyze=AnalyzeSnapshot(T0, True, (ran,))))
    (f,) = row_misestimate(obs, T)
    assert f.evidence["source"] == "explain_analyze" and f.queryid == "77" and f.evidence["factor"] == 200
    # the same statement in the log too: one finding, from the newer plan
    logged = plan(77, 100, 5000, age_s=30)
    both = replace(obs, snapshots=replace(obs.snapshots, auto_explain=AutoExplainSnapshot(T0, "/log", (logged,))))
    (g,) = row_misestimate(both, T)
    assert g.evidence["source"] == "auto_explain" and g.evidence["factor"] == 50
