"""The text of a statement: the rewrites that let sqlglot read normalized texts, the parse, the leading
keyword and the key that groups texts which differ only in parameters."""

from __future__ import annotations

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


def group_key(text: str) -> str:
    """One key for the texts of one statement: whitespace and case of keywords aside.

    A driver that binds ints as int2/int4/int8 (psycopg 3) splits one
    statement text over several queryids; the rules judge them as one.
    Parameters are already ``$n`` in normalized texts, so the same statement
    bound with different parameter types has the same key.
    """
    return " ".join(text.split()).rstrip(";").lower()
