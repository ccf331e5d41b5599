"""SQL of the fixes that more than one family of rules recommends.

Every index a finding recommends is written here and named here
(``index_name_for``), whichever rule proposes it, and every one takes part
in the merge of ``onefix`` through ``index_candidate``: a key is a column
name, a column name and `` DESC``, or an expression in parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pgradar.agent.model.findings import qualified, quote_ident


def key_sql(key: str) -> str:
    """One key as CREATE INDEX writes it: an expression as given, a column quoted, `` DESC`` kept."""
    if key.startswith("("):
        return key
    if key.endswith(" DESC"):
        return quote_ident(key[: -len(" DESC")]) + " DESC"
    return quote_ident(key)


def _name_part(key: str) -> str:
    if key.startswith("("):
        return "_".join(re.findall(r"\w+", key))
    return key[: -len(" DESC")] + "_desc" if key.endswith(" DESC") else key


def index_name_for(relation: str, columns: Sequence[str]) -> str:
    """A name in PostgreSQL's own style, cut to fit 63 bytes."""
    name = "_".join([relation, *(_name_part(c) for c in columns), "idx"])
    return name if len(name.encode()) <= 63 else name.encode()[:59].decode(errors="ignore") + "_idx"


Partition = tuple[str, str, str, str, bool]  # schema, relation, parent schema, parent relation, leaf


def create_index_sql(
    schema: str,
    relation: str,
    columns: Sequence[str],
    partitioned: bool,
    name: str | None = None,
    include: Sequence[str] = (),
    partitions: Sequence[Partition] = (),
) -> str:
    """CREATE INDEX for the recommendation; a partitioned table cannot take CONCURRENTLY.

    With its partitions known, a partitioned table's index is the script
    PostgreSQL allows without locking writes (``partitioned_index_script``).
    """
    cols = ", ".join(key_sql(c) for c in columns)
    if include:
        cols += ") INCLUDE (" + ", ".join(quote_ident(c) for c in include)
    if partitioned and partitions:
        return partitioned_index_script(schema, relation, cols, columns, partitions, name)
    return create_index_on(schema, relation, cols, partitioned, name or index_name_for(relation, columns))


def partitioned_index_script(
    schema: str,
    relation: str,
    keys_sql: str,
    columns: Sequence[str],
    partitions: Sequence[Partition],
    name: str | None = None,
) -> str:
    """A partitioned table's index built without a lock that stops writes, one statement a line.

    ``CREATE INDEX CONCURRENTLY`` refuses a partitioned table, and a plain
    ``CREATE INDEX`` on it locks every partition against writes while it
    builds. The documented way: the index ``ON ONLY`` the table (and each
    partitioned partition), invalid until complete; the index of each leaf
    built ``CONCURRENTLY`` and attached; the parent is valid once all are.
    """
    parent_name = name or index_name_for(relation, columns)
    names = {(schema, relation): (schema, parent_name)}
    for p_schema, p_relation, *_ in partitions:
        names[(p_schema, p_relation)] = (p_schema, index_name_for(p_relation, columns))
    lines = [f"CREATE INDEX {quote_ident(parent_name)} ON ONLY {qualified(schema, relation)} ({keys_sql});"]
    lines += [
        f"CREATE INDEX {quote_ident(names[(s, r)][1])} ON ONLY {qualified(s, r)} ({keys_sql});"
        for s, r, _, _, leaf in partitions
        if not leaf
    ]
    attach = "ALTER INDEX {} ATTACH PARTITION {};"
    for s, r, ps, pr, leaf in partitions:
        if leaf:
            index = quote_ident(names[(s, r)][1])
            lines.append(f"CREATE INDEX CONCURRENTLY {index} ON {qualified(s, r)} ({keys_sql});")
            lines.append(attach.format(qualified(*names[(ps, pr)]), qualified(*names[(s, r)])))
    for s, r, ps, pr, leaf in reversed(partitions):
        if not leaf:
            lines.append(attach.format(qualified(*names[(ps, pr)]), qualified(*names[(s, r)])))
    lines.append("-- partitioned table: ON ONLY, then CONCURRENTLY per partition and ATTACH, so writes go on")
    return "\n".join(lines)


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


def index_candidate(
    schema: str,
    relation: str,
    columns: Sequence[str],
    equality: int,
    partitioned: bool,
    sql: str | None = None,
    comment: str = "",
    include: Sequence[str] = (),
    alone: bool = False,
    partitions: Sequence[Partition] = (),
) -> dict[str, object]:
    """One ``evidence["index_candidates"]`` entry: the index, its table, and the SQL the finding prints for it.

    ``sql`` defaults to ``create_index_sql`` and must appear in the finding's
    recommendation as given: ``onefix`` replaces it there when another
    finding's index serves it, or when the merge reorders its columns.
    """
    text = sql or create_index_sql(schema, relation, columns, partitioned, include=include, partitions=partitions)
    return {
        "schema": schema,
        "relation": relation,
        "columns": list(columns),
        "equality": equality,
        "partitioned": partitioned,
        "include": list(include),
        "alone": alone,
        "sql": text,
        "comment": comment,
        "partitions": [list(p) for p in partitions],
    }
