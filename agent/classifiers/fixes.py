"""SQL of the fixes that more than one family of rules recommends."""

from __future__ import annotations

from collections.abc import Sequence

from pgradar.agent.model.findings import qualified, quote_ident


def index_name_for(relation: str, columns: Sequence[str]) -> str:
    """A name in PostgreSQL's own style, cut to fit 63 bytes."""
    name = "_".join([relation, *columns, "idx"])
    return name if len(name.encode()) <= 63 else name.encode()[:59].decode(errors="ignore") + "_idx"


def create_index_sql(
    schema: str,
    relation: str,
    columns: Sequence[str],
    partitioned: bool,
    name: str | None = None,
    include: Sequence[str] = (),
) -> str:
    """CREATE INDEX for the recommendation; a partitioned table cannot take CONCURRENTLY."""
    cols = ", ".join(quote_ident(c) for c in columns)
    if include:
        cols += ") INCLUDE (" + ", ".join(quote_ident(c) for c in include)
    return create_index_on(schema, relation, cols, partitioned, name or index_name_for(relation, columns))


def create_index_on(schema: str, relation: str, keys_sql: str, partitioned: bool, name: str) -> str:
    """CREATE INDEX with keys already written as SQL (``(lower(email))`` for an expression)."""
    index = quote_ident(name)
    table = qualified(schema, relation)
    if partitioned:
        return (
            f"CREATE INDEX {index} ON {table} ({keys_sql});\n-- partitioned table: CONCURRENTLY is not supported"
            f" here; to avoid the lock, CREATE INDEX ... ON ONLY {table}, then CREATE INDEX CONCURRENTLY on"
            " each partition and ALTER INDEX ... ATTACH PARTITION"
        )
    return f"CREATE INDEX CONCURRENTLY {index} ON {table} ({keys_sql});"
