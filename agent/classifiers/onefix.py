"""One cause, one fix (DESIGN 3.2): the index recommendations of a table merged into the fewest indexes.

seq_scan (from plans and from table counters) and missing_fk_index each
propose indexes for a table on their own. Run as printed, two of them could
build an index that pgradar then reports as a duplicate (the demo: seq_scan
proposed ``orders (customer_id, id)``, missing_fk_index ``orders
(customer_id)``). This pass runs after every classifier: it gathers every
candidate of a table, keeps the ones no other candidate serves, and turns the
others into a pointer to the index that serves them, so each index is
recommended once and running every recommendation builds no duplicate.

Which candidate serves which is ``indexmerge``; of equal keys, one with
INCLUDE columns is kept (it serves the others too), and a candidate the
plans collector found the merged index does not serve (hypopg) stays alone.

A finding takes part by carrying ``evidence["index_candidates"]``: a list of
``{"columns", "equality", "partitioned", "sql", "comment"}``, one per index
it recommends; its recommendation is those ``sql`` texts joined by lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from pgradar.agent.classifiers.fixes import create_index_sql
from pgradar.agent.derive import indexmerge
from pgradar.agent.model.findings import Finding, Kind, qualified

# who keeps an index when two candidates are the same: a verified plan finding first
_KIND_RANK = {Kind.SEQ_SCAN: 0, Kind.NON_SARGABLE_PREDICATE: 1, Kind.MISSING_FK_INDEX: 2}


@dataclass(slots=True)
class _Candidate(indexmerge.Candidate):
    finding: int = 0  # position in the findings
    slot: int = 0  # position in its finding's candidates
    partitioned: bool = False
    sql: str = ""
    comment: str = ""


def _candidates(findings: Sequence[Finding]) -> dict[tuple[Any, ...], list[_Candidate]]:
    by_table: dict[tuple[Any, ...], list[_Candidate]] = defaultdict(list)
    for i, f in enumerate(findings):
        for slot, c in enumerate(f.evidence.get("index_candidates") or ()):
            by_table[(f.target, f.database, f.schema, f.relation)].append(
                _Candidate(
                    tuple(c["columns"]),
                    int(c["equality"]),
                    tuple(c.get("include") or ()),
                    bool(c.get("alone")),
                    finding=i,
                    slot=slot,
                    partitioned=bool(c["partitioned"]),
                    sql=str(c["sql"]),
                    comment=str(c.get("comment") or ""),
                )
            )
    return by_table


def _rank(findings: Sequence[Finding], c: _Candidate) -> tuple[Any, ...]:
    f = findings[c.finding]
    return (
        -len(c.columns),
        -len(c.include),
        _KIND_RANK.get(f.kind, 9),
        f.queryid is None,
        f.queryid or "",
        c.finding,
        c.slot,
    )


def merge(findings: Sequence[Finding]) -> list[_Candidate]:
    """Every candidate, each either kept (``served_by`` None) or served by a kept one."""
    out: list[_Candidate] = []
    for group in _candidates(findings).values():
        ranked: list[_Candidate] = sorted(group, key=lambda c: _rank(findings, c))
        indexmerge.merge_group(ranked)
        out.extend(group)
    return out


def _owner_name(f: Finding) -> str:
    what = f"statement {f.queryid}" if f.queryid else "the table's scans"
    return f"{f.kind} ({what})" if f.kind != Kind.MISSING_FK_INDEX else Kind.MISSING_FK_INDEX.value


def one_fix_per_table(findings: Iterable[Finding]) -> list[Finding]:
    """The findings with each index recommended once; the others point to it (see the module)."""
    found = list(findings)
    candidates = merge(found)
    if not any(c.served_by is not None or c.serves for c in candidates):
        return found
    texts: dict[int, list[str]] = {}
    served: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in candidates:
        f = found[c.finding]
        lines = texts.setdefault(c.finding, [str(x["sql"]) for x in f.evidence["index_candidates"]])
        if c.served_by is not None:
            by = cast(_Candidate, c.served_by)  # merge_group links candidates of one group only
            owner = found[by.finding]
            table = qualified(f.schema or "public", f.relation or "")
            lines[c.slot] = (
                f"-- ({', '.join(c.columns)}) is served by the index recommended for "
                f"{_owner_name(owner)} on {table}: ({', '.join(by.columns)})"
            )
            served[c.finding].append(
                {
                    "columns": list(c.columns),
                    "kind": owner.kind.value,
                    "queryid": owner.queryid,
                    "index_columns": list(by.columns),
                }
            )
        elif c.serves:
            sql = create_index_sql(f.schema or "public", f.relation or "", c.columns, c.partitioned, include=c.include)
            lines[c.slot] = sql + (f"\n{c.comment}" if c.comment else "")
    out = []
    for i, f in enumerate(found):
        if i not in texts:
            out.append(f)
            continue
        evidence = dict(f.evidence)
        if served.get(i):
            evidence["served_by"] = served[i]
        out.append(replace(f, recommendation="\n".join(texts[i]), evidence=evidence))
    return out
