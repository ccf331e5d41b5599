"""Query structure from a normalized statement text, with sqlglot; and the index it asks for.

pg_stat_statements texts carry ``$1`` parameters. Two things make sqlglot
fail on them (DESIGN 7): ``$1,$2`` without a space reads as a dollar-quoted
string, and typed literals normalized to ``date $1`` do not parse; both are
rewritten first. Whatever still fails gives None: the caller falls back to
plan-only advice, never an exception.

Identifiers come back as PostgreSQL stores them: unquoted names folded to
lower case, quoted names as written.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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
_READ_KEYWORDS = frozenset(("select", "with", "values", "table"))
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command)


def preprocess(text: str) -> str:
    """The two rewrites that take sqlglot's parse rate from 82% to 96% on pg_stat_statements texts."""
    text = _TYPED_PARAM.sub(lambda m: f"CAST({m.group(2)} AS {m.group(1)})", text)
    return _GLUED_PARAM.sub(r" \1", text)


def parse(text: str) -> exp.Expression | None:
    """The statement's tree, or None when sqlglot cannot read it (never raises)."""
    try:
        trees = sqlglot.parse(preprocess(text), read="postgres")
    except Exception:  # sqlglot raises ParseError, TokenError and, on odd input, others
        return None
    trees = [t for t in trees if t is not None]
    return trees[0] if len(trees) == 1 else None


def leading_keyword(text: str) -> str:
    rest = _LEADING_COMMENTS.sub("", text, count=1)
    match = re.match(r"[A-Za-z]+", rest)
    return match.group(0).lower() if match else ""


@functools.lru_cache(maxsize=16384)  # a whole pg_stat_statements; see statement_text.star_sources
def is_plain_select(text: str) -> bool:
    """Safe to plan as a read: starts with SELECT/WITH/VALUES/TABLE, and no part of it writes.

    Both checks must pass: the keyword alone misses ``WITH x AS (DELETE ...)``
    and ``SELECT ... INTO``, and a text sqlglot cannot parse is planned only
    when its keyword says read and no write keyword appears in it at all.
    """
    if leading_keyword(text) not in _READ_KEYWORDS:
        return False
    tree = parse(text)
    if tree is None:
        return not re.search(
            r"\b(insert|update|delete|merge|into|for\s+(update|share|no\s+key|key))\b", text, re.IGNORECASE
        )
    writes = tree.find(*_WRITE_NODES, exp.Into, exp.Lock)
    return isinstance(tree, (exp.Query, exp.Values)) and writes is None


@functools.lru_cache(maxsize=16384)
def is_plannable(text: str) -> bool:
    """A plain read, or an UPDATE or DELETE that sqlglot reads whole and that writes nothing else.

    EXPLAIN without ANALYZE plans a write without running it, inside the
    read-only transaction (DESIGN 4): its WHERE is what the advice needs.
    A write is planned only when it parses as one UPDATE or DELETE with no
    WITH (a CTE could hide another write), so nothing unexpected is sent.
    """
    if is_plain_select(text):
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
    if not is_plannable(text) or is_plain_select(text):
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

    def renumber(node: exp.Expression) -> exp.Expression:
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

    It must be a plain read (``is_plain_select``) that sqlglot parses, with
    no ``$n`` parameter (pg_stat_statements replaced every constant with one,
    and there is no value to run it with), and call no function sqlglot does
    not know: user-defined and administrative functions (``pg_advisory_lock``,
    ``dblink``, ``set_config``, ``pg_wal_replay_pause``...) can act beyond a
    rolled-back, read-only transaction, the standard ones cannot.
    """
    if not is_plain_select(text):
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


def identifier_name(identifier: exp.Expression | None) -> str | None:
    """A name as PostgreSQL stores it: quoted as written, unquoted folded to lower case."""
    if identifier is None:
        return None
    if isinstance(identifier, exp.Identifier):
        return str(identifier.this) if identifier.quoted else str(identifier.this).lower()
    return identifier.name.lower()


@dataclass(frozen=True, slots=True)
class TableUse:
    """What one statement does with one table: the columns it filters, joins and sorts on."""

    schema: str | None
    table: str
    alias: str
    equality: tuple[str, ...] = ()
    range: tuple[str, ...] = ()
    join: tuple[str, ...] = ()
    order: tuple[str, ...] = ()


@dataclass(slots=True)
class _Use:
    schema: str | None
    table: str
    alias: str
    equality: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def add(self, kind: str, column: str) -> None:
        bucket: list[str] = getattr(self, kind)
        if column not in bucket:
            bucket.append(column)

    def frozen(self) -> TableUse:
        return TableUse(
            self.schema,
            self.table,
            self.alias,
            tuple(self.equality),
            tuple(self.range),
            tuple(self.join),
            tuple(self.order),
        )


_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)


_STATEMENTS = (exp.Select, exp.Update, exp.Delete)


def _own(node: exp.Expression, select: exp.Expression) -> bool:
    """The predicate belongs to this statement (not a subquery's) and not to one branch of an OR."""
    return node.find_ancestor(*_STATEMENTS) is select and _or_above(node, select) is None


def _or_above(node: exp.Expression, select: exp.Expression) -> exp.Expression | None:
    parent = node.parent
    while parent is not None and parent is not select:
        if isinstance(parent, exp.Or):
            return parent
        parent = parent.parent
    return None


def _column_use(column: exp.Column, uses: dict[str, _Use]) -> _Use | None:
    qualifier = identifier_name(column.args.get("table"))
    if qualifier is not None:
        return uses.get(qualifier)
    return next(iter(uses.values())) if len(uses) == 1 else None  # unqualified: only when one table


def _columns_compared(node: exp.Expression) -> list[tuple[exp.Column, bool]]:
    """The columns a predicate compares against a value (False) or against another column (True)."""
    sides = [node.this, node.args.get("expression")]
    if isinstance(node, exp.In):  # a list of values; IN (SELECT ...) is a join, planned as one
        return [(node.this, False)] if isinstance(node.this, exp.Column) and not node.args.get("query") else []
    if isinstance(node, exp.Between):
        return [(node.this, False)] if isinstance(node.this, exp.Column) else []
    columns = [s for s in sides if isinstance(s, exp.Column)]
    if len(columns) == 2:
        return [(c, True) for c in columns]
    return [(c, False) for c in columns if not any(isinstance(s, exp.Column) for s in sides if s is not c)]


def _order_column(ordered: exp.Expression, select: exp.Expression) -> exp.Column | None:
    """The column an ORDER BY item sorts on: itself, or the output column its ordinal or alias names."""
    outputs = select.expressions if isinstance(select, exp.Select) else []
    if isinstance(ordered, exp.Literal) and not ordered.is_string and ordered.name.isdigit():
        n = int(ordered.name)
        ordered = outputs[n - 1] if 0 < n <= len(outputs) else ordered
    elif isinstance(ordered, exp.Column) and ordered.args.get("table") is None:
        named = next((o for o in outputs if isinstance(o, exp.Alias) and o.alias == ordered.name), None)
        ordered = named if named is not None else ordered
    if isinstance(ordered, exp.Alias):
        ordered = ordered.this
    return ordered if isinstance(ordered, exp.Column) else None


def _scan_select(select: exp.Expression, found: list[_Use]) -> None:
    uses: dict[str, _Use] = {}
    tables = [
        *(j.this for j in select.args.get("joins") or ()),
        *([select.args["from_"].this] if select.args.get("from_") else []),
    ]
    if isinstance(select, (exp.Update, exp.Delete)):  # the written table, then FROM / USING
        tables = [select.this, *(select.args.get("using") or ()), *tables]
    for table in tables:
        if isinstance(table, exp.Table) and table.name:
            name = str(identifier_name(table.this))
            alias = identifier_name(table.args["alias"].this) if table.args.get("alias") else name
            use = _Use(identifier_name(table.args.get("db")), name, str(alias))
            uses[use.alias] = use
    where = select.args.get("where")
    conditions: list[exp.Expression] = [where] if where is not None else []
    conditions += [j.args["on"] for j in select.args.get("joins") or () if j.args.get("on") is not None]
    for condition in conditions:
        for node in condition.find_all(exp.EQ, exp.In, *_RANGE, bfs=False):  # in the order written
            if not _own(node, select):
                continue
            for column, joined in _columns_compared(node):
                use = _column_use(column, uses)
                if use is not None:
                    kind = "join" if joined else ("range" if isinstance(node, _RANGE) else "equality")
                    use.add(kind, str(identifier_name(column.this)))
    order = select.args.get("order")
    directions = {bool(o.args.get("desc")) for o in order.expressions} if order is not None else set()
    if order is not None and len(directions) == 1:  # mixed ASC/DESC: a plain index serves neither way
        for ordered in order.expressions:
            column = _order_column(ordered.this, select)
            if column is not None and (use := _column_use(column, uses)) is not None:
                use.add("order", str(identifier_name(column.this)))
    found.extend(uses.values())


@functools.lru_cache(maxsize=16384)
def table_uses(text: str) -> tuple[TableUse, ...] | None:
    """Per table reference: equality, range, join and ORDER BY columns; None if unparsable.

    Cached by text: the classifiers ask again on every pass, and a text's
    structure never changes.
    """
    tree = parse(text)
    if tree is None:
        return None
    found: list[_Use] = []
    try:
        for select in tree.find_all(*_STATEMENTS):
            _scan_select(select, found)
    except Exception:  # an unexpected tree shape: no advice rather than a failed cycle
        return None
    return tuple(u.frozen() for u in found)


MAX_INDEX_COLUMNS = 4


def propose_index(use: TableUse) -> tuple[str, ...]:
    """Equality columns, then one range column, then the sort columns when there is no range.

    A btree serves equality on any leading columns, then one range; sort
    columns help only right after equalities. Join keys stand in for
    equality only when the table has no filter of its own (the inner side
    of a nested loop probes it by the key).
    """
    columns = list(use.equality) or ([] if use.range else list(use.join))
    if use.range:
        columns.append(use.range[0])
    elif use.order:
        columns += [c for c in use.order if c not in columns]
    return tuple(dict.fromkeys(columns))[:MAX_INDEX_COLUMNS]


def equality_count(use: TableUse) -> int:
    """How many leading columns of ``propose_index(use)`` are compared for equality (any order serves)."""
    columns = propose_index(use)
    equal = list(use.equality) or ([] if use.range else list(use.join))
    return sum(1 for c in columns[: len(equal)] if c in equal)


def _text_casts_unwrapped(tree: exp.Expression) -> exp.Expression:
    """``(o.status)::text`` as ``o.status``: the plan spells a varchar column compared with text so.

    A cast to text of a varchar or char column changes no value and the
    index still serves it; casts to any other type (``(created)::date``)
    are functions of the column, kept as they are.
    """

    def unwrap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Cast) and node.to.this in (exp.DataType.Type.TEXT,):
            inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
            if isinstance(inner, exp.Column):
                return inner
        return node

    return tree.transform(unwrap)


@functools.lru_cache(maxsize=4096)
def plan_use(
    schema: str | None, relation: str, alias: str | None, filter_text: str | None, sort_keys: tuple[str, ...] = ()
) -> TableUse | None:
    """What a plan's scan node filters and sorts on, as a TableUse of the base table it scans.

    EXPLAIN VERBOSE names the base table and its columns whatever the
    statement's text went through (a view, an inlined CTE, a subquery, an
    ``ORDER BY 1`` or an alias): its filter and sort keys, read as the
    WHERE and ORDER BY of a statement on that table, give the columns.
    """
    table = f"{_ident(schema)}.{_ident(relation)}" if schema else _ident(relation)
    text = f"SELECT 1 FROM {table} AS {_ident(alias or relation)}"
    if filter_text:
        text += f" WHERE {filter_text}"
    if sort_keys:
        text += " ORDER BY " + ", ".join(sort_keys)
    tree = parse(text)
    if tree is None:
        return None
    found: list[_Use] = []
    try:
        _scan_select(_text_casts_unwrapped(tree), found)
    except Exception:  # an unexpected tree shape: no advice rather than a failed cycle
        return None
    return found[0].frozen() if found else None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def covered_by(proposal: Sequence[str], existing: Sequence[Sequence[str]], equality: int) -> bool:
    """An existing index leads with the proposal (its first ``equality`` columns in any order)."""
    n = len(proposal)
    for keys in existing:
        lead = list(keys[:n])
        if (
            len(lead) == n
            and set(lead[:equality]) == set(proposal[:equality])
            and lead[equality:] == list(proposal[equality:])
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Paging:
    """How the outermost query of a statement bounds its result (query-pattern rules).

    ``limit`` and ``offset`` are the clause's text (``$1``, ``20``) or None;
    ``FETCH FIRST n ROWS`` counts as a limit. ``order`` is the ORDER BY as
    written (a column with ``DESC`` when descending), ``tables`` the tables
    of the outermost FROM and joins, ``aggregated`` whether it groups or
    aggregates (its rows are already a summary).
    """

    limit: str | None
    offset: str | None
    order: tuple[str, ...]
    tables: tuple[tuple[str | None, str], ...]
    aggregated: bool
    where: str | None


@functools.lru_cache(maxsize=16384)
def paging(text: str) -> Paging | None:
    """The outermost query's LIMIT, OFFSET, ORDER BY and tables; None when unparsable or not a query."""
    tree = parse(text)
    if not isinstance(tree, exp.Query):
        return None
    try:
        limit, offset = tree.args.get("limit"), tree.args.get("offset")
        order = tree.args.get("order")
        keys = tuple(
            o.this.sql(dialect="postgres", comments=False) + (" DESC" if o.args.get("desc") else "")
            for o in (order.expressions if order is not None else ())
        )
        tables: list[tuple[str | None, str]] = []
        aggregated = False
        where = None
        if isinstance(tree, exp.Select):
            sources = ([tree.args["from_"].this] if tree.args.get("from_") else []) + [
                j.this for j in tree.args.get("joins") or ()
            ]
            for source in sources:
                if isinstance(source, exp.Table) and source.name:
                    tables.append((identifier_name(source.args.get("db")), str(identifier_name(source.this))))
            aggregated = tree.args.get("group") is not None or any(
                e.find(exp.AggFunc) is not None and e.find(exp.Window) is None for e in tree.expressions
            )
            if tree.args.get("where") is not None:
                where = tree.args["where"].this.sql(dialect="postgres", comments=False)
        value = (
            limit.expression
            if isinstance(limit, exp.Limit)
            else (limit.args.get("count") if isinstance(limit, exp.Fetch) else None)
        )
        off = offset.expression if isinstance(offset, exp.Offset) else None

        def text(node: exp.Expression | None) -> str | None:
            return node.sql(dialect="postgres", comments=False) if node is not None else None

        return Paging(
            text(value) or ("ALL" if limit is not None else None), text(off), keys, tuple(tables), aggregated, where
        )
    except Exception:  # an unexpected tree shape: no judgement rather than a failed cycle
        return None
