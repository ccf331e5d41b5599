"""The one validation toolkit of the settings: config, ignore rules and custom query files.

Every problem a user wrote is reported at once, one line each, naming where
it is (``targets[1].dsn: ...``, ``queries.yaml: query pg_x.metrics.a.usage:
...``), so a bad deployment fails at start with lines that say what to
change, never later with a traceback (the way Patroni's ``validator.py``
checks its config). A line may end up in a log or a CI annotation, so a key
or value the user wrote is shown as its repr, cut short (``show``, ``key``):
never a raw newline.

Two walkers, both declarative:

- ``check`` walks a value against a schema node (a dict of known keys, a
  list of one node, or a checker), in the order the user wrote the keys:
  the config and the ignore rules read this way.
- ``fields`` runs a table of ``(key, checker)`` in the table's order, after
  ``unknown_keys`` has named the keys nobody knows: a custom query, whose
  later fields are named after its earlier ones, reads this way.

A checker is a function ``(value, path, errors) -> cleaned value`` that
appends what is wrong to ``errors``; ``fields`` passes ``MISSING`` for a
key that is not given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import yaml

Checker = Callable[[Any, str, list[str]], Any]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Missing:
    """A key that is not given (``None`` is a value the user can write: ``key: ~``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- how a user's value is shown in a line ----------------------------------------------


def show(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: repr (no raw newlines), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key(name: Any) -> str:
    """A mapping key as an error's path shows it: plain keys bare, any other as its short repr."""
    return name if isinstance(name, str) and _PLAIN_KEY.fullmatch(name) else show(name, 40)


def unknown_key(where: str, known: Iterable[str]) -> str:
    return f"{where}: unknown key (known: {', '.join(known)})"


def yaml_problem(path: str, exc: yaml.YAMLError) -> str:
    """A YAML error as one line naming the file and the line."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"


# --- walker 1: a schema, in the user's order ---------------------------------------------


class InOrder(dict[str, Any]):
    """A mapping node whose unknown-key line lists the known keys as declared (a plain dict: sorted)."""


def check(value: Any, node: Any, path: str, errors: list[str]) -> Any:
    """Validate ``value`` against a schema node, appending every problem found."""
    if isinstance(node, dict):
        if not isinstance(value, dict):
            errors.append(f"{path or 'config'}: expected a mapping, got {type(value).__name__}")
            return {}
        out = {}
        for name, item in value.items():
            where = f"{path}.{key(name)}" if path else key(name)
            if name not in node:
                errors.append(unknown_key(where, node if isinstance(node, InOrder) else sorted(node)))
                continue
            out[name] = check(item, node[name], where, errors)
        return out
    if isinstance(node, list):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return []
        return [check(item, node[0], f"{path}[{i}]", errors) for i, item in enumerate(value)]
    return node(value, path, errors)


# --- walker 2: a table of fields, in the table's order -----------------------------------


def unknown_keys(raw: Mapping[Any, Any], known: Collection[str], where: str, errors: list[str]) -> None:
    """One line per key of ``raw`` that is not in ``known`` (listed in ``known``'s order)."""
    for name in raw:
        if name not in known:
            errors.append(unknown_key(f"{where}.{key(name)}", known))


def fields(
    raw: Mapping[Any, Any], table: Sequence[tuple[str, Checker]], where: str, errors: list[str]
) -> dict[str, Any]:
    """Each field's checker on its value (``MISSING`` when not given), in the table's order."""
    return {name: checker(raw.get(name, MISSING), f"{where}.{name}", errors) for name, checker in table}


# --- checkers -------------------------------------------------------------------------------


def text(value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{path}: expected a non-empty string, got {show(value)}")
    return value


def is_positive(value: Any, kind: type = float, finite: bool = False) -> bool:
    """A number above zero (a whole one for ``int``); booleans are not numbers here."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and value > 0
        and (kind is not int or float(value).is_integer())
        and not (finite and value == math.inf)
    )


def positive(kind: type) -> Checker:
    """A positive number (``float``) or whole number (``int``), cleaned to that type."""

    def checker(value: Any, path: str, errors: list[str]) -> Any:
        if not is_positive(value, kind):
            errors.append(
                f"{path}: expected a positive {'whole number' if kind is int else 'number'}, got {show(value)}"
            )
            return value
        return kind(value)

    return checker


def boolean(limit: int = 60) -> Checker:
    def checker(value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {show(value, limit)}")
        return value

    return checker


def one_of(choices: Sequence[str], limit: int = 60, fold: bool = False) -> Checker:
    """One of ``choices`` (``fold``: in any case, cleaned to upper case)."""

    def checker(value: Any, path: str, errors: list[str]) -> Any:
        cleaned = value.upper() if fold and isinstance(value, str) else value
        if not isinstance(value, str) or cleaned not in choices:
            errors.append(f"{path}: expected one of {', '.join(choices)}, got {show(value, limit)}")
            return value
        return cleaned

    return checker


def optional(checker: Checker, default: Any) -> Checker:
    """``checker`` for a field that may be left out (``default`` then)."""

    def run(value: Any, path: str, errors: list[str]) -> Any:
        return default if value is MISSING else checker(value, path, errors)

    return run
