"""non_sargable_predicate: which index a predicate keeps from serving, and the classifier on hand-built
observations (the predicates read from texts, the rewrites and the index expressions: test_sqlshape.py)."""

from __future__ import annotations

import pytest
from factories import delta, index, interval, observation, table

from pgradar.agent.classifiers import CLASSIFIERS
from pgradar.agent.classifiers.predicates import hidden_index, non_sargable_predicate
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.sqlshape import Wrapped, wrapped_predicates

T = DEFAULT


def _one(text: str) -> Wrapped:
    (w,) = wrapped_predicates(text)
    return w


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
