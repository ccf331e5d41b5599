"""The shape of a statement's text, read with sqlglot: the one module that parses SQL.

Statement texts come from pg_stat_statements (normalized, with ``$1``
parameters), auto_explain logs and plans. Everything here is pure and
cached by text (a text's shape never changes); parse trees are not kept.
A text sqlglot cannot read gives None or nothing, never an exception: the
callers fall back to plan-only advice or stay quiet.

Two things make sqlglot fail on normalized texts (DESIGN 7): ``$1,$2``
without a space reads as a dollar-quoted string, and typed literals
normalized to ``date $1`` do not parse; ``preprocess`` rewrites both.

Identifiers come back as PostgreSQL stores them: unquoted names folded to
lower case, quoted names as written.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp

from pgradar.agent.model.findings import quote_ident

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
_DML_KEYWORDS = _READ_KEYWORDS | {"insert", "update", "delete", "merge"}
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command)
_WRITES = "insert|update|delete|merge|into"
_WRITE_WORDS = re.compile(rf"\b({_WRITES})\b", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\bfor\s+(?:update|share|no\s+key\s+update|key\s+share)\b", re.IGNORECASE)
# A read that has none of these words neither writes nor locks (every lock strength says update or
# share), whatever its tree: read_kind answers it without a parse.
_MAY_WRITE_OR_LOCK = re.compile(rf"\b(?:{_WRITES}|share)\b", re.IGNORECASE)
_SCOPES = (exp.Select, exp.Update, exp.Delete)


# --- the texts ------------------------------------------------------------------------------


def preprocess(text: str) -> str:
    """The two rewrites that take sqlglot's parse rate from 82% to 96% on pg_stat_statements texts."""
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


# --- index advice: the columns a statement filters, joins and sorts on -------------------------


def identifier_name(identifier: exp.Expr | None) -> str | None:
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


def _own(node: exp.Expr, select: exp.Expr) -> bool:
    """The predicate belongs to this statement (not a subquery's) and not to one branch of an OR."""
    return node.find_ancestor(*_SCOPES) is select and _or_above(node, select) is None


def _or_above(node: exp.Expr, select: exp.Expr) -> exp.Expr | None:
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


def _columns_compared(node: exp.Expr) -> list[tuple[exp.Column, bool]]:
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


def _order_column(ordered: exp.Expr, select: exp.Expr) -> exp.Column | None:
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


def _scan_select(select: exp.Expr, found: list[_Use]) -> None:
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
            reference = _Use(identifier_name(table.args.get("db")), name, str(alias))
            uses[reference.alias] = reference
    where = select.args.get("where")
    conditions: list[exp.Expr] = [where] if where is not None else []
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
            sort_column = _order_column(ordered.this, select)
            if sort_column is not None and (use := _column_use(sort_column, uses)) is not None:
                use.add("order", str(identifier_name(sort_column.this)))
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
        for select in tree.find_all(*_SCOPES):
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


def _text_casts_unwrapped(tree: exp.Expr) -> exp.Expr:
    """``(o.status)::text`` as ``o.status``: the plan spells a varchar column compared with text so.

    A cast to text of a varchar or char column changes no value and the
    index still serves it; casts to any other type (``(created)::date``)
    are functions of the column, kept as they are.
    """

    def unwrap(node: exp.Expr) -> exp.Expr:
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
    table = f"{_quoted(schema)}.{_quoted(relation)}" if schema else _quoted(relation)
    text = f"SELECT 1 FROM {table} AS {_quoted(alias or relation)}"
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


def _quoted(name: str) -> str:
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


# --- paging: how the outermost query bounds its result ------------------------------------------


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

        def as_sql(node: exp.Expr | None) -> str | None:
            return node.sql(dialect="postgres", comments=False) if node is not None else None

        return Paging(
            as_sql(value) or ("ALL" if limit is not None else None), as_sql(off), keys, tuple(tables), aggregated, where
        )
    except Exception:  # an unexpected tree shape: no judgement rather than a failed cycle
        return None


# --- star sources ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StarSource:
    """A table whose every column the outer SELECT returns."""

    schema: str | None
    relation: str


@functools.lru_cache(maxsize=16384)  # a whole pg_stat_statements: see read_kind
def star_sources(text: str) -> tuple[StarSource, ...]:
    """Tables expanded by ``*`` (or ``alias.*``) in the outermost SELECT list.

    ``SELECT *`` expands every table of the FROM clause and its joins;
    ``o.*`` expands the table aliased ``o``. Stars inside subqueries,
    ``count(*)`` and stars over subqueries or functions are not counted.
    """
    tree = parse(text)
    if not isinstance(tree, exp.Select):
        return ()
    tables: dict[str, exp.Table] = {}
    order: list[exp.Table] = []
    sources = []
    if tree.args.get("from_") is not None:
        sources.append(tree.args["from_"].this)
    sources += [j.this for j in tree.args.get("joins") or []]
    for source in sources:
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            tables[source.alias_or_name] = source
            order.append(source)
    found: list[exp.Table] = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star):
            found.extend(order)
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            table = tables.get(projection.table)
            if table is not None:
                found.append(table)
    seen: dict[tuple[str | None, str], StarSource] = {}
    for table in found:
        source = StarSource(table.db or None, table.name)
        seen.setdefault((source.schema, source.relation), source)
    return tuple(seen.values())


# --- non-sargable predicates ------------------------------------------------------------------
#
# ``lower(email) = $1``, ``date(created_at) = $1``, ``id::text = $1``, ``qty + 1 > $1``:
# the planner matches an index to a predicate only when the indexed expression
# stands alone on one side, so an index on ``email`` cannot serve
# ``lower(email) = $1``. ``wrapped_predicates`` names the column and its table
# reference; ``index_expression_keys`` gives keys to compare with existing
# expression indexes; ``sargable_rewrite`` leaves the column alone where an
# equivalent predicate exists.

_CONSTANTS = (exp.Parameter, exp.Placeholder, exp.Literal, exp.Null, exp.Boolean)
_OPERATORS: dict[type[exp.Expr], str] = {exp.EQ: "=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_FLIPPED = {"=": "=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
_COMPARISONS: tuple[type[exp.Expr], ...] = (*_OPERATORS, exp.Between, exp.In)
_CONNECTIVES = (exp.And, exp.Or, exp.Paren)  # a comparison under anything else (NOT, CASE, a call) is not a filter
_UNSUPPORTED = (exp.Subquery, exp.Select, exp.AggFunc, exp.Window, exp.Star, exp.Tuple, exp.Array)
# varchar <-> text is binary coercible: PostgreSQL drops such a cast and the index still serves.
_TEXTUAL = frozenset((exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR))
_TIMESTAMPS = frozenset((exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.DATE))
_PARAMETER = re.compile(r"\$\d+")

_Source = tuple[str | None, str] | None  # (schema as written, table); None: a CTE, subquery or function


@dataclass(frozen=True, slots=True)
class Wrapped:
    """One comparison whose column side is a function, cast or arithmetic over a single column."""

    schema: str | None  # as written (None: unqualified, resolved through the search path)
    table: str
    column: str  # as PostgreSQL stores it: unquoted names folded to lower case
    predicate: str  # the comparison, as sqlglot writes it back
    expression: str  # the column side as written (with its table qualifier)
    key: str  # the column side normalized: equal to the key of an index expression that serves it
    index_sql: str  # the column side for CREATE INDEX (no qualifier, identifiers quoted where needed)
    shape: str  # "function", "cast", "date" (a cast to date, or date()), "add" or "sub"
    word: str  # names the expression in an index name: the function, the cast's type, "expr"
    operator: str  # =, <, <=, >, >=, between, in (as if the column side were on the left)
    column_sql: str  # the column as written, for the rewrite
    values: tuple[str, ...] = ()  # the other side(s): one, two for BETWEEN, the list of IN
    amount: str | None = None  # add/sub: the constant added to or taken from the column
    cast_type: str | None = None  # cast/date: the type cast to

    @property
    def has_parameter(self) -> bool:
        """The expression takes a statement parameter: an index on it needs the constant in its place."""
        return bool(_PARAMETER.search(self.index_sql))


def _bare(name: str) -> exp.Column:
    return exp.Column(this=exp.Identifier(this=name, quoted=quote_ident(name) != name))


def _sources(scope: exp.Expr, ctes: frozenset[str]) -> dict[str, _Source]:
    """The table references of one SELECT, UPDATE or DELETE by the name columns use for them."""
    items: list[exp.Expr] = []
    if isinstance(scope, (exp.Update, exp.Delete)) and scope.this is not None:
        items.append(scope.this)
    if scope.args.get("from_") is not None:
        items.append(scope.args["from_"].this)
    items += [j.this for j in scope.args.get("joins") or ()]
    items += list(scope.args.get("using") or ())
    out: dict[str, _Source] = {}
    for n, item in enumerate(items):
        alias = identifier_name(item.args["alias"].this) if item.args.get("alias") is not None else None
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            name, schema = str(identifier_name(item.this)), identifier_name(item.args.get("db"))
            out[alias or name] = None if schema is None and name in ctes else (schema, name)
        else:
            out[alias or f"#{n}"] = None
    return out


class _Resolver:
    """Which table reference a column belongs to, walking out from its own scope."""

    def __init__(self, tree: exp.Expr) -> None:
        self.ctes = frozenset(
            str(identifier_name(c.args["alias"].this))
            for c in tree.find_all(exp.CTE)
            if c.args.get("alias") is not None
        )
        self._cache: dict[int, dict[str, _Source]] = {}

    def sources(self, scope: exp.Expr) -> dict[str, _Source]:
        if id(scope) not in self._cache:
            self._cache[id(scope)] = _sources(scope, self.ctes)
        return self._cache[id(scope)]

    def resolve(self, column: exp.Column) -> tuple[int, str] | None:
        """(id of the scope, reference name), or None when unknown or ambiguous."""
        qualifier = identifier_name(column.args.get("table"))
        scope = column.find_ancestor(*_SCOPES)
        while scope is not None:
            sources = self.sources(scope)
            if qualifier is not None and qualifier in sources:
                return id(scope), qualifier
            if qualifier is None and sources:
                return (id(scope), next(iter(sources))) if len(sources) == 1 else None
            scope = scope.find_ancestor(*_SCOPES)
        return None

    def source(self, ref: tuple[int, str], scope: exp.Expr) -> _Source:
        walk: exp.Expr | None = scope
        while walk is not None and id(walk) != ref[0]:
            walk = walk.find_ancestor(*_SCOPES)
        return self.sources(walk).get(ref[1]) if walk is not None else None


def _normalized(node: exp.Expr) -> exp.Expr:
    """The expression as both a statement and pg_get_expr() may write it, reduced to one form.

    Parentheses go; constants and parameters become one placeholder (the
    statement's ``$1`` is the index's ``'day'::text``); a cast of a column to
    text is dropped (PostgreSQL writes ``lower((email)::text)`` for an index
    on ``lower(email)`` over varchar); ``date(x)`` is the cast ``x::date``;
    columns lose their table qualifier.
    """
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, _CONSTANTS):
        return exp.Placeholder()
    if isinstance(node, (exp.Cast, exp.TryCast)):
        inner = node.this.unnest()
        if isinstance(inner, _CONSTANTS):
            return exp.Placeholder()
        if isinstance(inner, exp.Column) and node.to.this in _TEXTUAL:
            return _normalized(inner)
    if _is_date_call(node):
        node = exp.Cast(this=node.this, to=exp.DataType.build("date"))
    if isinstance(node, exp.Column):
        return _bare(str(identifier_name(node.this)))

    def convert(value: Any) -> Any:
        if isinstance(value, exp.Expression):
            return _normalized(value)
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return type(node)(**{k: convert(v) for k, v in node.args.items() if v is not None})


def _sql(node: exp.Expr) -> str:
    """SQL as shown to the user and run by the fixes: PostgreSQL's dialect, function names in lower case."""
    return node.sql(dialect="postgres", normalize_functions="lower")


def _key(node: exp.Expr) -> str:
    return _normalized(node).sql(dialect="postgres")


def _is_date_call(node: exp.Expr) -> bool:
    return isinstance(node, exp.Date) and not any(v for k, v in node.args.items() if k != "this")


def _index_sql(node: exp.Expr) -> str:
    def unqualify(n: exp.Expr) -> exp.Expr:
        return _bare(str(identifier_name(n.this))) if isinstance(n, exp.Column) else n

    return _sql(node.copy().transform(unqualify))


def _word(node: exp.Expr, shape: str, cast_type: str | None) -> str:
    if shape in ("cast", "date") and cast_type:
        word = cast_type
    elif isinstance(node, exp.Func):  # the name as PostgreSQL spells it: date_trunc, not TIMESTAMP_TRUNC
        word = _sql(node).split("(", 1)[0]
    else:
        word = "expr"
    word = word.lower()
    return word if re.fullmatch(r"[a-z][a-z0-9_]{0,19}", word) else "expr"


def _shape(node: exp.Expr) -> tuple[str, str | None, str | None]:
    """(shape, amount, cast_type) of a wrapped column side."""
    if isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this.unnest(), exp.Column):
        kind = "date" if node.to.this == exp.DataType.Type.DATE else "cast"
        return kind, None, node.to.sql(dialect="postgres").lower()
    if _is_date_call(node) and isinstance(node.this.unnest(), exp.Column):
        return "date", None, "date"
    if isinstance(node, (exp.Add, exp.Sub)):
        left, right = node.this.unnest(), node.expression.unnest()
        if isinstance(left, exp.Column) and not right.find(exp.Column):
            return ("add" if isinstance(node, exp.Add) else "sub"), _sql(right), None
        if isinstance(node, exp.Add) and isinstance(right, exp.Column) and not left.find(exp.Column):
            return "add", _sql(left), None
    return "function", None, None


def _filter_path(node: exp.Expr, root: exp.Expr) -> bool:
    """The comparison is a conjunct or disjunct of the condition, not inside NOT, CASE or a call."""
    walk = node
    while walk is not root:
        parent = walk.parent
        if parent is None or not isinstance(parent, _CONNECTIVES):
            return False
        walk = parent
    return True


def _conditions(scope: exp.Expr) -> list[exp.Expr]:
    out = []
    if scope.args.get("where") is not None:
        out.append(scope.args["where"].this)
    out += [j.args["on"] for j in scope.args.get("joins") or () if j.args.get("on") is not None]
    return out


def _sides(node: exp.Expr) -> list[tuple[exp.Expr, str, list[exp.Expr]]]:
    """(column side candidate, operator as if it were on the left, the other side(s))."""
    if isinstance(node, exp.Between):
        return [(node.this, "between", [node.args["low"], node.args["high"]])]
    if isinstance(node, exp.In):
        query = node.args.get("query")
        return [(node.this, "in", [query] if query is not None else list(node.expressions))]
    op = _OPERATORS[type(node)]
    return [(node.this, op, [node.expression]), (node.expression, _FLIPPED[op], [node.this])]


def _wrapped(
    resolver: _Resolver,
    scope: exp.Expr,
    node: exp.Expr,
    side: exp.Expr,
    operator: str,
    others: list[exp.Expr],
) -> Wrapped | None:
    inner = side.unnest()
    if isinstance(inner, (exp.Column, *_CONSTANTS, *_UNSUPPORTED)) or inner.find(*_UNSUPPORTED):
        return None
    columns = list(inner.find_all(exp.Column))
    refs = {resolver.resolve(c) for c in columns}
    names = {identifier_name(c.this) for c in columns}
    if not columns or None in refs or len(refs) != 1 or len(names) != 1:
        return None
    ref = refs.pop()
    assert ref is not None
    for other in others:
        for column in other.find_all(exp.Column):
            found = resolver.resolve(column)
            if found == ref or (found is None and column.find_ancestor(*_SCOPES) is scope):
                return None  # compared with the same row, or with a column of unknown origin
    source = resolver.source(ref, scope)
    if source is None:
        return None
    shape, amount, cast_type = _shape(inner)
    in_query = operator == "in" and node.args.get("query") is not None
    return Wrapped(
        schema=source[0],
        table=source[1],
        column=str(names.pop()),
        predicate=_sql(node),
        expression=_sql(inner),
        key=_key(inner),
        index_sql=_index_sql(inner),
        shape=shape,
        word=_word(inner, shape, cast_type),
        operator=operator,
        column_sql=_sql(columns[0]),
        values=() if in_query else tuple(_sql(o) for o in others),
        amount=amount,
        cast_type=cast_type,
    )


@functools.lru_cache(maxsize=16384)  # a whole pg_stat_statements: see read_kind
def wrapped_predicates(text: str) -> tuple[Wrapped, ...]:
    """Every comparison in WHERE or JOIN ON whose column side wraps one column, in the order written.

    The other side must not depend on the same table reference (``lower(a)
    = lower(b)`` of one row is no index lookup); a column whose table cannot
    be told (unqualified in a join) is left out. SELECT, UPDATE and DELETE,
    their subqueries and CTEs are read. Unparsable text: no predicates.
    """
    tree = parse(text)
    if tree is None:
        return ()
    try:
        resolver = _Resolver(tree)
        found: list[Wrapped] = []
        for scope in tree.find_all(*_SCOPES, bfs=False):
            for condition in _conditions(scope):
                for node in condition.find_all(*_COMPARISONS, bfs=False):
                    if node.find_ancestor(*_SCOPES) is not scope or not _filter_path(node, condition):
                        continue
                    for side, operator, others in _sides(node):
                        wrapped = _wrapped(resolver, scope, node, side, operator, others)
                        if wrapped is not None:
                            found.append(wrapped)
    except Exception:  # an unexpected tree shape: no advice rather than a failed cycle
        return ()
    return tuple(found)


@functools.lru_cache(maxsize=16384)
def index_expression_keys(expressions: str | None) -> tuple[str, ...]:
    """The keys of an index's expressions (``pg_get_expr(indexprs)``: comma-separated), comparable to
    ``Wrapped.key``; empty when there are none or sqlglot cannot read them."""
    if not expressions:
        return ()
    tree = parse(f"SELECT {expressions}")
    if not isinstance(tree, exp.Select):
        return ()
    try:
        return tuple(_key(e) for e in tree.expressions)
    except Exception:
        return ()


def _type(name: str | None) -> exp.DataType | None:
    if not name:
        return None
    try:
        return exp.DataType.build(name, dialect="postgres", udt=True)
    except Exception:
        return None


def is_noop_cast(cast_type: str | None, column_type: str | None) -> bool:
    """A cast PostgreSQL drops: to the column's own type, or between varchar and text."""
    to, column = _type(cast_type), _type(column_type)
    if to is None or column is None or to.this == exp.DataType.Type.USERDEFINED:
        return False
    return to.this == column.this or (to.this in _TEXTUAL and column.this in _TEXTUAL)


def is_timestamptz(column_type: str | None) -> bool:
    """Casts and date functions of timestamptz depend on the TimeZone setting: not indexable."""
    parsed = _type(column_type)
    return parsed is not None and parsed.this == exp.DataType.Type.TIMESTAMPTZ


def _typed(value: str, type_name: str) -> str:
    simple = re.fullmatch(r"\$\d+|[\w.]+|'[^']*'", value)
    return f"{value}::{type_name}" if simple else f"({value})::{type_name}"


def _grouped(value: str) -> str:
    return value if re.fullmatch(r"\$\d+|[\w.]+|'[^']*'", value) else f"({value})"


def sargable_rewrite(w: Wrapped, column_type: str | None) -> str | None:
    """The predicate with the column alone on its side, or None when there is no equivalent one.

    - ``date(ts) = $1`` (or ``ts::date``) on a timestamp, timestamptz or
      date column: ``ts >= $1::date AND ts < $1::date + 1`` (ranges alike);
    - ``id::text = $1`` (equality, IN): ``id = $1::bigint``, the column's type;
    - ``col + k = $1``: ``col = $1 - k`` (and ``col - k``: ``+ k``).
    """
    col = w.column_sql
    if not w.values:
        return None
    if w.shape == "date":
        parsed = _type(column_type)
        if parsed is None or parsed.this not in _TIMESTAMPS:
            return None
        day = [_typed(v, "date") for v in w.values]
        forms = {
            "=": f"{col} >= {day[0]} AND {col} < {day[0]} + 1",
            ">=": f"{col} >= {day[0]}",
            ">": f"{col} >= {day[0]} + 1",
            "<": f"{col} < {day[0]}",
            "<=": f"{col} < {day[0]} + 1",
            "between": f"{col} >= {day[0]} AND {col} < {day[-1]} + 1",
        }
        return forms.get(w.operator)
    if w.shape == "cast":
        if column_type is None or w.operator not in ("=", "in"):
            return None  # ordering changes with the type (text sorts '10' before '9'): ranges do not carry over
        base = re.sub(r"\(.*?\)", "", column_type).strip()
        typed = [_typed(v, base) for v in w.values]
        return f"{col} = {typed[0]}" if w.operator == "=" else f"{col} IN ({', '.join(typed)})"
    if w.shape in ("add", "sub") and w.amount is not None:
        sign = "-" if w.shape == "add" else "+"
        moved = [f"{_grouped(v)} {sign} {_grouped(w.amount)}" for v in w.values]
        if w.operator == "between":
            return f"{col} BETWEEN {moved[0]} AND {moved[1]}"
        if w.operator == "in":
            return f"{col} IN ({', '.join(moved)})"
        return f"{col} {w.operator} {moved[0]}"
    return None
