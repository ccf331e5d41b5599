"""The statement shapes read with sqlglot, as data (fixtures/index_advice.txt, fixtures/non_sargable.txt):
the rewrites of normalized texts, which statements are reads, index proposals, paging, star sources and
non-sargable predicates; and that no other module of the package imports sqlglot."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import text_cases

from pgradar.agent import sqlshape
from pgradar.agent.sqlshape import kind

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("agent", "commands", "exporters", "dashboards", "alerts")


# --- the texts ------------------------------------------------------------------------------


def test_statement_text_helpers() -> None:
    assert (
        sqlshape.preprocess("SELECT * FROM t WHERE a IN ($1,$2) AND d > date $3")
        == "SELECT * FROM t WHERE a IN ($1, $2) AND d > CAST($3 AS date)"
    )
    assert sqlshape.group_key("SELECT a\n  FROM t;") == sqlshape.group_key("select a from t")
    assert sqlshape.is_read("WITH x AS (SELECT 1) SELECT * FROM x")
    assert not sqlshape.is_read("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x")
    assert not sqlshape.is_read("SELECT * INTO copy FROM t")
    assert sqlshape.is_dml("UPDATE t SET a = $1") and not sqlshape.is_dml("CREATE INDEX i ON t (a)")
    assert not sqlshape.is_dml("")
    assert [s.relation for s in sqlshape.star_sources("SELECT * FROM a JOIN b USING (id)")] == ["a", "b"]
    assert sqlshape.star_sources("not sql at all (((") == ()


# --- which statements are reads ---------------------------------------------------------------

# (text, is_dml, is_read, is_plain_read, is_plannable). The comments say where the answers of the
# keyword and regex checks the statement rules used before differed: a query head read after
# whitespace and "(" only, and a read as "select" without " into ", or "with" and no write word.
READS = [
    ("SELECT 1", True, True, True, True),
    ("  /* app */ select * from t where a = $1", True, True, True, True),  # was no query, no read: the comment
    ("-- tag\nSELECT a FROM t", True, True, True, True),  # was no query, no read: the comment
    ("select*from t", True, True, True, True),  # was no query: the head was "select*from"
    ("(SELECT a FROM t) UNION (SELECT b FROM u)", True, True, True, True),
    ("WITH x AS (SELECT 1) SELECT * FROM x", True, True, True, True),
    ("WITH x AS (SELECT last_update FROM t) SELECT * FROM x", True, True, True, True),
    ("VALUES ($1,$2)", True, True, True, True),  # was no read
    ("TABLE t", True, True, True, True),  # was no read
    ("SELECT * FROM t FOR UPDATE", True, True, False, False),  # a read that locks: never planned
    ("SELECT * FROM jobs ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", True, True, False, False),
    ("SELECT * FROM t FOR NO KEY UPDATE", True, True, False, False),
    ("SELECT * FROM t WHERE x ~~~ $1 FOR SHARE", True, True, False, False),  # unparsable
    ("WITH gone AS (DELETE FROM t WHERE id = $1 RETURNING id) SELECT count(*) FROM gone", True, False, False, False),
    ("WITH x AS (UPDATE t SET a = $1 RETURNING *) SELECT * FROM x", True, False, False, False),
    ("SELECT * INTO t2 FROM t", True, False, False, False),
    ("SELECT *\nINTO t2 FROM t", True, False, False, False),
    ("WITH x AS (SELECT 1) SELECT * INTO t2 FROM x", True, False, False, False),  # was a read: INTO after WITH
    ("UPDATE t SET a = $1 WHERE id = $2", True, False, False, True),
    ("UPDATE t SET a = $1", True, False, False, True),
    ("WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x)", True, False, False, False),
    ("INSERT INTO t SELECT * FROM u", True, False, False, False),
    ("MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", True, False, False, False),
    ("DELETE FROM t", True, False, False, True),
    ("CREATE TABLE t (a int)", False, False, False, False),
    ("CREATE INDEX i ON t (a)", False, False, False, False),
    ("VACUUM t", False, False, False, False),
    ("ANALYZE t", False, False, False, False),
    ("", False, False, False, False),
    ("SELECT * FROM t WHERE x ~~~ $1 INSERT", True, False, False, False),  # unparsable, a write word: no read
]


@pytest.mark.parametrize(("text", "dml", "read", "plain", "plannable"), READS, ids=[r[0][:40] for r in READS])
def test_which_statements_are_reads(text: str, dml: bool, read: bool, plain: bool, plannable: bool) -> None:
    got = (sqlshape.is_dml(text), sqlshape.is_read(text), sqlshape.is_plain_read(text), sqlshape.is_plannable(text))
    assert got == (dml, read, plain, plannable)


def _read_texts() -> list[str]:
    """Every read of the cases above and of the fixtures: the corpus both ways of answering must agree on."""
    texts = [r[0] for r in READS]
    for fixture in ("index_advice.txt", "non_sargable.txt"):
        texts += [text for text, _ in text_cases(FIXTURES / fixture)]
    return [t for t in texts if sqlshape.leading_keyword(t) in {"select", "with", "values", "table"}]


def test_a_read_without_write_or_lock_words_is_answered_without_a_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _read_texts()
    assert len(texts) > 60
    for text in texts:
        assert sqlshape.read_kind.__wrapped__(text) == sqlshape.parsed_read_kind(text), text

    def no_parse(text: str) -> None:
        raise AssertionError(f"parsed {text}")

    monkeypatch.setattr(kind, "parse", no_parse)  # the name read_kind calls
    plain = "WITH x AS (SELECT a, last_updated FROM t WHERE b = $1) SELECT * FROM x ORDER BY a LIMIT $2"
    assert sqlshape.read_kind.__wrapped__(plain) == "plain read"
    with pytest.raises(AssertionError, match="parsed"):
        sqlshape.read_kind.__wrapped__("SELECT * FROM t FOR SHARE")


def test_the_leading_keyword_is_a_whole_word() -> None:
    assert sqlshape.leading_keyword("select_stars") == "select_stars"
    assert sqlshape.leading_keyword("/* app */ (select(1))") == "select"
    assert not sqlshape.is_dml("values_yaml") and not sqlshape.is_read("table_rows")


# --- index advice ---------------------------------------------------------------------------

INDEX_ADVICE = FIXTURES / "index_advice.txt"


def _index_advice_cases() -> list[tuple[str, list[str]]]:
    return text_cases(INDEX_ADVICE)


@pytest.mark.parametrize(
    ("text", "expected"), _index_advice_cases(), ids=lambda v: v[:40] if isinstance(v, str) else ""
)
def test_index_proposals(text: str, expected: list[str]) -> None:
    uses = sqlshape.table_uses(text)
    if expected == ["UNPARSABLE"]:
        assert uses is None
        return
    assert uses is not None
    got = [f"{u.table}: {', '.join(sqlshape.propose_index(u)) or '-'}" for u in uses]
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
    assert sqlshape.preprocess(text) == fixed
    assert sqlshape.parse(text) is not None


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
    assert sqlshape.is_plain_read(text) is read


def test_covered_by_existing_index() -> None:
    assert sqlshape.covered_by(("a", "b"), [["b", "a", "c"]], equality=2)
    assert not sqlshape.covered_by(("a", "b"), [["a"]], equality=2)
    assert not sqlshape.covered_by(("a", "d"), [["d", "a"]], equality=1)
    assert sqlshape.covered_by(("a",), [["x"], ["a", "z"]], equality=1)


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
    found = sqlshape.not_executable(text)
    assert (found is None) if why is None else (found is not None and why in found), found


def test_order_by_ordinal_alias_and_directions() -> None:
    (use,) = sqlshape.table_uses("SELECT user_id AS u, id FROM posts ORDER BY u, 2 LIMIT $1")
    assert use.order == ("user_id", "id") and sqlshape.propose_index(use) == ("user_id", "id")
    (mixed,) = sqlshape.table_uses("SELECT * FROM posts ORDER BY user_id, id DESC LIMIT $1")
    assert mixed.order == ()
    (either,) = sqlshape.table_uses("SELECT * FROM posts WHERE a = $1 OR b = $2")
    assert sqlshape.propose_index(either) == ()


def test_writes_are_planned_through_the_read_of_their_rows() -> None:
    assert sqlshape.is_plannable("UPDATE users SET name = $1 WHERE user_id = $2")
    assert (
        sqlshape.equivalent_read("UPDATE users SET name = $1 WHERE user_id = $2")
        == "SELECT 1 FROM users WHERE user_id = $1"
    )
    assert (
        sqlshape.equivalent_read("DELETE FROM posts p USING blogs b WHERE p.blog_id = b.id AND b.owner = $1")
        == "SELECT 1 FROM posts AS p, blogs AS b WHERE p.blog_id = b.id AND b.owner = $1"
    )
    assert not sqlshape.is_plannable("WITH x AS (SELECT 1) DELETE FROM posts WHERE id IN (SELECT * FROM x)")
    assert not sqlshape.is_plannable("INSERT INTO posts SELECT * FROM posts")
    assert sqlshape.equivalent_read("DELETE FROM posts") is None  # no WHERE: nothing to find


def test_plan_use_reads_the_base_table_columns() -> None:
    use = sqlshape.plan_use(
        "public",
        "posts",
        "p",
        "((p.user_id = $1) AND ((p.status)::text = $2) AND ((p.created)::date = $3))",
        ("p.id DESC",),
    )
    assert use is not None and use.equality == ("user_id", "status") and use.order == ("id",)


# --- paging -------------------------------------------------------------------------------------


def test_paging_reads_the_outermost_query() -> None:
    p = sqlshape.paging("SELECT id, at FROM events WHERE kind = $1 ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3")
    assert p is not None
    assert (p.limit, p.offset, p.order, p.tables) == ("$2", "$3", ("at DESC", "id DESC"), ((None, "events"),))
    assert p.where == "kind = $1" and not p.aggregated
    fetch = sqlshape.paging("SELECT a FROM s.t ORDER BY a OFFSET 5 ROWS FETCH FIRST 10 ROWS ONLY")
    assert fetch is not None and fetch.limit == "10" and fetch.offset == "5" and fetch.tables == (("s", "t"),)
    inner = sqlshape.paging("SELECT * FROM (SELECT a FROM t LIMIT 5) x")  # a LIMIT inside does not bound the result
    assert inner is not None and inner.limit is None
    grouped = sqlshape.paging("SELECT k, count(*) FROM t GROUP BY k")
    assert grouped is not None and grouped.aggregated and grouped.limit is None
    assert sqlshape.paging("not sql at all (") is None


# --- non-sargable predicates ------------------------------------------------------------------

NON_SARGABLE = FIXTURES / "non_sargable.txt"


def _non_sargable_cases() -> list[tuple[str, list[str]]]:
    return text_cases(NON_SARGABLE)


@pytest.mark.parametrize(
    ("text", "expected"), _non_sargable_cases(), ids=lambda v: v[:50] if isinstance(v, str) else ""
)
def test_predicates_read_from_texts(text: str, expected: list[str]) -> None:
    got = [
        f"{w.schema + '.' if w.schema else ''}{w.table}.{w.column} {w.shape} {w.operator} | {w.key}"
        for w in sqlshape.wrapped_predicates(text)
    ]
    assert got == ([] if expected == ["-"] else expected)


def test_fixture_has_positives_and_negatives() -> None:
    cases = _non_sargable_cases()
    assert sum(e == ["-"] for _, e in cases) >= 10 and sum(e != ["-"] for _, e in cases) >= 20


def _one(text: str) -> sqlshape.Wrapped:
    (w,) = sqlshape.wrapped_predicates(text)
    return w


@pytest.mark.parametrize(
    ("text", "column_type", "expected"),
    [
        (
            "SELECT 1 FROM e WHERE date(created_at) = $1",
            "timestamp with time zone",
            "created_at >= $1::date AND created_at < $1::date + 1",
        ),
        (
            "SELECT 1 FROM e WHERE created_at::date = $1",
            "timestamp without time zone",
            "created_at >= $1::date AND created_at < $1::date + 1",
        ),
        ("SELECT 1 FROM e WHERE date(created_at) > $1", "timestamp with time zone", "created_at >= $1::date + 1"),
        ("SELECT 1 FROM e WHERE date(created_at) >= $1", "timestamp with time zone", "created_at >= $1::date"),
        ("SELECT 1 FROM e WHERE date(created_at) < $1", "timestamp with time zone", "created_at < $1::date"),
        ("SELECT 1 FROM e WHERE date(created_at) <= $1", "timestamp with time zone", "created_at < $1::date + 1"),
        ("SELECT 1 FROM e WHERE $1 >= date(created_at)", "timestamp with time zone", "created_at < $1::date + 1"),
        (
            "SELECT 1 FROM e WHERE created_at::date BETWEEN $1 AND $2",
            "timestamp with time zone",
            "created_at >= $1::date AND created_at < $2::date + 1",
        ),
        (
            "SELECT 1 FROM e x WHERE date(x.created_at) = now() - $1",
            "timestamp with time zone",
            "x.created_at >= (CURRENT_TIMESTAMP - $1)::date AND x.created_at < (CURRENT_TIMESTAMP - $1)::date + 1",
        ),
        ("SELECT 1 FROM e WHERE date(label) = $1", "text", None),  # text to date: no range carries over
        ("SELECT 1 FROM a WHERE id::text = $1", "bigint", "id = $1::bigint"),
        ("SELECT 1 FROM a WHERE CAST(id AS text) IN ($1, $2)", "integer", "id IN ($1::integer, $2::integer)"),
        ("SELECT 1 FROM a WHERE amount::text = $1", "numeric(12,2)", "amount = $1::numeric"),
        ("SELECT 1 FROM a WHERE id::text > $1", "bigint", None),  # '10' < '9' as text: ranges do not carry over
        ("SELECT 1 FROM a WHERE id + $1 = $2", "bigint", "id = $2 - $1"),
        ("SELECT 1 FROM a WHERE id + 1 = $2", "bigint", "id = $2 - 1"),
        ("SELECT 1 FROM a WHERE $1 + id >= $2", "bigint", "id >= $2 - $1"),
        ("SELECT 1 FROM a WHERE balance - $1 < $2", "numeric", "balance < $2 + $1"),
        ("SELECT 1 FROM a WHERE qty + $1 BETWEEN $2 AND $3", "integer", "qty BETWEEN $2 - $1 AND $3 - $1"),
        ("SELECT 1 FROM a WHERE qty + $1 IN ($2, $3)", "integer", "qty IN ($2 - $1, $3 - $1)"),
        ("SELECT 1 FROM a WHERE $1 - qty = $2", "integer", None),
        ("SELECT 1 FROM a WHERE lower(email) = $1", "text", None),
        ("SELECT 1 FROM a WHERE id::text IN (SELECT ref FROM b)", "bigint", None),
    ],
)
def test_rewrites(text: str, column_type: str, expected: str | None) -> None:
    assert sqlshape.sargable_rewrite(_one(text), column_type) == expected


# What pg_get_expr(indexprs) wrote for these indexes on PostgreSQL 13 and 18 (email varchar, name text).
@pytest.mark.parametrize(
    ("index_expressions", "text"),
    [
        ("lower((email)::text)", "SELECT 1 FROM t WHERE lower(email) = $1"),
        ("lower(name)", "SELECT 1 FROM t WHERE LOWER(t.name) = $1"),
        ("(ts)::date", "SELECT 1 FROM t WHERE date(ts) = $1"),
        ("date(ts)", "SELECT 1 FROM t WHERE ts::date = $1"),
        ("date_trunc('day'::text, ts)", "SELECT 1 FROM t WHERE date_trunc($1, ts) = $2"),
        ("(id)::text", "SELECT 1 FROM t WHERE id::text = $1"),
        ("(data ->> 'k'::text)", "SELECT 1 FROM t WHERE data ->> $1 = $2"),
        ("(id + 1)", "SELECT 1 FROM t WHERE id + $1 = $2"),
        ("COALESCE(name, ''::text)", "SELECT 1 FROM t WHERE coalesce(name, $1) = $2"),
        ('upper("Mixed")', 'SELECT 1 FROM t WHERE upper("Mixed") = $1'),
        ("lower((email)::text), upper(name)", "SELECT 1 FROM t WHERE upper(name) = $1"),
    ],
)
def test_index_expressions_match_the_statement(index_expressions: str, text: str) -> None:
    assert _one(text).key in sqlshape.index_expression_keys(index_expressions)


@pytest.mark.parametrize(
    ("index_expressions", "text"),
    [
        ("upper((email)::text)", "SELECT 1 FROM t WHERE lower(email) = $1"),
        ("lower(name)", "SELECT 1 FROM t WHERE lower(email) = $1"),
        ('upper("Mixed")', "SELECT 1 FROM t WHERE upper(mixed) = $1"),
        ("(id + 1)", "SELECT 1 FROM t WHERE id - $1 = $2"),
        (None, "SELECT 1 FROM t WHERE lower(email) = $1"),
        ("this is ((( not sql", "SELECT 1 FROM t WHERE lower(email) = $1"),
    ],
)
def test_index_expressions_that_do_not_match(index_expressions: str | None, text: str) -> None:
    assert _one(text).key not in sqlshape.index_expression_keys(index_expressions)


@pytest.mark.parametrize(
    ("cast", "column", "noop"),
    [
        ("text", "character varying(100)", True),
        ("varchar", "text", True),
        ("bigint", "bigint", True),
        ("int8", "bigint", True),
        ("timestamptz", "timestamp with time zone", True),
        ("date", "date", True),
        ("text", "bigint", False),
        ("date", "timestamp with time zone", False),
        ("bigint", "integer", False),
        ("text", None, False),
        ("mytype", "mytype", False),
        ("text", "character(10)", False),
    ],
)
def test_noop_casts(cast: str, column: str | None, noop: bool) -> None:
    assert sqlshape.is_noop_cast(cast, column) is noop
