"""What a write changes: the columns an UPDATE sets, for the cost of each index on them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from pgradar.agent.sqlshape.text import parse
from pgradar.agent.sqlshape.uses import identifier_name


@dataclass(frozen=True, slots=True)
class UpdatedColumns:
    """The table an UPDATE writes (schema None when the text does not say) and the columns its SET assigns."""

    schema: str | None
    table: str
    columns: tuple[str, ...]


@lru_cache(maxsize=4096)
def updated_columns(text: str) -> UpdatedColumns | None:
    """The columns an UPDATE statement sets, or None for any other statement or a text sqlglot cannot read.

    ``SET (a, b) = (...)`` names each column; a column written as
    ``"Mixed"`` keeps its case, an unquoted one is folded as PostgreSQL does.
    """
    tree = parse(text)
    if not isinstance(tree, exp.Update) or not isinstance(tree.this, exp.Table):
        return None
    target = tree.this
    columns: list[str] = []
    for assignment in tree.expressions:
        left = assignment.this if isinstance(assignment, exp.EQ) else None
        targets = left.expressions if isinstance(left, exp.Tuple) else [left]
        for column in targets:
            if isinstance(column, exp.Column) and (name := identifier_name(column.this)) is not None:
                columns.append(name)
    table = identifier_name(target.this)
    if table is None or not columns:
        return None
    return UpdatedColumns(identifier_name(target.args.get("db")), table, tuple(dict.fromkeys(columns)))
