"""The allow list of ``pgradar check``: findings a team has accepted (``ignore:`` in the config).

A rule names a finding by any of its kind, target and object fields; a
finding matches when every field the rule gives is equal. ``relation`` may
be written ``schema.relation`` (as the finding's summary writes it). An
accepted finding is still printed (``ignored: true`` in JSON) so the
acceptance stays visible, but never counts toward the exit code.

Kept free of heavy imports: the config module reads it, and ``--help``
loads the config module.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pgradar.agent.model.findings import Finding, Kind
from pgradar.agent.settings import validate

FIELDS = ("kind", "target", "database", "schema", "relation", "index", "queryid")


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    kind: str | None = None
    target: str | None = None
    database: str | None = None
    schema: str | None = None
    relation: str | None = None
    index: str | None = None
    queryid: str | None = None  # decimal, as in the JSON

    def matches(self, finding: Finding) -> bool:
        """True when every field this rule gives equals the finding's (a field the finding lacks never does)."""
        for f in fields(self):
            wanted = getattr(self, f.name)
            if wanted is None:
                continue
            value = getattr(finding, f.name)
            if value is None or str(value) != wanted:
                return False
        return True

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name))


def _name(value: Any, where: str, errors: list[str]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        errors.append(f"{where}: expected a name, got {value!r}"[:200])
        return None
    return str(value)


_RULE = validate.InOrder(dict.fromkeys(FIELDS, _name))


def check_rule(value: Any, path: str, errors: list[str]) -> Any:
    """One ``ignore:`` entry, validated; returns an IgnoreRule (or the raw value when it has errors).

    Every problem is reported (unknown keys by name, a kind not in the kind
    list, a queryid that is not a whole number, an empty rule that would
    accept everything), as the rest of the config check does.
    """
    if not isinstance(value, dict):
        errors.append(
            f"{path}: expected a mapping such as {{kind: select_star, relation: public.colors}}, "
            f"got {type(value).__name__}"
        )
        return value
    before = len(errors)
    values: dict[str, str | None] = validate.check(value, _RULE, path, errors)
    kind = values.get("kind")
    if kind is not None and Kind.named(kind) is None:
        errors.append(f"{path}.kind: unknown kind {kind!r} (known: {', '.join(Kind)})")
    queryid = values.get("queryid")
    if queryid is not None and not queryid.lstrip("-").isdigit():
        errors.append(f"{path}.queryid: expected a whole number (the pg_stat_statements queryid), got {queryid!r}")
    if not value:
        errors.append(f"{path}: an empty rule would accept every finding; name a kind, queryid or object")
    if len(errors) > before:
        return value
    relation = values.get("relation")
    if relation is not None and "." in relation and values.get("schema") is None:
        values["schema"], values["relation"] = relation.split(".", 1)
    return IgnoreRule(**values)
