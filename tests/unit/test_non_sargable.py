"""non_sargable_predicate: the predicates read from statement texts (as data, in
tests/unit/fixtures/non_sargable.txt), the rewrites, the match with existing
index expressions, and the classifier on hand-built observations."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import delta, index, interval, observation, table, text_cases

from pgradar.agent.classifiers import CLASSIFIERS
from pgradar.agent.classifiers.predicates import hidden_index, non_sargable_predicate
from pgradar.agent.sargable import (
    index_expression_keys,
    is_noop_cast,
    rewrite,
    wrapped_predicates,
)
from pgradar.agent.thresholds import DEFAULT

T = DEFAULT
FIXTURE = Path(__file__).parent / "fixtures" / "non_sargable.txt"


def _cases() -> list[tuple[str, list[str]]]:
    return text_cases(FIXTURE)


@pytest.mark.parametrize(("text", "expected"), _cases(), ids=lambda v: v[:50] if isinstance(v, str) else "")
def test_predicates_read_from_texts(text: str, expected: list[str]) -> None:
    got = [
        f"{w.schema + '.' if w.schema else ''}{w.table}.{w.column} {w.shape} {w.operator} | {w.key}"
        for w in wrapped_predicates(text)
    ]
    assert got == ([] if expected == ["-"] else expected)


def test_fixture_has_positives_and_negatives() -> None:
    cases = _cases()
    assert sum(e == ["-"] for _, e in cases) >= 10 and sum(e != ["-"] for _, e in cases) >= 20


def _one(text: str):
    (w,) = wrapped_predicates(text)
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
    assert rewrite(_one(text), column_type) == expected


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
    assert _one(text).key in index_expression_keys(index_expressions)


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
    assert _one(text).key not in index_expression_keys(index_expressions)


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
    assert is_noop_cast(cast, column) is noop


# --- which index is hidden ----------------------------------------------------------------

LOWER = "SELECT id FROM users WHERE lower(email) = $1"


def _users_index(name: str, columns: list[str | None], **kw: object):
    kw.setdefault("column_types", ["character varying(200)" if c == "email" else None for c in columns])
    return index(name, columns, relation="users", **kw)


def test_hidden_index_leads_with_the_column() -> None:
    w = _one(LOWER)
    pkey = _users_index("users_pkey", ["id"], is_primary=True, is_unique=True)
    email = _users_index("users_email_idx", ["email"])
    second = _users_index("users_org_email_idx", ["org_id", "email"])
    hidden = hidden_index(w, [pkey, second, email])
    assert hidden is not None and hidden[0].index == "users_email_idx"
    assert hidden[1] == "character varying(200)"
    assert hidden_index(w, [pkey, second]) is None  # email only as a second key: no index to hide


@pytest.mark.parametrize("kw", [{"is_valid": False}, {"predicate": "(deleted_at IS NULL)"}, {"method": "gin"}])
def test_unusable_indexes_are_not_hidden(kw: dict[str, object]) -> None:
    assert hidden_index(_one(LOWER), [_users_index("users_email_idx", ["email"], **kw)]) is None


def test_a_hash_index_serves_equality_only() -> None:
    hashed = _users_index("users_email_hash", ["email"], method="hash")
    assert hidden_index(_one(LOWER), [hashed]) is not None
    assert hidden_index(_one("SELECT 1 FROM users WHERE lower(email) > $1"), [hashed]) is None


def test_an_expression_index_clears_it() -> None:
    email = _users_index("users_email_idx", ["email"])
    expr = _users_index("users_lower_idx", [None], expressions="lower((email)::text)")
    other = _users_index("users_upper_idx", [None], expressions="upper((email)::text)")
    assert hidden_index(_one(LOWER), [email, other]) is not None
    assert hidden_index(_one(LOWER), [email, other, expr]) is None
    invalid = _users_index("users_lower_idx", [None], expressions="lower((email)::text)", is_valid=False)
    assert hidden_index(_one(LOWER), [email, invalid]) is not None  # a failed build serves nothing


def test_casts_postgresql_drops_hide_nothing() -> None:
    email = _users_index("users_email_idx", ["email"])
    assert hidden_index(_one("SELECT 1 FROM users WHERE email::text = $1"), [email]) is None
    ident = _users_index("users_pkey", ["id"], column_types=["bigint"])
    assert hidden_index(_one("SELECT 1 FROM users WHERE id::bigint = $1"), [ident]) is None
    assert hidden_index(_one("SELECT 1 FROM users WHERE id::text = $1"), [ident]) is not None


# --- the classifier --------------------------------------------------------------------------


def _obs(
    text: str,
    calls: int = 500,
    exec_ms: float = 100.0,
    others: float = 100.0,
    indexes: tuple | None = None,
    tables: tuple | None = None,
    database: str = "app",
):
    busy = delta(1, calls=calls, exec_ms=exec_ms, database=database)
    rest = delta(2, calls=10, exec_ms=others, database=database)
    if indexes is None:
        indexes = (
            _users_index("users_pkey", ["id"], is_primary=True, is_unique=True, column_types=["bigint"]),
            _users_index("users_email_idx", ["email"]),
        )
    if tables is None:
        tables = (table("users", rows=50_000),)
    return observation(interval(busy, rest), texts={(5, 1): text, (5, 2): "SELECT 1"}, tables=tables, indexes=indexes)


def test_registered() -> None:
    assert non_sargable_predicate in CLASSIFIERS


def test_found_with_object_evidence_and_fix() -> None:
    (f,) = non_sargable_predicate(_obs(LOWER), T)
    assert (f.kind, f.severity, f.database, f.schema, f.relation, f.queryid) == (
        "non_sargable_predicate",
        "warning",
        "app",
        "public",
        "users",
        "1",
    )
    ev = f.evidence
    assert ev["predicate"] == "lower(email) = $1" and ev["column"] == "email"
    assert ev["index"] == "users_email_idx" and ev["column_type"] == "character varying(200)"
    assert ev["calls"] == 500 and ev["mean_exec_ms"] == 0.2 and ev["exec_time_share"] == 0.5
    assert ev["query"] == LOWER and ev["rewrite"] is None and ev["table_rows"] == 50_000
    assert (
        f.recommendation.splitlines()[0]
        == "CREATE INDEX CONCURRENTLY users_email_lower_idx ON public.users ((lower(email)));"
    )
    assert "citext" in f.recommendation
    assert "users_email_idx" in f.summary and "500 calls" in f.summary


def test_no_interval_or_no_indexes_snapshot() -> None:
    assert list(non_sargable_predicate(observation(), T)) == []
    obs = observation(interval(delta(1, calls=500)), texts={(5, 1): LOWER}, tables=(table("users"),))
    assert list(non_sargable_predicate(obs, T)) == []  # no indexes collected yet


def test_frequent_or_expensive_only() -> None:
    assert list(non_sargable_predicate(_obs(LOWER, calls=99, exec_ms=1, others=1000), T)) == []
    assert len(list(non_sargable_predicate(_obs(LOWER, calls=100, exec_ms=1, others=1000), T))) == 1
    # rare but costly: 5% of the interval's execution time
    assert len(list(non_sargable_predicate(_obs(LOWER, calls=3, exec_ms=50, others=950), T))) == 1
    assert list(non_sargable_predicate(_obs(LOWER, calls=3, exec_ms=49, others=951), T)) == []


def test_negatives() -> None:
    for text in (
        "SELECT id FROM users WHERE email = lower($1)",
        "SELECT id FROM users WHERE lower(name) = $1",
        "SELECT id FROM users WHERE email::text = $1",
        "this is not SQL at all (((",
        "CREATE INDEX ON users ((lower(email)))",
    ):
        assert list(non_sargable_predicate(_obs(text), T)) == [], text


def test_small_tables_are_left_alone() -> None:
    assert list(non_sargable_predicate(_obs(LOWER, tables=(table("users", rows=500),)), T)) == []
    never_analyzed = table("users", rows=-1, n_live_tup=50_000)
    assert len(list(non_sargable_predicate(_obs(LOWER, tables=(never_analyzed,)), T))) == 1
    assert len(list(non_sargable_predicate(_obs(LOWER, tables=()), T))) == 1  # unknown size: reported


def test_search_path_and_schemas() -> None:
    other = index("users_email_idx", ["email"], relation="users", schema="audit", column_types=["text"])
    both = (_users_index("users_email_idx", ["email"]), other)
    assert list(non_sargable_predicate(_obs(LOWER, indexes=both), T)) == []  # ambiguous: skipped
    (f,) = non_sargable_predicate(_obs("SELECT 1 FROM audit.users WHERE lower(email) = $1", indexes=both), T)
    assert f.schema == "audit" and f.evidence["column_type"] == "text"
    assert "ON audit.users ((lower(email)))" in f.recommendation
    assert (
        list(non_sargable_predicate(_obs("SELECT 1 FROM nowhere.users WHERE lower(email) = $1", indexes=both), T)) == []
    )
    assert list(non_sargable_predicate(_obs(LOWER, database="other"), T)) == []  # another database's table


def test_identifiers_quoted_in_the_fix() -> None:
    idx = index("Users_Email_idx", ["Email"], relation="Users", schema="Sales", column_types=["text"])
    text = 'SELECT 1 FROM "Sales"."Users" u WHERE lower(u."Email") = $1'
    (f,) = non_sargable_predicate(_obs(text, indexes=(idx,), tables=()), T)
    assert (f.schema, f.relation, f.evidence["column"]) == ("Sales", "Users", "Email")
    assert (
        f.recommendation.splitlines()[0]
        == 'CREATE INDEX CONCURRENTLY "Users_Email_lower_idx" ON "Sales"."Users" ((lower("Email")));'
    )


def test_date_on_timestamptz_is_rewritten_not_indexed() -> None:
    idx = index("events_created_at_idx", ["created_at"], relation="events", column_types=["timestamp with time zone"])
    text = "SELECT * FROM events WHERE date(created_at) = $1"
    (f,) = non_sargable_predicate(_obs(text, indexes=(idx,), tables=(table("events"),)), T)
    assert f.evidence["rewrite"] == "created_at >= $1::date AND created_at < $1::date + 1"
    assert f.recommendation.startswith("-- rewrite date(created_at) = $1 as created_at >= $1::date")
    assert "CREATE INDEX" not in f.recommendation
    extract = "SELECT * FROM events WHERE extract(year FROM created_at) = $1"
    (g,) = non_sargable_predicate(_obs(extract, indexes=(idx,), tables=(table("events"),)), T)
    assert "IMMUTABLE" in g.recommendation and "CREATE INDEX CONCURRENTLY" in g.recommendation


def test_cast_and_arithmetic_are_rewritten() -> None:
    (f,) = non_sargable_predicate(_obs("SELECT * FROM users WHERE id::text = $1"), T)
    assert f.evidence["rewrite"] == "id = $1::bigint" and f.evidence["index"] == "users_pkey"
    assert "CREATE INDEX" not in f.recommendation
    (g,) = non_sargable_predicate(_obs("SELECT * FROM users WHERE id + $1 = $2"), T)
    assert g.recommendation == "-- rewrite id + $1 = $2 as id = $2 - $1 (index users_pkey then serves it)"
    # no rewrite for a range over text: the expression index, with the caveat on casts
    (h,) = non_sargable_predicate(_obs("SELECT * FROM users WHERE id::text > $1"), T)
    assert (
        h.recommendation.splitlines()[0]
        == "CREATE INDEX CONCURRENTLY users_id_text_idx ON public.users ((CAST(id AS TEXT)));"
    )
    assert "IMMUTABLE" in h.recommendation and h.evidence["rewrite"] is None


def test_a_parameter_in_the_expression_is_flagged() -> None:
    (f,) = non_sargable_predicate(_obs("SELECT * FROM users WHERE coalesce(email, $1) = $2"), T)
    assert "((coalesce(email, $1)))" in f.recommendation and "in place of each $n" in f.recommendation


def test_one_finding_per_statement_and_table() -> None:
    text = (
        "SELECT * FROM users u JOIN users v ON v.id = u.id + $3 "
        "WHERE lower(u.email) = $1 AND upper(u.email) = $2 AND lower(v.email) = $4"
    )
    (f,) = non_sargable_predicate(_obs(text), T)
    assert [(p["predicate"], p["index"], p["rewrite"]) for p in f.evidence["predicates"]] == [
        ("lower(u.email) = $1", "users_email_idx", None),
        ("upper(u.email) = $2", "users_email_idx", None),
        ("v.id = u.id + $3", "users_pkey", "u.id = v.id - $3"),
    ]  # lower(v.email): the same expression
    assert sum(line.startswith("CREATE INDEX") for line in f.recommendation.splitlines()) == 2  # lower, upper
    assert "(and 2 more predicates)" in f.summary


def test_partitioned_table_through_its_partitions_indexes() -> None:
    parts = tuple(
        index(
            f"m{n}_email_idx",
            ["email"],
            relation=f"m{n}",
            root_schema="public",
            root_relation="m",
            root_index="m_email_idx",
            column_types=["text"],
        )
        for n in (1, 2)
    )
    (f,) = non_sargable_predicate(_obs("SELECT * FROM m WHERE lower(email) = $1", indexes=parts, tables=()), T)
    assert f.relation == "m" and f.evidence["index"] == "m_email_idx"
    assert f.recommendation.startswith(
        "CREATE INDEX m_email_lower_idx ON public.m ((lower(email)));\n-- partitioned table"
    )
