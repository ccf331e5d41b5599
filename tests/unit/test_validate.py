"""The validation toolkit: both walkers report every problem at once, in a stable order, one line each."""

from __future__ import annotations

from typing import Any

from pgradar.agent.settings import validate


def test_the_schema_walker_names_every_problem_in_the_users_order() -> None:
    schema = {"b": validate.positive(int), "a": [validate.text], "c": validate.InOrder(z=validate.boolean(), y=None)}
    errors: list[str] = []
    out = validate.check({"c": {"x\ny": 1, "z": "no"}, "b": 2.0, "a": ["ok", ""], "d": 1}, schema, "", errors)
    assert errors == [
        "c.'x\\ny': unknown key (known: z, y)",  # an InOrder node lists its keys as declared
        "c.z: expected true or false, got 'no'",
        "a[1]: expected a non-empty string, got ''",
        "d: unknown key (known: a, b, c)",  # a plain dict node: sorted
    ]
    assert out["b"] == 2 and isinstance(out["b"], int)  # cleaned to the checker's type


def test_a_field_table_runs_in_its_own_order_and_knows_a_missing_key_from_null() -> None:
    seen: list[tuple[str, Any]] = []

    def record(value: Any, path: str, errors: list[str]) -> Any:
        seen.append((path, value))
        return value

    errors: list[str] = []
    raw = {"late": None, "early": 1, "bogus": 2}
    validate.unknown_keys(raw, ("early", "late", "absent"), "q", errors)
    got = validate.fields(raw, (("early", record), ("late", record), ("absent", record)), "q", errors)
    assert errors == ["q.bogus: unknown key (known: early, late, absent)"]
    assert seen == [("q.early", 1), ("q.late", None), ("q.absent", validate.MISSING)]
    assert got["absent"] is validate.MISSING
    default = validate.optional(validate.one_of(("a", "b")), "a")
    assert default(validate.MISSING, "q.on", errors) == "a" and len(errors) == 1  # no line for a missing key
    default(None, "q.on", errors)
    assert errors[-1] == "q.on: expected one of a, b, got None"


def test_positive_numbers_refuse_booleans_nan_and_fractions_where_whole() -> None:
    assert validate.is_positive(0.5) and validate.is_positive(3, int)
    assert not validate.is_positive(True) and not validate.is_positive(float("nan"))
    assert not validate.is_positive(2.5, int) and not validate.is_positive(0)
    assert validate.is_positive(float("inf")) and not validate.is_positive(float("inf"), finite=True)


def test_a_shown_value_is_one_short_line() -> None:
    assert validate.show("a\nb") == "'a\\nb'"
    assert len(validate.show("x" * 500)) == 60 and validate.show("x" * 500).endswith("...")
    assert validate.key("plain_key") == "plain_key" and validate.key(5) == "5"
