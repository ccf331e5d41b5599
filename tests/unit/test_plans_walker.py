"""The one EXPLAIN-JSON walker: generic plans and executed plans read the same tree the same way (no server)."""

import json
import subprocess
import sys
from datetime import UTC, datetime

from pgradar.agent.plans.walker import all_pruned, index_only_scan, nodes, plan_sample, root_of, walk

NOW = datetime(2026, 1, 1, tzinfo=UTC)

EXECUTED = {
    "Plan": {
        "Node Type": "Hash Join",
        "Plan Rows": 10,
        "Actual Rows": 5000,
        "Actual Loops": 1,
        "Hash Cond": "(o.customer_id = c.id)",
        "Plans": [
            {
                "Node Type": "Seq Scan",
                "Schema": "public",
                "Relation Name": "orders",
                "Alias": "o",
                "Plan Rows": 100,
                "Actual Rows": 100,
                "Actual Loops": 1,
                "Plans": None,
            },
            {
                "Node Type": "Hash",
                "Plan Rows": 1,
                "Actual Rows": 0,
                "Actual Loops": 0,
                "Plans": [
                    {
                        "Node Type": "Seq Scan",
                        "Schema": "public",
                        "Relation Name": "customers",
                        "Alias": "c",
                        "Plan Rows": 1,
                        "Actual Rows": 50,
                        "Actual Loops": 1,
                        "Filter": "(region = 'eu'::text)",
                    }
                ],
            },
        ],
    }
}


def test_nodes_visit_parents_before_children_and_take_null_plans():
    assert [n["Node Type"] for n in nodes(EXECUTED["Plan"])] == ["Hash Join", "Seq Scan", "Hash", "Seq Scan"]


def test_an_executed_plan_gives_its_worst_estimates_first_and_names_a_join_by_the_first_relation_below():
    sample = plan_sample(EXECUTED, 42, "app", "SELECT 1", 12.5, NOW, "explain_analyze")
    assert [(n.node_type, n.relation, n.factor) for n in sample.nodes] == [
        ("Hash Join", "orders", 500.0),
        ("Seq Scan", "customers", 50.0),
        ("Seq Scan", "orders", 1.0),
    ]  # the Hash never ran (no loops): not a sample
    assert sample.nodes[0].condition == "(o.customer_id = c.id)"
    assert (sample.queryid, sample.database, sample.source, sample.key) == (42, "app", "explain_analyze", "42")


def test_the_same_tree_read_as_a_generic_plan():
    summary = walk(json.dumps([EXECUTED]))
    assert [s.relation for s in summary.seq_scans] == ["orders", "customers"]
    assert summary.relations == (("public", "orders"), ("public", "customers"))
    assert summary.shape == "Hash Join (Seq Scan on public.orders; Hash (Seq Scan on public.customers))"
    assert root_of([EXECUTED]) is EXECUTED["Plan"]


def test_all_pruned_only_when_no_scan_is_left():
    pruned = [{"Plan": {"Node Type": "Append", "Subplans Removed": 3}}]
    assert all_pruned(pruned)
    assert not all_pruned([{"Plan": {**pruned[0]["Plan"], "Plans": [EXECUTED["Plan"]]}}])
    assert not all_pruned([EXECUTED])


def test_index_only_scan_of_the_relation_asked():
    plan = [{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Index Only Scan", "Relation Name": "orders"}]}}]
    assert index_only_scan(plan, "orders")
    assert not index_only_scan(plan, "customers")
    assert not index_only_scan([EXECUTED], "orders")


def test_the_plan_types_and_the_walker_import_no_io_module():
    """Classifiers and the exporter read plan types: that must not load a driver or sqlglot."""
    probe = (
        "import json, sys\n"
        "import pgradar.agent.model.plans, pgradar.agent.plans.walker, pgradar.agent.plans.shapes\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)} | set(json.loads(done.stdout))
    io = (
        "psycopg",
        "sqlglot",
        "pgradar.agent.collect.db",
        "pgradar.agent.collect.queries",
        "pgradar.agent.sqlshape",
    )
    assert sorted(loaded & set(io)) == []
