"""The shape of a statement's text, read with sqlglot: the one package that parses SQL.

Statement texts come from pg_stat_statements (normalized, with ``$1``
parameters), auto_explain logs and plans. Everything here is pure and
cached by text (a text's shape never changes); parse trees are not kept.
A text sqlglot cannot read gives None or nothing, never an exception: the
callers fall back to plan-only advice or stay quiet.

One module per question: ``text`` (reading a normalized text), ``kind``
(what a statement does), ``uses`` (the columns it filters, joins and sorts
on, and the index for them), ``results`` (how it bounds its result, what a
``*`` reads) and ``predicates`` (functions and casts that hide an index).
This module names the public surface the callers use.

Identifiers come back as PostgreSQL stores them: unquoted names folded to
lower case, quoted names as written.
"""

from __future__ import annotations

from pgradar.agent.sqlshape.kind import (
    ReadKind,
    equivalent_read,
    is_dml,
    is_plain_read,
    is_plannable,
    is_read,
    not_executable,
    parsed_read_kind,
    read_kind,
)
from pgradar.agent.sqlshape.predicates import (
    Wrapped,
    index_expression_keys,
    is_noop_cast,
    is_timestamptz,
    sargable_rewrite,
    wrapped_predicates,
)
from pgradar.agent.sqlshape.results import Paging, StarSource, paging, star_sources
from pgradar.agent.sqlshape.text import SCOPES, group_key, leading_keyword, parse, preprocess, uncast
from pgradar.agent.sqlshape.uses import (
    MAX_INDEX_COLUMNS,
    Lookup,
    TableUse,
    batched,
    covered_by,
    equality_count,
    identifier_name,
    lookup,
    plan_use,
    propose_index,
    table_uses,
)

__all__ = [
    "MAX_INDEX_COLUMNS",
    "SCOPES",
    "Lookup",
    "Paging",
    "ReadKind",
    "StarSource",
    "TableUse",
    "Wrapped",
    "batched",
    "covered_by",
    "equality_count",
    "equivalent_read",
    "group_key",
    "identifier_name",
    "index_expression_keys",
    "is_dml",
    "is_noop_cast",
    "is_plain_read",
    "is_plannable",
    "is_read",
    "is_timestamptz",
    "leading_keyword",
    "lookup",
    "not_executable",
    "paging",
    "parse",
    "parsed_read_kind",
    "plan_use",
    "preprocess",
    "propose_index",
    "read_kind",
    "sargable_rewrite",
    "star_sources",
    "table_uses",
    "uncast",
    "wrapped_predicates",
]
