"""Reading ``EXPLAIN (FORMAT JSON)`` documents: the one walker of the three plan sources.

Generic plans (never executed) give a ``PlanSummary``: the facts the plan
rules, the advisor and the shape history use. Executed plans (EXPLAIN
ANALYZE on a standby, auto_explain's in the server log) give a
``PlanSample``: estimated against actual rows per node. Both walk the tree
the same way (``nodes``), so a node the one reads the other reads too.
Everything here is pure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pgradar.agent.model.plans import PlanIndex, PlanNode, PlanSample, PlanSummary, SeqScan, SubPlanRun

SHAPE_TEXT_MAX = 500  # characters of a plan's shape as text (evidence)
MAX_NODES = 50  # per executed plan: the nodes kept (by how far off their estimate is)

Node = Mapping[str, Any]


def children(node: Node) -> tuple[Node, ...]:
    """A node's child plans; auto_explain may log ``"Plans": null``."""
    return tuple(node.get("Plans") or ())


def nodes(node: Node) -> Iterator[Node]:
    """The node and every node below it, parents before children, in plan order."""
    yield node
    for child in children(node):
        yield from nodes(child)


def root_of(explain_json: Any) -> Node:
    """The root plan node of an EXPLAIN result: the JSON text, or the list the driver decoded."""
    document = json.loads(explain_json) if isinstance(explain_json, str) else explain_json
    root: Node = document[0]["Plan"]
    return root


def _with_workers(node: Node, workers: int = 0) -> Iterator[tuple[Node, int]]:
    """Every node with the planned workers of the Gather (Merge) above it (0 outside one)."""
    workers = (
        int(node.get("Workers Planned", workers) or 0) if node.get("Node Type", "").startswith("Gather") else workers
    )
    yield node, workers
    for child in children(node):
        yield from _with_workers(child, workers)


def _shape(node: Node) -> list[Any]:
    return [
        node.get("Node Type"),
        node.get("Relation Name"),
        node.get("Index Name"),
        node.get("Join Type"),
        [_shape(c) for c in children(node)],
    ]


def _node_name(node: Node) -> str:
    name = str(node.get("Node Type", "?"))
    if node.get("Relation Name"):
        schema = node.get("Schema")
        name += f" on {schema}.{node['Relation Name']}" if schema else f" on {node['Relation Name']}"
    return name


def _shape_text(node: Node) -> str:
    """A plan's shape in one line: node type, relation, index, then the children in parentheses."""
    text = _node_name(node)
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    below = [_shape_text(c) for c in children(node)]
    return f"{text} ({'; '.join(below)})" if below else text


def _cut(text: str) -> str:
    return text[: SHAPE_TEXT_MAX - 3] + "..." if len(text) > SHAPE_TEXT_MAX else text


# nodes a sort order (and a Limit's "first rows") passes through unchanged, down to one table's scan
_ORDER_KEEPING = frozenset(
    ("Limit", "Sort", "Incremental Sort", "Gather Merge", "Gather", "Result", "Subquery Scan", "Append", "Seq Scan")
)


def _scan_contexts(
    node: Node, sort: tuple[str, ...], limited: bool, out: dict[int, tuple[tuple[str, ...], bool]]
) -> None:
    """For each Seq Scan: the sort keys and Limit right above it."""
    kind = node.get("Node Type")
    if kind not in _ORDER_KEEPING:
        sort, limited = (), False
    if kind == "Limit":
        limited = True
    elif kind in ("Sort", "Incremental Sort"):
        sort = tuple(node.get("Sort Key", ()))
    out[id(node)] = (sort, limited and bool(sort))
    for child in children(node):
        _scan_contexts(child, sort, limited, out)


def walk(explain_json: Any) -> PlanSummary:
    """The facts of an ``EXPLAIN (FORMAT JSON)`` result that the classifiers use."""
    root = root_of(explain_json)
    scans: list[SeqScan] = []
    sorts: list[str] = []
    loops = 0
    indexes: list[PlanIndex] = []
    relations: list[tuple[str | None, str]] = []
    contexts: dict[int, tuple[tuple[str, ...], bool]] = {}
    _scan_contexts(root, (), False, contexts)
    for node, workers in _with_workers(root):
        kind = node.get("Node Type")
        if kind == "Seq Scan":
            sort, limited = contexts[id(node)]
            scans.append(
                SeqScan(
                    node.get("Schema"),
                    node.get("Relation Name", ""),
                    node.get("Alias"),
                    node.get("Filter"),
                    float(node.get("Plan Rows", 0)),
                    float(node.get("Total Cost", 0)),
                    sort_keys=sort,
                    limited=limited,
                    output=tuple(node.get("Output", ())),
                    workers=workers if node.get("Parallel Aware") else 0,
                )
            )
        elif kind in ("Sort", "Incremental Sort"):
            sorts.append(", ".join(node.get("Sort Key", ())))
        elif kind == "Nested Loop":
            loops += 1
        if node.get("Relation Name"):
            relation = (node.get("Schema"), str(node["Relation Name"]))
            if relation not in relations:
                relations.append(relation)
            if node.get("Index Name"):
                used = PlanIndex(relation[0], relation[1], str(node["Index Name"]))
                if used not in indexes:
                    indexes.append(used)
    shape = hashlib.sha256(json.dumps(_shape(root)).encode()).hexdigest()[:16]
    return PlanSummary(
        float(root.get("Total Cost", 0)),
        float(root.get("Plan Rows", 0)),
        tuple(scans),
        tuple(sorts),
        loops,
        shape,
        _cut(_shape_text(root)),
        tuple(indexes),
        tuple(relations),
        float(root.get("Plan Width", 0)),
        *patterns_of(root),
        sum(int(n.get("Subplans Removed", 0)) for n in nodes(root)),
    )


def all_pruned(explain_json: Any) -> bool:
    """The plan scans nothing because every partition was pruned (``Subplans Removed``, no scan left)."""
    found = list(nodes(root_of(explain_json)))
    return any(n.get("Subplans Removed") for n in found) and not any(n.get("Relation Name") for n in found)


def index_only_scan(explain_json: Any, relation: str) -> bool:
    """The plan reads ``relation`` by an index-only scan (what a covering index is for)."""
    return any(
        n.get("Node Type") == "Index Only Scan" and n.get("Relation Name") == relation
        for n in nodes(root_of(explain_json))
    )


# --- query patterns: SubPlans and what a Limit reads -----------------------------------------

_EXPRESSIONS = (
    "Filter",
    "Join Filter",
    "Hash Cond",
    "Merge Cond",
    "Index Cond",
    "Recheck Cond",
    "One-Time Filter",
    "Output",
    "Sort Key",
    "Group Key",
)


def _subplans(node: Node, loops: float, out: list[SubPlanRun]) -> None:
    """SubPlans below ``node`` (run ``loops`` times), with the rows each is run for."""
    rows = float(node.get("Plan Rows", 0)) * loops
    expressions = " ".join(str(v) for k in _EXPRESSIONS for v in ([node[k]] if k in node else ()))
    for child in children(node):
        relationship = child.get("Parent Relationship")
        child_loops = loops
        if relationship == "SubPlan":
            name = str(child.get("Subplan Name", "SubPlan"))
            hashed = re.search(rf"hashed {re.escape(name)}(?!\d)", expressions) is not None or name.startswith("hashed")
            scans = [n for n in nodes(child) if n.get("Node Type") == "Seq Scan"]
            seq = tuple(dict.fromkeys(_node_name(n).removeprefix("Seq Scan on ") for n in scans))
            correlated = tuple(dict.fromkeys(pair for n in scans for pair in _correlated_columns(n)))
            out.append(
                SubPlanRun(name, _node_name(node), rows, hashed, float(child.get("Total Cost", 0)), seq, correlated)
            )
            child_loops = 1.0 if hashed else max(rows, 1.0)
        elif relationship == "Inner" and node.get("Node Type") == "Nested Loop":
            outer = next((c for c in children(node) if c.get("Parent Relationship") == "Outer"), None)
            child_loops = loops * max(float(outer.get("Plan Rows", 1)) if outer else 1.0, 1.0)
        _subplans(child, child_loops, out)


_COLUMN_EQUALS = re.compile(r'("(?:[^"]|"")+"|\w+)\.("(?:[^"]|"")+"|\w+) = ("(?:[^"]|"")+"|\w+)\.("(?:[^"]|"")+"|\w+)')


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _correlated_columns(scan: Node) -> Iterator[tuple[str, str]]:
    """Columns of a scan inside a SubPlan compared with a column of another alias (an outer row's), by
    VERBOSE's qualified names: ``(l.order_id = o.id)``."""
    alias, relation = scan.get("Alias"), _node_name(scan).removeprefix("Seq Scan on ")
    for m in _COLUMN_EQUALS.finditer(str(scan.get("Filter", ""))):
        left, right = _unquote(m[1]), _unquote(m[3])
        if left == alias and right != alias:
            yield relation, _unquote(m[2])
        elif right == alias and left != alias:
            yield relation, _unquote(m[4])


_PASS_THROUGH = ("Result", "Unique", "Aggregate", "Gather", "Gather Merge")


def patterns_of(root: Node) -> tuple[tuple[SubPlanRun, ...], str | None]:
    """The SubPlans of a plan, and what its outermost Limit reads (for the query-pattern rules)."""
    found: list[SubPlanRun] = []
    _subplans(root, 1.0, found)
    node: Node | None = root
    limit_input = None
    while node is not None:
        if node.get("Node Type") == "Limit":
            outer = [c for c in children(node) if c.get("Parent Relationship") == "Outer"]
            limit_input = _shape_text(outer[0]) if outer else None
            break
        if node.get("Node Type") not in _PASS_THROUGH:
            break
        node = next(iter(children(node)), None)
    return tuple(found), _cut(limit_input) if limit_input is not None else None


# --- executed plans: estimated against actual rows ---------------------------------------------

_CONDITIONS = ("Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter")


def _executed(node: Node) -> PlanNode | None:
    """One executed node, named by its relation or else the first relation below it; None if it never ran."""
    if "Actual Rows" not in node or not node.get("Actual Loops", 0):
        return None
    relation, schema = node.get("Relation Name"), node.get("Schema")
    if relation is None:
        below = next((n for c in children(node) for n in nodes(c) if n.get("Relation Name")), None)
        if below is not None:
            relation, schema = below["Relation Name"], below.get("Schema")
    return PlanNode(
        str(node.get("Node Type", "")),
        schema,
        relation,
        float(node.get("Plan Rows", 0)),
        float(node["Actual Rows"]),
        float(node["Actual Loops"]),
        next((node[k] for k in _CONDITIONS if k in node), None),
    )


def plan_sample(
    doc: Mapping[str, Any],
    queryid: int | None,
    database: str | None,
    query: str,
    duration_ms: float,
    seen_at: datetime,
    source: str = "auto_explain",
) -> PlanSample:
    """A sample from one executed plan (``{"Plan": ...}`` with actual rows), its worst estimates first."""
    executed = (n for n in map(_executed, nodes(doc["Plan"])) if n is not None)
    worst = sorted(executed, key=lambda n: -n.factor)[:MAX_NODES]
    return PlanSample(queryid, database, query[:2000], duration_ms, tuple(worst), seen_at, source)
