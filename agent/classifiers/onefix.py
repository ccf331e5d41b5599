"""One cause, one fix (DESIGN 3.2): the index recommendations of a table merged into the fewest indexes.

Every rule whose fix creates an index (seq_scan from plans and from table
counters, missing_fk_index, correlated_subquery, offset_pagination,
non_sargable_predicate's expression index) proposes indexes on its own. Run as printed, two of them could
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
``fixes.index_candidate`` entries (``{"schema", "relation", "columns",
"equality", "partitioned", "sql", "comment"}``), one per index it
recommends, each ``sql`` text written in its recommendation; the table is
the candidate's own (a correlated subquery's index is on the inner table),
else the finding's. Only those texts are replaced: the rest of the
recommendation (a rewrite, a keyset query) stays.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from pgradar.agent.classifiers.fixes import Partition, create_index_sql
from pgradar.agent.derive import indexmerge
from pgradar.agent.model.findings import Finding, Kind, qualified

# who keeps an index when two candidates are the same: a verified plan finding first
_KIND_RANK = {
    Kind.SEQ_SCAN: 0,
    Kind.NON_SARGABLE_PREDICATE: 1,
    Kind.MISSING_FK_INDEX: 2,
    Kind.CORRELATED_SUBQUERY: 3,
    Kind.OFFSET_PAGINATION: 4,
}


@dataclass(slots=True)
class _Candidate(indexmerge.Candidate):
    finding: int = 0  # position in the findings
    slot: int = 0  # position in its finding's candidates
    partitioned: bool = False
    sql: str = ""
    comment: str = ""
    schema: str = ""
    relation: str = ""
    written: tuple[str, ...] = ()  # the columns as the finding wrote them (the merge may reorder them)
    partitions: tuple[Partition, ...] = ()


def _candidates(findings: Sequence[Finding]) -> dict[tuple[Any, ...], list[_Candidate]]:
    by_table: dict[tuple[Any, ...], list[_Candidate]] = defaultdict(list)
    for i, f in enumerate(findings):
        for slot, c in enumerate(f.evidence.get("index_candidates") or ()):
            schema, relation = str(c.get("schema") or f.schema or "public"), str(c.get("relation") or f.relation)
            by_table[(f.target, f.database, schema, relation)].append(
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
                    schema=schema,
                    relation=relation,
                    written=tuple(c["columns"]),
                    partitions=tuple(cast(Partition, tuple(p)) for p in c.get("partitions") or ()),
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


_NAMED = re.compile(r'^CREATE INDEX (?:CONCURRENTLY )?("(?:[^"]|"")+"|\S+) ON ', re.MULTILINE)


def _renamed(sqls: Sequence[str]) -> list[str]:
    """The CREATE INDEX texts of one table's kept indexes, names another one already takes numbered.

    Two indexes kept apart on the same keys (their INCLUDE columns differ,
    or hypopg kept one alone) would be given one name, and the second
    CREATE INDEX would fail; the second takes a number, as PostgreSQL
    numbers the names it makes up (``orders_a_idx1``): every index a
    partitioned table's script creates takes it, in every mention.
    """
    taken: set[str] = set()
    out = []
    for sql in sqls:
        names = list(dict.fromkeys(m.group(1) for m in _NAMED.finditer(sql)))
        n = 0
        while any(_numbered(name, n) in taken for name in names):
            n += 1
        taken.update(_numbered(name, n) for name in names)
        for name in names if n else ():
            if name.startswith('"'):
                sql = sql.replace(name, _numbered(name, n))
            else:
                sql = re.sub(rf'(?<![\w"$]){re.escape(name)}(?![\w"$])', _numbered(name, n), sql)
        out.append(sql)
    return out


def _numbered(name: str, n: int) -> str:
    if n == 0:
        return name
    return f'{name[:-1]}{n}"' if name.startswith('"') else f"{name}{n}"


def _kept_sql(c: _Candidate) -> str:
    """A kept candidate's SQL: as its finding wrote it, or written again for the merge's column order."""
    if c.columns == c.written:
        return c.sql
    text = create_index_sql(c.schema, c.relation, c.columns, c.partitioned, include=c.include, partitions=c.partitions)
    return text + (f"\n{c.comment}" if c.comment else "")


def one_fix_per_table(findings: Iterable[Finding]) -> list[Finding]:
    """The findings with each index recommended once; the others point to it (see the module)."""
    found = list(findings)
    candidates = merge(found)
    by_table: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)
    for c in candidates:
        if c.served_by is None:
            by_table[(c.schema, c.relation)].append(c)
    kept_sql = {
        id(c): sql
        for group in by_table.values()
        for c, sql in zip(group, _renamed([_kept_sql(c) for c in group]), strict=True)
    }
    texts: dict[int, str] = {}
    served: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in candidates:
        f = found[c.finding]
        if c.served_by is not None:
            by = cast(_Candidate, c.served_by)  # merge_group links candidates of one group only
            owner = found[by.finding]
            text = (
                f"-- ({', '.join(c.columns)}) is served by the index recommended for "
                f"{_owner_name(owner)} on {qualified(c.schema, c.relation)}: ({', '.join(by.columns)})"
            )
            served[c.finding].append(
                {
                    "columns": list(c.columns),
                    "kind": owner.kind.value,
                    "queryid": owner.queryid,
                    "index_columns": list(by.columns),
                }
            )
        elif kept_sql[id(c)] != c.sql:
            text = kept_sql[id(c)]
        else:
            continue
        texts[c.finding] = _replaced(texts.get(c.finding, f.recommendation), c.sql, text)
    out = []
    for i, f in enumerate(found):
        if i not in texts:
            out.append(f)
            continue
        evidence = dict(f.evidence)
        if served.get(i):
            evidence["served_by"] = served[i]
        out.append(replace(f, recommendation=texts[i], evidence=evidence))
    return out


def _replaced(recommendation: str, sql: str, text: str) -> str:
    """The recommendation with one candidate's SQL replaced (appended when the finding did not print it)."""
    if sql and sql in recommendation:
        return recommendation.replace(sql, text, 1)
    return f"{recommendation}\n{text}" if recommendation else text
