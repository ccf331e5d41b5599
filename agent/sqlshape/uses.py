"""Index advice from the text: the columns a statement filters, joins and sorts on, per table, and the index
that would serve them."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from pgradar.agent.sqlshape.text import SCOPES, parse

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
    return node.find_ancestor(*SCOPES) is select and _or_above(node, select) is None


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


def _references(select: exp.Expr) -> dict[str, _Use]:
    """The tables of one statement's own FROM, joins (and a write's target and USING), by alias."""
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
    return uses


def _scan_select(select: exp.Expr, found: list[_Use]) -> None:
    uses = _references(select)
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
        for select in tree.find_all(*SCOPES):
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


# --- lookups by key: the child statement of an N+1 -------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookup:
    """A read that fetches the rows of one key value: ``WHERE t.col = $1`` (either side, cast or not).

    ``keys`` are the (table, column) pairs the outermost query compares
    with a single parameter for equality, AND-ed (not under an OR);
    ``tables`` every table of its FROM and joins, as (schema, table). A
    batched load (``IN ($1, $2)``, ``= ANY($1)``) compares no column with a
    single parameter, so it has no keys.
    """

    tables: tuple[tuple[str | None, str], ...]
    keys: tuple[tuple[str, str], ...]


def _uncast(node: exp.Expr) -> exp.Expr:
    """The value under its casts: ``$1`` of ``$1::INTEGER`` and ``CAST($1 AS int)``."""
    node = node.unnest()
    while isinstance(node, (exp.Cast, exp.TryCast)):
        node = node.this.unnest()
    return node


def _key_comparisons(select: exp.Select) -> list[tuple[exp.Expr, exp.Column, exp.Expr]]:
    """Each ``column = parameter`` of the statement's own WHERE, AND-ed, in either order, cast or not:
    (the comparison, the column, the parameter without its casts), in the order written."""
    where = select.args.get("where")
    found = []
    for node in where.find_all(exp.EQ, bfs=False) if where is not None else ():
        if not _own(node, select):
            continue
        sides = (node.this.unnest(), node.expression.unnest())
        for column, value in (sides, sides[::-1]):
            if isinstance(column, exp.Column) and isinstance(_uncast(value), (exp.Parameter, exp.Placeholder)):
                found.append((node, column, _uncast(value)))
                break
    return found


@functools.lru_cache(maxsize=16384)
def lookup(text: str) -> Lookup | None:
    """The outermost SELECT's key lookups (``Lookup``), or None when unparsable or not a SELECT."""
    tree = parse(text)
    if not isinstance(tree, exp.Select):
        return None
    try:
        uses = _references(tree)
        keys: list[tuple[str, str]] = []
        for _, column, _ in _key_comparisons(tree):
            use = _column_use(column, uses)
            if use is not None and (key := (use.table, str(identifier_name(column.this)))) not in keys:
                keys.append(key)
        return Lookup(tuple((u.schema, u.table) for u in uses.values()), tuple(keys))
    except Exception:  # an unexpected tree shape: no judgement rather than a failed cycle
        return None


@functools.lru_cache(maxsize=4096)
def batched(text: str) -> str | None:
    """The lookup for many keys at once: its first key comparison as ``column = ANY($n)`` (an array of the
    values), the rest as written; None when the text is no key lookup.

    One statement for the rows of every parent instead of one per parent:
    what SQLAlchemy's ``selectinload`` and Django's ``prefetch_related``
    send, as an ``IN`` list.
    """
    tree = parse(text)
    if not isinstance(tree, exp.Select):
        return None
    try:
        comparisons = _key_comparisons(tree)
        if not comparisons:
            return None
        node, column, value = comparisons[0]
        node.replace(exp.EQ(this=column.copy(), expression=exp.Any(this=exp.Paren(this=value.copy()))))
        return tree.sql(dialect="postgres")
    except Exception:  # an unexpected tree shape: no rewrite rather than a failed cycle
        return None
