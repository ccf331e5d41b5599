"""Statements as ORMs write them (fixtures/orm_statements.json): one group key whatever the casts of
their parameters, LIMIT/OFFSET read through the casts, the key lookup of an N+1 child (a batched load
has none) and its batched rewrite, and no star in an explicit column list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgradar.agent import sqlshape

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "fixtures" / "orm_statements.json").read_text())[
    "cases"
]


@pytest.mark.parametrize("case", CASES, ids=[c["orm"] for c in CASES])
def test_orm_statement(case: dict[str, Any]) -> None:
    text = case["text"]
    for same in case.get("same_statement", ()):
        assert sqlshape.group_key(same) == sqlshape.group_key(text), same
    for other in case.get("other_statement", ()):
        assert sqlshape.group_key(other) != sqlshape.group_key(text), other
    found = sqlshape.lookup(text)
    assert found is not None
    assert [f"{table}.{column}" for table, column in found.keys] == case["lookup"]
    if "batched" in case:
        assert sqlshape.batched(text) == case["batched"]
    if "limit" in case or "offset" in case:
        shape = sqlshape.paging(text)
        assert shape is not None and (shape.limit, shape.offset) == (case.get("limit"), case.get("offset"))
    assert sqlshape.star_sources(text) == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = $1::INTEGER", "a = $1"),
        ("a = CAST($1 AS VARCHAR(200))", "a = $1"),
        ("a = $1::timestamp(3) with time zone", "a = $1"),
        ("a = $1::double precision AND b = $2::character varying(20)", "a = $1 AND b = $2"),
        ('a = $1::int[] AND b = $2::public."My Type"', "a = $1 AND b = $2"),
        ("a = CAST($1::text AS int)", "a = $1"),
        ("a::text = $1", "a::text = $1"),  # a cast of a column is the statement's own: kept
        ("lower(a) = lower($1)", "lower(a) = lower($1)"),
    ],
)
def test_uncast_drops_casts_of_parameters_only(text: str, expected: str) -> None:
    assert sqlshape.uncast(text) == expected
