"""sqlglot structure and index proposals, as data (tests/unit/fixtures/index_advice.txt)."""

from pathlib import Path

import pytest
from factories import text_cases

from pgradar.agent import sqlparse

FIXTURE = Path(__file__).parent / "fixtures" / "index_advice.txt"


def _cases() -> list[tuple[str, list[str]]]:
    return text_cases(FIXTURE)


@pytest.mark.parametrize(("text", "expected"), _cases(), ids=lambda v: v[:40] if isinstance(v, str) else "")
def test_index_proposals(text: str, expected: list[str]) -> None:
    uses = sqlparse.table_uses(text)
    if expected == ["UNPARSABLE"]:
        assert uses is None
        return
    assert uses is not None
    got = [f"{u.table}: {', '.join(sqlparse.propose_index(u)) or '-'}" for u in uses]
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("SELECT * FROM t WHERE a IN ($1,$2,$3)", "SELECT * FROM t WHERE a IN ($1, $2, $3)"),
        ("INSERT INTO t VALUES ($1,$2)", "INSERT INTO t VALUES ($1, $2)"),
        (
            "SELECT * FROM t WHERE d > date $1 - interval $2",
            "SELECT * FROM t WHERE d > CAST($1 AS date) - CAST($2 AS interval)",
        ),
    ],
)
def test_preprocess(text: str, fixed: str) -> None:
    assert sqlparse.preprocess(text) == fixed
    assert sqlparse.parse(text) is not None


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("SELECT 1", True),
        ("  /* app */ select * from t where a = $1", True),
        ("(SELECT a FROM t) UNION (SELECT b FROM u)", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", True),
        ("VALUES ($1,$2)", True),
        ("WITH gone AS (DELETE FROM t WHERE id = $1 RETURNING id) SELECT count(*) FROM gone", False),
        ("WITH x AS (UPDATE t SET a = $1 RETURNING *) SELECT * FROM x", False),
        ("SELECT * INTO t2 FROM t", False),
        ("SELECT * FROM t FOR UPDATE", False),
        ("UPDATE t SET a = $1", False),
        ("INSERT INTO t SELECT * FROM u", False),
        ("DELETE FROM t", False),
        ("CREATE TABLE t (a int)", False),
        ("VACUUM t", False),
        ("SELECT * FROM t WHERE x ~~~ $1 INSERT", False),  # unparsable: a write keyword anywhere refuses it
    ],
)
def test_only_plain_reads_are_planned(text: str, read: bool) -> None:
    assert sqlparse.is_plain_select(text) is read


def test_covered_by_existing_index() -> None:
    assert sqlparse.covered_by(("a", "b"), [["b", "a", "c"]], equality=2)
    assert not sqlparse.covered_by(("a", "b"), [["a"]], equality=2)
    assert not sqlparse.covered_by(("a", "d"), [["d", "a"]], equality=1)
    assert sqlparse.covered_by(("a",), [["x"], ["a", "z"]], equality=1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("SELECT count(*) FROM t WHERE a = b", None),
        ("SELECT lower(name), coalesce(a, b), count(*) FROM t WHERE created > now() GROUP BY 1, 2", None),
        ("WITH x AS (SELECT a FROM t WHERE flag) SELECT * FROM x JOIN u ON u.id = x.a", None),
        ("SELECT * FROM t WHERE a = $1", "$n parameters"),
        ("SELECT * FROM t LIMIT $1", "$n parameters"),
        ("SELECT pg_advisory_lock(id) FROM t", "calls pg_advisory_lock()"),
        ("SELECT * FROM t WHERE my_func(a)", "calls my_func()"),
        ("SELECT * FROM dblink('host=x', 'SELECT 1') AS r(a int)", "calls dblink()"),
        ("SELECT * FROM t FOR UPDATE", "not a plain SELECT"),
        ("WITH gone AS (DELETE FROM t RETURNING id) SELECT count(*) FROM gone", "not a plain SELECT"),
        ("SELECT a FROM t t1 WINDOW w AS (PARTITION BY", "could not be parsed"),
    ],
)
def test_only_parameterless_reads_of_known_functions_are_executed(text: str, why: str | None) -> None:
    found = sqlparse.not_executable(text)
    assert (found is None) if why is None else (found is not None and why in found), found
