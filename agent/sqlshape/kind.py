"""What a statement does: read or write, whether it can be planned, and the read to plan for a write."""

from __future__ import annotations

import functools
import re
from typing import Literal

from sqlglot import exp

from pgradar.agent.sqlshape.text import leading_keyword, parse

_READ_KEYWORDS = frozenset(("select", "with", "values", "table"))
_DML_KEYWORDS = _READ_KEYWORDS | {"insert", "update", "delete", "merge"}
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command)
_WRITES = "insert|update|delete|merge|into"
_WRITE_WORDS = re.compile(rf"\b({_WRITES})\b", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\bfor\s+(?:update|share|no\s+key\s+update|key\s+share)\b", re.IGNORECASE)
# A read that has none of these words neither writes nor locks (every lock strength says update or
# share), whatever its tree: read_kind answers it without a parse.
_MAY_WRITE_OR_LOCK = re.compile(rf"\b(?:{_WRITES}|share)\b", re.IGNORECASE)

# --- what a statement does ------------------------------------------------------------------

ReadKind = Literal["not a read", "locking read", "plain read"]


def is_dml(text: str) -> bool:
    """A query (SELECT, WITH, VALUES, TABLE, INSERT, UPDATE, DELETE, MERGE), not a utility statement.

    CREATE INDEX, ANALYZE or COPY read and sort too, by design: the statement
    rules that judge reads and sorts leave them out. Only the leading keyword
    is read (no parse): every statement of every pass is asked.
    """
    return leading_keyword(text) in _DML_KEYWORDS


# Results are small and texts stable, so the caches hold a whole pg_stat_statements
# (pg_stat_statements.max up to 10,000): a smaller LRU walked in the same order
# every classification would miss every time. Trees are not kept.
@functools.lru_cache(maxsize=16384)
def read_kind(text: str) -> ReadKind:
    """The one rule for reads: the leading keyword says read and no part of the statement writes.

    Both checks must pass: the keyword alone misses ``WITH x AS (DELETE ...)``
    and ``SELECT ... INTO``. A text sqlglot cannot parse is a read only when
    no write keyword appears in it at all. A read with ``FOR UPDATE`` or
    ``FOR SHARE`` changes no data but locks its rows: a kind of its own.
    """
    if leading_keyword(text) not in _READ_KEYWORDS:
        return "not a read"
    if _MAY_WRITE_OR_LOCK.search(text) is None:
        return "plain read"  # what the parse would say: half of a classification was parsing such texts
    return parsed_read_kind(text)


def parsed_read_kind(text: str) -> ReadKind:
    """``read_kind`` of a text that starts as a read, from its tree (or, unparsed, from its words)."""
    tree = parse(text)
    if tree is None:
        if _WRITE_WORDS.search(_ROW_LOCK.sub(" ", text)):
            return "not a read"
        return "locking read" if _ROW_LOCK.search(text) else "plain read"
    if not isinstance(tree, (exp.Query, exp.Values)) or tree.find(*_WRITE_NODES, exp.Into) is not None:
        return "not a read"
    return "locking read" if tree.find(exp.Lock) is not None else "plain read"


def is_read(text: str) -> bool:
    """Returns rows and changes no data, row-locking reads included: what the statement rules judge.

    A ``SELECT ... FOR UPDATE`` run once per row is still an N+1, and an
    unbounded or deep-OFFSET one still reads every row it returns.
    """
    return read_kind(text) != "not a read"


def is_plain_read(text: str) -> bool:
    """A read that locks no row either: safe to plan, and to run, as written inside the read-only transaction.

    A row lock needs the UPDATE privilege even under EXPLAIN, which a
    monitoring role does not have, and EXPLAIN ANALYZE would take the locks.
    """
    return read_kind(text) == "plain read"


@functools.lru_cache(maxsize=16384)
def is_plannable(text: str) -> bool:
    """A plain read, or an UPDATE or DELETE that sqlglot reads whole and that writes nothing else.

    EXPLAIN without ANALYZE plans a write without running it, inside the
    read-only transaction (DESIGN 4): its WHERE is what the advice needs.
    A write is planned only when it parses as one UPDATE or DELETE with no
    WITH (a CTE could hide another write), so nothing unexpected is sent.
    """
    if is_plain_read(text):
        return True
    if leading_keyword(text) not in ("update", "delete"):
        return False
    tree = parse(text)
    return (
        isinstance(tree, (exp.Update, exp.Delete))
        and tree.find(exp.With, exp.Insert, exp.Merge) is None
        and not any(isinstance(n, (exp.Update, exp.Delete)) for n in tree.iter_expressions() if n is not tree)
    )


@functools.lru_cache(maxsize=4096)
def equivalent_read(text: str) -> str | None:
    """``SELECT 1 FROM`` the tables an UPDATE or DELETE reads, with its WHERE: the plan its rows are found by.

    A monitoring role may read but not write the table, and PostgreSQL
    checks the write privilege even for EXPLAIN without ANALYZE: the read
    of the same rows needs SELECT only and is planned the same way.
    Parameters are renumbered ``$1..$n`` in the order they appear (a SET's
    ``$1`` is gone, and a generic plan needs every parameter's type). None
    when the text is not one UPDATE or DELETE sqlglot reads.
    """
    if not is_plannable(text) or is_plain_read(text):
        return None
    tree = parse(text)
    if not isinstance(tree, (exp.Update, exp.Delete)) or tree.args.get("where") is None:
        return None
    tables = [tree.this.copy()]
    source = tree.args.get("from_")
    if source is not None:
        tables.append(source.this.copy())
    tables += [t.copy() for t in tree.args.get("using") or ()]
    joins = [*(exp.Join(this=t) for t in tables[1:]), *(j.copy() for j in tree.args.get("joins") or ())]
    read = exp.Select(
        expressions=[exp.Literal.number(1)],
        from_=exp.From(this=tables[0]),
        joins=joins,
        where=tree.args["where"].copy(),
    )
    numbers: dict[str, int] = {}

    def renumber(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Parameter):
            n = numbers.setdefault(node.name, len(numbers) + 1)
            return exp.Parameter(this=exp.Literal.number(n))
        return node

    try:
        return read.transform(renumber).sql(dialect="postgres")
    except Exception:  # sqlglot could not write it back: no plan rather than a failed cycle
        return None


def not_executable(text: str) -> str | None:
    """Why a statement may not be run under EXPLAIN ANALYZE (which executes it), or None when it may.

    It must be a plain read (``is_plain_read``) that sqlglot parses, with
    no ``$n`` parameter (pg_stat_statements replaced every constant with one,
    and there is no value to run it with), and call no function sqlglot does
    not know: user-defined and administrative functions (``pg_advisory_lock``,
    ``dblink``, ``set_config``, ``pg_wal_replay_pause``...) can act beyond a
    rolled-back, read-only transaction, the standard ones cannot.
    """
    if not is_plain_read(text):
        return "not a plain SELECT"
    tree = parse(text)
    if tree is None:
        return "its text could not be parsed"
    if tree.find(exp.Parameter, exp.Placeholder) is not None:
        return "it has $n parameters (constants normalized by pg_stat_statements): no values to run it with"
    unknown = tree.find(exp.Anonymous)
    if unknown is not None:
        return f"it calls {unknown.name}(), a function pgradar does not run (it may act beyond the transaction)"
    return None
