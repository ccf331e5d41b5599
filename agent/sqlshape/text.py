"""The text of a statement: the rewrites that let sqlglot read normalized texts, the parse, the leading
keyword and the key that groups texts which differ only in parameters."""

from __future__ import annotations

import functools
import logging
import re

import sqlglot
from sqlglot import exp

# sqlglot logs a warning for every utility statement it reads as a Command:
# those are expected here (they are never planned), not news for the log.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_GLUED_PARAM = re.compile(r"(?<=[^\s(])(\$\d+)")
_TYPED_PARAM = re.compile(
    r"\b(date|time|timestamp|timestamptz|interval|numeric|int[248]?|bigint|smallint|text|uuid|jsonb?|inet|boolean)"
    r"\s+(\$\d+)",
    re.IGNORECASE,
)
_LEADING_COMMENTS = re.compile(r"^\s*(?:(?:--[^\n]*\n)|(?:/\*.*?\*/)|\s|\()*", re.DOTALL)
# The statements whose own FROM and WHERE a rule reads (a write is read for the rows it selects).
SCOPES = (exp.Select, exp.Update, exp.Delete)

# --- the texts ------------------------------------------------------------------------------


def preprocess(text: str) -> str:
    """The two rewrites sqlglot needs for pg_stat_statements texts: typed parameters (``int $1``) and glued ones."""
    text = _TYPED_PARAM.sub(lambda m: f"CAST({m.group(2)} AS {m.group(1)})", text)
    return _GLUED_PARAM.sub(r" \1", text)


def parse(text: str) -> exp.Expr | None:
    """The statement's tree, or None when sqlglot cannot read it (never raises)."""
    try:
        trees = sqlglot.parse(preprocess(text), read="postgres")
    except Exception:  # sqlglot raises ParseError, TokenError and, on odd input, others
        return None
    trees = [t for t in trees if t is not None]
    return trees[0] if len(trees) == 1 else None


def leading_keyword(text: str) -> str:
    """The first keyword, in lower case, after comments and opening parentheses."""
    rest = _LEADING_COMMENTS.sub("", text, count=1)
    match = re.match(r"[A-Za-z_][A-Za-z0-9_$]*", rest)  # a whole word: select_stars is no SELECT
    return match.group(0).lower() if match else ""


# A type name as a cast writes it: one word or a quoted name, schema-qualified or not, the multi-word
# SQL types, a type modifier and array brackets.
_TYPE = (
    r"(?:double\s+precision|character\s+varying|bit\s+varying"
    r"|(?:timestamp|time)(?:\s*\(\s*\d+\s*\))?\s+with(?:out)?\s+time\s+zone"
    r"|(?:\"[^\"]+\"|[a-z_][\w$]*)(?:\.(?:\"[^\"]+\"|[a-z_][\w$]*))?)"
    r"(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s*\[\s*\])*"
)
_PARAM_CAST = re.compile(rf"(\$\d+)\s*::\s*{_TYPE}", re.IGNORECASE)
_CAST_CALL = re.compile(rf"\bcast\s*\(\s*(\$\d+)\s+as\s+{_TYPE}\s*\)", re.IGNORECASE)


def uncast(text: str) -> str:
    """The text with every cast of a parameter dropped: ``$1::INTEGER`` and ``CAST($1 AS int)`` as ``$1``.

    ORMs cast their bound parameters (SQLAlchemy writes ``$1::INTEGER``,
    ``$1::VARCHAR``); the statement is the same whatever type its values
    were bound or cast with.
    """
    while True:
        stripped = _CAST_CALL.sub(r"\1", _PARAM_CAST.sub(r"\1", text))
        if stripped == text:
            return text
        text = stripped


@functools.lru_cache(maxsize=16384)  # a whole pg_stat_statements, at every pass
def group_key(text: str) -> str:
    """One key for the texts of one statement: whitespace, case and the casts of parameters aside.

    A driver that binds ints as int2/int4/int8 (psycopg 3) splits one
    statement text over several queryids, and an ORM writes the same
    statement with ``$1::INTEGER`` or ``$1::BIGINT`` as its values' types
    go; the rules judge them as one statement.
    """
    return " ".join(uncast(text).split()).rstrip(";").lower()
