"""The merge of every rule's index advice (onefix), over generated sets of candidates.

Whatever the rules propose for a table, running every CREATE INDEX the
findings print builds no index that ``duplicate_index`` reports, no two with
one name, and an index that serves each candidate (its statement or key).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pgradar.agent.classifiers.fixes import index_candidate, key_sql
from pgradar.agent.classifiers.indexes import duplicate_pairs
from pgradar.agent.classifiers.onefix import one_fix_per_table
from pgradar.agent.derive import indexmerge
from pgradar.agent.model.catalog import IndexStat
from pgradar.agent.model.findings import Finding, Kind, Severity

KINDS = (
    Kind.SEQ_SCAN,
    Kind.MISSING_FK_INDEX,
    Kind.CORRELATED_SUBQUERY,
    Kind.OFFSET_PAGINATION,
    Kind.NON_SARGABLE_PREDICATE,
)
TABLES = ("orders", "lines")
_CREATE = re.compile(r"^CREATE INDEX (?:CONCURRENTLY )?(\S+) ON public\.(\w+) \((.*?)\)(?: INCLUDE \((.*)\))?;$")


@st.composite
def candidate(draw: st.DrawFn) -> dict[str, object]:
    table = draw(st.sampled_from(TABLES))
    kind = draw(st.sampled_from(("plain", "plain", "plain", "desc", "expression")))
    if kind == "expression":
        columns: tuple[str, ...] = (draw(st.sampled_from(("(lower(a))", "(date(b))"))),)
        equality = 0
    else:
        columns = tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True)))
        equality = draw(st.integers(0, len(columns)))
        if kind == "desc":
            columns, equality = (*columns[:-1], columns[-1] + " DESC"), 0
    include = tuple(draw(st.lists(st.sampled_from("xy"), max_size=2, unique=True))) if kind == "plain" else ()
    return index_candidate(
        "public", table, columns, equality, False, include=include, alone=draw(st.booleans()) and kind == "plain"
    )


@st.composite
def finding(draw: st.DrawFn, n: int) -> Finding:
    kind = draw(st.sampled_from(KINDS))
    cands = draw(st.lists(candidate(), min_size=1, max_size=3))
    own = str(cands[0]["relation"])
    text = "\n".join(str(c["sql"]) for c in cands) + "\n-- or rewrite the statement"
    return Finding(
        kind,
        Severity.WARNING,
        "t",
        "s",
        text,
        {"index_candidates": cands},
        database="app",
        schema="public",
        relation=None if kind == Kind.CORRELATED_SUBQUERY else own,
        queryid=None if kind == Kind.MISSING_FK_INDEX else str(n),
    )


def _built(findings: list[Finding]) -> list[IndexStat]:
    """The indexes that running every printed CREATE INDEX builds, as the indexes collector reads them."""
    out = []
    for n, line in enumerate(line for f in findings for line in f.recommendation.splitlines()):
        m = _CREATE.match(line)
        if m is None:
            assert not line.startswith("CREATE INDEX"), line
            continue
        name, table, keys, include = m.groups()
        key_items = [k.strip() for k in keys.split(", ")]
        inc = [k.strip() for k in include.split(", ")] if include else []
        definition = f"CREATE INDEX {name} ON public.{table} USING btree ({keys})" + (
            f" INCLUDE ({include})" if include else ""
        )
        out.append(
            IndexStat(
                "app", 100 + n, TABLES.index(table), "public", table, name, 0, 0, 0, 0, definition,
                "btree", False, False, True, len(key_items), [*key_items, *inc], None, None, None, None,
            )
        )  # fmt: skip
    return out


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(*(finding(i) for i in range(n)))))
def test_applying_every_recommendation_builds_no_duplicate_and_serves_every_candidate(
    findings: tuple[Finding, ...],
) -> None:
    out = one_fix_per_table(findings)
    built = _built(out)
    assert duplicate_pairs(built) == (), [i.definition for i in built]
    names = [(i.relation, i.index) for i in built]
    assert len(names) == len(set(names)), names
    for f in out:
        assert "-- or rewrite the statement" in f.recommendation  # the rest of the fix stays
    for f in findings:
        for c in f.evidence["index_candidates"]:
            keys = [[k for k in i.columns[: i.key_count]] for i in built if i.relation == c["relation"]]
            wanted = indexmerge.Candidate(tuple(key_sql(k) for k in c["columns"]), int(c["equality"]))
            assert any(indexmerge.serves(k, wanted) for k in keys), (c, keys)


def test_a_numbered_name_is_renamed_everywhere_in_a_partitioned_tables_script() -> None:
    parts = (("public", "orders_1", "public", "orders", True),)
    a = index_candidate("public", "orders", ("a",), 1, True, include=("x",), alone=True, partitions=parts)
    b = index_candidate("public", "orders", ("a",), 1, True, include=("y",), alone=True, partitions=parts)
    first, second = (
        Finding(Kind.SEQ_SCAN, Severity.WARNING, "t", "s", str(c["sql"]), {"index_candidates": [c]},
                database="app", schema="public", relation="orders", queryid=str(i))
        for i, c in enumerate((a, b))
    )  # fmt: skip
    out = one_fix_per_table([first, second])
    assert out[0] == first
    script = out[1].recommendation
    assert "CREATE INDEX orders_a_idx1 ON ONLY public.orders" in script
    assert "CREATE INDEX CONCURRENTLY orders_1_a_idx1 ON public.orders_1" in script
    assert "ALTER INDEX public.orders_a_idx1 ATTACH PARTITION public.orders_1_a_idx1" in script
    assert "orders_a_idx " not in script and "orders_a_idx;" not in script
