"""Index advice without a server: one fix per table, column order, selectivity, plan-derived columns."""

from __future__ import annotations

from dataclasses import replace

from pgradar.agent import sqlshape
from pgradar.agent.classifiers.fixes import create_index_sql
from pgradar.agent.classifiers.onefix import one_fix_per_table
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.plans import parallel_divisor
from pgradar.agent.plans.advisor import order_by_selectivity, unselective
from pgradar.agent.plans.walker import walk


def _finding(kind: str, queryid: str | None, *indexes: tuple[tuple[str, ...], int]) -> Finding:
    note = "-- note" if kind == "seq_scan" else ""
    candidates = [
        {
            "columns": list(cols),
            "equality": eq,
            "partitioned": False,
            "sql": create_index_sql("public", "orders", cols, False) + (f"\n{note}" if note else ""),
            "comment": note,
        }
        for cols, eq in indexes
    ]
    return Finding(
        Kind(kind),
        Severity.WARNING,
        "t",
        "s",
        "\n".join(c["sql"] for c in candidates),
        {"index_candidates": candidates},
        database="app",
        schema="public",
        relation="orders",
        queryid=queryid,
    )


def _creates(findings: list[Finding]) -> list[str]:
    return [line for f in findings for line in f.recommendation.splitlines() if line.startswith("CREATE INDEX")]


def test_the_demo_one_cause_one_fix() -> None:
    """seq_scan's (customer_id, id) serves missing_fk_index's (customer_id): one CREATE INDEX, one pointer."""
    scan = _finding("seq_scan", "42", (("customer_id", "id"), 1))
    fk = _finding("missing_fk_index", None, (("customer_id",), 1), (("product_id",), 1))
    out = one_fix_per_table([fk, scan])
    assert sorted(_creates(out)) == [
        "CREATE INDEX CONCURRENTLY orders_customer_id_id_idx ON public.orders (customer_id, id);",
        "CREATE INDEX CONCURRENTLY orders_product_id_idx ON public.orders (product_id);",
    ]
    pointer = out[0].recommendation.splitlines()[0]
    assert pointer.startswith("-- (customer_id) is served by the index recommended for seq_scan (statement 42)")
    assert out[0].evidence["served_by"] == [
        {"columns": ["customer_id"], "kind": "seq_scan", "queryid": "42", "index_columns": ["customer_id", "id"]}
    ]
    assert out[1] == scan  # the owner is unchanged


def test_same_index_from_two_statements_is_recommended_once() -> None:
    out = one_fix_per_table([_finding("seq_scan", "2", (("a",), 1)), _finding("seq_scan", "1", (("a",), 1))])
    assert len(_creates(out)) == 1 and "statement 1" in out[0].recommendation


def test_equality_columns_reorder_to_serve_a_foreign_key() -> None:
    """(blog_id, user_id) compared for equality may lead with user_id: then it serves the FK too."""
    scan = _finding("seq_scan", "7", (("blog_id", "user_id"), 2))
    fk = _finding("missing_fk_index", None, (("user_id",), 1))
    out = one_fix_per_table([scan, fk])
    assert _creates(out) == [
        "CREATE INDEX CONCURRENTLY orders_user_id_blog_id_idx ON public.orders (user_id, blog_id);"
    ]
    assert out[0].recommendation.endswith("\n-- note")
    # a range column cannot move: (created) range after blog_id does not serve created alone
    ranged = one_fix_per_table(
        [_finding("seq_scan", "8", (("blog_id", "created"), 1)), _finding("missing_fk_index", None, (("created",), 1))]
    )
    assert len(_creates(ranged)) == 2


def test_advice_hypopg_found_the_merged_index_does_not_serve_stays_apart() -> None:
    """``alone``: not merged into a reordered index; merged only into one that leads with its very columns."""
    wide = _finding("seq_scan", "1", (("a", "b"), 2))
    narrow = _finding("seq_scan", "2", (("b",), 1))
    apart = replace(narrow, evidence={"index_candidates": [{**narrow.evidence["index_candidates"][0], "alone": True}]})
    assert _creates(one_fix_per_table([wide, narrow])) == [
        "CREATE INDEX CONCURRENTLY orders_b_a_idx ON public.orders (b, a);"
    ]
    assert len(_creates(one_fix_per_table([wide, apart]))) == 2
    # building (a) beside (a, b) would build what duplicate_index reports: (a, b) serves it, alone or not
    prefix = _finding("seq_scan", "3", (("a",), 1))
    alone = replace(prefix, evidence={"index_candidates": [{**prefix.evidence["index_candidates"][0], "alone": True}]})
    assert len(_creates(one_fix_per_table([wide, alone]))) == 1


def test_unrelated_indexes_and_other_tables_are_left_alone() -> None:
    findings = [_finding("seq_scan", "1", (("a",), 1)), _finding("seq_scan", "2", (("b",), 1))]
    assert one_fix_per_table(findings) == findings
    other = _finding("missing_fk_index", None, (("a",), 1))
    other = Finding(
        other.kind,
        other.severity,
        other.target,
        other.summary,
        other.recommendation,
        other.evidence,
        database="app",
        schema="public",
        relation="customers",
    )
    assert one_fix_per_table([findings[0], other]) == [findings[0], other]


def test_order_by_selectivity() -> None:
    stats = {"user_id": 50_000.0, "blog_id": 40.0, "created": 1e6}
    assert order_by_selectivity(("blog_id", "user_id", "created"), 2, stats) == ("user_id", "blog_id", "created")
    assert order_by_selectivity(("blog_id", "user_id"), 2, {"user_id": 9.0}) == ("blog_id", "user_id")  # unknown
    assert order_by_selectivity(("blog_id", "user_id"), 1, stats) == ("blog_id", "user_id")
    assert order_by_selectivity(("lang", "user_id", "created"), 2, {**stats, "lang": 1.0}) == ("user_id", "created")


def test_unselective_filter_gets_no_advice_unless_a_limit_stops_early() -> None:
    use = sqlshape.TableUse(None, "logs", "logs", equality=("level",))
    assert unselective(50_000 / 60_000, use, False, 0.2)
    assert not unselective(0.01, use, False, 0.2)
    assert not unselective(None, use, False, 0.2)  # no filter: ORDER BY ... LIMIT alone
    ordered = sqlshape.TableUse(None, "logs", "logs", equality=("level",), order=("ts",))
    assert not unselective(0.9, ordered, True, 0.2) and unselective(0.9, ordered, False, 0.2)
    ranged = sqlshape.TableUse(None, "logs", "logs", range=("ts",))  # a range's generic estimate is a default
    assert not unselective(1 / 3, ranged, False, 0.2)


def test_walk_sort_limit_and_parallel_rows() -> None:
    plan = [
        {
            "Plan": {
                "Node Type": "Limit",
                "Plans": [
                    {
                        "Node Type": "Gather Merge",
                        "Workers Planned": 2,
                        "Plans": [
                            {
                                "Node Type": "Sort",
                                "Sort Key": ["posts.user_id"],
                                "Plans": [
                                    {
                                        "Node Type": "Seq Scan",
                                        "Parallel Aware": True,
                                        "Relation Name": "posts",
                                        "Schema": "public",
                                        "Alias": "posts",
                                        "Plan Rows": 1000,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        }
    ]
    (scan,) = walk(plan).seq_scans
    assert scan.sort_keys == ("posts.user_id",) and scan.limited and scan.rows == 1000 * parallel_divisor(2) == 2400
    joined = [
        {
            "Plan": {
                "Node Type": "Limit",
                "Plans": [
                    {
                        "Node Type": "Sort",
                        "Sort Key": ["a.x"],
                        "Plans": [
                            {
                                "Node Type": "Hash Join",
                                "Plans": [
                                    {"Node Type": "Seq Scan", "Relation Name": "a", "Plan Rows": 5},
                                    {"Node Type": "Seq Scan", "Relation Name": "b", "Plan Rows": 5},
                                ],
                            }
                        ],
                    }
                ],
            }
        }
    ]
    assert all(not s.limited and not s.sort_keys for s in walk(joined).seq_scans)


def test_only_a_limit_with_a_count_wants_the_first_rows() -> None:
    from pgradar.agent.plans.advisor import wants_first_rows

    assert wants_first_rows("SELECT id FROM users ORDER BY id LIMIT $1")
    assert wants_first_rows("SELECT id FROM users ORDER BY id FETCH FIRST 10 ROWS ONLY")
    assert not wants_first_rows("SELECT payload FROM wide ORDER BY payload OFFSET 59999")
    assert not wants_first_rows("SELECT payload FROM wide ORDER BY payload LIMIT ALL")
