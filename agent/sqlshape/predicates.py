"""Non-sargable predicates: a function or cast on an indexed column, and the rewrite that leaves the column alone."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from pgradar.agent.model.findings import quote_ident
from pgradar.agent.sqlshape.text import SCOPES, parse
from pgradar.agent.sqlshape.uses import identifier_name

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
        scope = column.find_ancestor(*SCOPES)
        while scope is not None:
            sources = self.sources(scope)
            if qualifier is not None and qualifier in sources:
                return id(scope), qualifier
            if qualifier is None and sources:
                return (id(scope), next(iter(sources))) if len(sources) == 1 else None
            scope = scope.find_ancestor(*SCOPES)
        return None

    def source(self, ref: tuple[int, str], scope: exp.Expr) -> _Source:
        walk: exp.Expr | None = scope
        while walk is not None and id(walk) != ref[0]:
            walk = walk.find_ancestor(*SCOPES)
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
            if found == ref or (found is None and column.find_ancestor(*SCOPES) is scope):
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
        for scope in tree.find_all(*SCOPES, bfs=False):
            for condition in _conditions(scope):
                for node in condition.find_all(*_COMPARISONS, bfs=False):
                    if node.find_ancestor(*SCOPES) is not scope or not _filter_path(node, condition):
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
