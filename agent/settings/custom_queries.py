"""Custom SQL collectors: reading, checking and naming them, and turning rows into series.

Two formats are read. pgradar's own (``custom_queries:`` in the config, or a
file whose top level is a list) names each metric by the exporter's
conventions: ``<prefix><query>_<column>`` plus ``_bytes`` or ``_seconds`` for
a unit and ``_total`` on counters. postgres_exporter's ``queries.yaml`` (a
mapping of namespace to ``query``/``master``/``cache_seconds``/``runonserver``/
``metrics``) is read unchanged and keeps postgres_exporter's names,
``<namespace>_<column>`` (``_milliseconds`` for DURATION), and its ``server``
label, so the dashboards and alerts built on it keep working.

Everything here is pure: no database, no clock, no logging. A bad file is
found at start, each problem one line naming the file, the query, the key and
what is wrong; rows are turned into bounded series the same way whatever the
server said (``to_series``), which the unit tests check without a server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from pgradar.agent.settings import shown

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
QUERY_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

DEFAULT_INTERVAL_S = 60.0
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_SERIES = 1000
OWN_NAMESPACE = "pgradar_"  # the agent's own metrics; a custom metric may not start with it
ROLES = ("primary", "standby", "any")

# What each usage becomes: pgradar's spelling, then postgres_exporter's (upper case).
USAGES = ("label", "gauge", "counter", "duration", "mapped", "histogram", "discard")
EXPORTER_USAGES = {
    "LABEL": "label",
    "GAUGE": "gauge",
    "COUNTER": "counter",
    "DURATION": "duration",
    "MAPPEDMETRIC": "mapped",
    "HISTOGRAM": "histogram",
    "DISCARD": "discard",
}
TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "seconds": 1.0, "min": 60.0, "h": 3600.0}
BYTE_UNITS = {"bytes": 1.0, "kB": 1024.0, "MB": 1024.0**2, "GB": 1024.0**3, "blocks": 8192.0}


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A semver range as postgres_exporter's ``runonserver`` takes it (blang/semver).

    Comparisons joined by spaces must all hold; alternatives are joined by
    ``||``. A PostgreSQL 13.23 server is version 13.23.0, 9.6.20 is 9.6.20.
    """

    text: str
    alternatives: tuple[tuple[tuple[str, tuple[int, int, int]], ...], ...]

    def contains(self, version: tuple[int, int, int]) -> bool:
        return any(all(_compare(version, op, bound) for op, bound in alt) for alt in self.alternatives)


_OPS = (">=", "<=", "!=", "==", ">", "<", "=")
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _compare(version: tuple[int, int, int], op: str, bound: tuple[int, int, int]) -> bool:
    return {
        ">=": version >= bound,
        "<=": version <= bound,
        ">": version > bound,
        "<": version < bound,
        "!=": version != bound,
        "==": version == bound,
        "=": version == bound,
    }[op]


def parse_range(text: str) -> VersionRange:
    """``>=10.0.0 <13`` or ``<10 || >=14``; ValueError naming the part that is not one."""
    alternatives = []
    for part in str(text).split("||"):
        terms = []
        for term in part.split():
            op = next((o for o in _OPS if term.startswith(o)), "=")
            match = _VERSION.match(term[len(op) :] if term.startswith(op) else term)
            if not match:
                raise ValueError(f"{term!r} is not a version comparison like >=10.0.0")
            terms.append((op, tuple(int(g or 0) for g in match.groups())))
        if not terms:
            raise ValueError(f"{text!r} has an empty alternative")
        alternatives.append(tuple(terms))
    return VersionRange(str(text), tuple(alternatives))  # type: ignore[arg-type]


def server_semver(version_num: int) -> tuple[int, int, int]:
    """server_version_num as the semver postgres_exporter compares: 130023 -> 13.23.0, 90620 -> 9.6.20."""
    if version_num >= 100000:
        return (version_num // 10000, version_num % 10000, 0)
    return (version_num // 10000, version_num // 100 % 100, version_num % 100)


@dataclass(frozen=True, slots=True)
class Column:
    """One result column and what it becomes (``metric`` empty for labels and discarded columns)."""

    name: str
    usage: str
    help: str = ""
    metric: str = ""
    kind: str = "gauge"  # gauge, counter, untyped or histogram: the TYPE line
    scale: float = 1.0  # multiplies a number into the metric's unit
    duration_ms: bool = False  # postgres_exporter's DURATION: a duration text read as milliseconds
    mapping: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class CustomQuery:
    """One custom collector: what it runs, where, how often, and what its columns become."""

    name: str
    sql: str
    columns: tuple[Column, ...]
    source: str  # the file (or "config") it came from, for messages
    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    databases: tuple[str, ...] | None = None  # None: the target's own database; ("*",): every one it visits
    on: str = "any"
    versions: VersionRange | None = None
    max_series: int = DEFAULT_MAX_SERIES
    exporter_format: bool = False  # postgres_exporter's: ``server`` label, unlisted columns untyped

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.usage == "label")

    @property
    def extra_labels(self) -> tuple[str, ...]:
        """The labels pgradar adds to every series of this query, in order."""
        return (
            ("target",)
            + (("server",) if self.exporter_format else ())
            + (("database",) if self.databases is not None else ())
        )

    @property
    def every_database(self) -> bool:
        return self.databases == ("*",)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def metric_names(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.columns if c.metric)


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a query gets when it does not say: from the agent's config."""

    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    session_timeout_s: float = 10.0  # the sessions' statement_timeout: no query may wait longer


# --- reading ---------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_file(path: str) -> tuple[Any, list[str]]:
    """A queries file's data, or the one-line reason it cannot be read."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror}"]
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), []  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return None, [f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]


def parse_source(data: Any, source: str, defaults: Defaults) -> tuple[list[CustomQuery], list[str]]:
    """A file's queries in either format: a list is pgradar's, a mapping postgres_exporter's."""
    if data is None:
        return [], []
    if isinstance(data, Mapping) and set(data) == {"custom_queries"}:
        data = data["custom_queries"]
    if isinstance(data, list):
        return parse_native(data, source, defaults)
    if isinstance(data, Mapping):
        return parse_exporter(data, source, defaults)
    return [], [f"{source}: expected a list of queries (pgradar) or a mapping of queries (postgres_exporter)"]


def _show(value: Any, limit: int = 50) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _positive(raw: Mapping[str, Any], key: str, where: str, errors: list[str], default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == math.inf:
        errors.append(f"{where}.{key}: expected a positive number, got {_show(value)}")
        return default
    return float(value)


def _timeout(raw: Mapping[str, Any], where: str, errors: list[str], defaults: Defaults) -> float:
    default = min(defaults.timeout_s, defaults.session_timeout_s)
    value = _positive(raw, "timeout", where, errors, default)
    if value > defaults.session_timeout_s:
        errors.append(
            f"{where}.timeout: {value:g}s is above the sessions' statement_timeout "
            f"({defaults.session_timeout_s:g}s, timeouts.statement_ms); lower it or raise that"
        )
    return value


def _text(raw: Mapping[str, Any], key: str, where: str, errors: list[str], required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}.{key}: {'missing' if value is None else 'expected text, got ' + _show(value)}")
        return ""
    return value


def _mapping(raw: Any, where: str, errors: list[str]) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping) or not raw:
        errors.append(
            f"{where}.mapping: a mapped column needs mapping: {{TEXT: NUMBER, ...}} "
            f"(metric_mapping: in postgres_exporter's format)"
        )
        return ()
    out = []
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{where}.mapping.{key}: expected a number, got {_show(value)}")
        else:
            out.append((str(key), float(value)))
    return tuple(out)


def _unit(raw: Mapping[str, Any], usage: str, where: str, errors: list[str]) -> tuple[str, float]:
    """The name suffix and scale for a column's ``unit`` (durations default to milliseconds)."""
    unit = raw.get("unit", "ms" if usage == "duration" else None)
    if unit is None:
        return "", 1.0
    if unit in TIME_UNITS:
        return "_seconds", TIME_UNITS[unit]
    if unit in BYTE_UNITS and usage != "duration":
        return "_bytes", BYTE_UNITS[unit]
    known = TIME_UNITS if usage == "duration" else {**TIME_UNITS, **BYTE_UNITS}
    errors.append(f"{where}.unit: unknown unit {_show(unit)} (known: {', '.join(known)})")
    return "", 1.0


def _native_metric(prefix: str, query: str, column: str, suffix: str, counter: bool) -> str:
    name = f"{prefix}{query}_{column}"
    if suffix and not name.endswith(suffix) and not (counter and name.endswith(suffix + "_total")):
        name += suffix
    if counter and not name.endswith("_total"):
        name += "_total"
    return name


_NATIVE_KEYS = (
    "name",
    "help",
    "sql",
    "prefix",
    "interval",
    "timeout",
    "databases",
    "on",
    "server_version",
    "max_series",
    "columns",
)
_COLUMN_KEYS = ("name", "usage", "help", "unit", "mapping")


def parse_native(items: Sequence[Any], source: str, defaults: Defaults) -> tuple[list[CustomQuery], list[str]]:
    """pgradar's format: a list of queries, each with ``name``, ``sql``, ``columns`` and options."""
    queries, errors = [], []
    for i, raw in enumerate(items):
        where = f"{source}: custom_queries[{i}]"
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: expected a mapping with name, sql and columns, got {_show(raw)}")
            continue
        name = raw.get("name")
        if isinstance(name, str) and QUERY_NAME.fullmatch(name):
            where = f"{source}: query {name}"
        found: list[str] = []
        for key in raw:
            if key not in _NATIVE_KEYS:
                found.append(f"{where}.{shown.key(key)}: unknown key (known: {', '.join(_NATIVE_KEYS)})")
        if not isinstance(name, str) or not QUERY_NAME.fullmatch(name):
            found.append(f"{where}.name: {_show(name)} is not a name (letters, digits and '_', not first a digit)")
            name = f"query{i}"
        prefix = raw.get("prefix", "")
        if not isinstance(prefix, str) or (prefix and not METRIC_NAME.fullmatch(prefix)):
            found.append(f"{where}.prefix: {_show(prefix)} cannot start a metric name")
            prefix = ""
        sql = _text(raw, "sql", where, found)
        _text(raw, "help", where, found, required=False)
        databases = _databases(raw.get("databases"), where, found)
        on = raw.get("on", "any")
        if on not in ROLES:
            found.append(f"{where}.on: expected one of {', '.join(ROLES)}, got {_show(on)}")
        versions = _versions(raw.get("server_version"), f"{where}.server_version", found)
        max_series = int(_positive(raw, "max_series", where, found, DEFAULT_MAX_SERIES))
        columns = []
        raw_columns = raw.get("columns")
        if not isinstance(raw_columns, list) or not raw_columns:
            found.append(f"{where}.columns: missing (a list of {{name, usage, help}})")
            raw_columns = []
        for j, col in enumerate(raw_columns):
            cwhere = f"{where}.columns[{j}]"
            if not isinstance(col, Mapping):
                found.append(f"{cwhere}: expected a mapping with name and usage, got {_show(col)}")
                continue
            cname = col.get("name")
            if isinstance(cname, str) and cname:
                cwhere = f"{where}.columns.{cname}"
            for key in col:
                if key not in _COLUMN_KEYS:
                    found.append(f"{cwhere}.{shown.key(key)}: unknown key (known: {', '.join(_COLUMN_KEYS)})")
            usage = col.get("usage")
            if usage not in USAGES:
                found.append(f"{cwhere}.usage: unknown usage {_show(usage)} (known: {', '.join(USAGES)})")
                continue
            if not isinstance(cname, str) or not cname:
                found.append(f"{cwhere}.name: missing (the result column's name)")
                continue
            help_text = col.get("help")
            if usage not in ("label", "discard") and (not isinstance(help_text, str) or not help_text.strip()):
                found.append(f"{cwhere}.help: missing (every metric needs help text)")
            suffix, scale = (
                _unit(col, usage, cwhere, found)
                if usage not in ("label", "discard", "mapped", "histogram")
                else ("", 1.0)
            )
            mapping = _mapping(col.get("mapping"), cwhere, found) if usage == "mapped" else ()
            metric = (
                ""
                if usage in ("label", "discard")
                else _native_metric(prefix, name, cname, suffix, counter=usage == "counter")
            )
            kind = {"counter": "counter", "histogram": "histogram"}.get(usage, "gauge")
            columns.append(Column(cname, usage, str(help_text or ""), metric, kind, scale, False, mapping))
        query = CustomQuery(
            name,
            sql,
            tuple(columns),
            source,
            _positive(raw, "interval", where, found, defaults.interval_s),
            _timeout(raw, where, found, defaults),
            databases,
            str(on),
            versions,
            max_series,
        )
        found.extend(check_query(query, where))
        errors.extend(found)
        if not found:
            queries.append(query)
    return queries, errors


def _databases(raw: Any, where: str, errors: list[str]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if raw == "all":
        return ("*",)
    if isinstance(raw, list) and raw and all(isinstance(d, str) and d and d != "*" for d in raw):
        return tuple(raw)
    errors.append(f"{where}.databases: expected all or a list of database names, got {_show(raw)}")
    return None


def _versions(raw: Any, where: str, errors: list[str]) -> VersionRange | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_range(str(raw))
    except ValueError as exc:
        errors.append(f"{where}: {exc}")
        return None


_EXPORTER_KEYS = ("query", "metrics", "master", "cache_seconds", "runonserver")
# metric_mapping and pg_version are postgres_exporter's own keys (its MappingOptions); 0.11 read
# neither for a user query. mapping is accepted for metric_mapping; pg_version is accepted and, as there, unused.
_EXPORTER_COLUMN_KEYS = ("usage", "description", "metric_mapping", "mapping", "pg_version")


def parse_exporter(data: Mapping[Any, Any], source: str, defaults: Defaults) -> tuple[list[CustomQuery], list[str]]:
    """postgres_exporter's ``queries.yaml``, read as postgres_exporter 0.11 read it.

    The namespace (the top-level key) is the metric prefix: a column ``c`` of
    namespace ``ns`` is ``ns_c`` (``ns_c_milliseconds`` for DURATION), with the
    LABEL columns as labels. ``master`` is accepted: these queries run on the
    target's own database, which is what ``master: true`` asked for.
    ``cache_seconds`` is how often the query runs (pgradar never runs one on a
    scrape). ``runonserver`` is a semver range on the server's version.
    """
    queries, errors = [], []
    for namespace, raw in data.items():
        where = f"{source}: query {namespace}"
        found: list[str] = []
        if not isinstance(namespace, str) or not METRIC_NAME.fullmatch(namespace):
            errors.append(f"{source}: query {_show(namespace)}: not a valid metric name prefix")
            continue
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: expected a mapping with query and metrics, got {_show(raw)}")
            continue
        for key in raw:
            if key not in _EXPORTER_KEYS:
                found.append(f"{where}.{shown.key(key)}: unknown key (known: {', '.join(_EXPORTER_KEYS)})")
        sql = _text(raw, "query", where, found)
        if "master" in raw and not isinstance(raw["master"], bool):
            found.append(f"{where}.master: expected true or false, got {_show(raw['master'])}")
        cache = raw.get("cache_seconds")
        interval = defaults.interval_s
        if cache is not None:
            if isinstance(cache, bool) or not isinstance(cache, int) or cache < 0:
                found.append(f"{where}.cache_seconds: expected a whole number of seconds, got {_show(cache)}")
            elif cache > 0:
                interval = float(cache)
        versions = _versions(raw.get("runonserver"), f"{where}.runonserver", found)
        columns = []
        metrics = raw.get("metrics")
        if not isinstance(metrics, list) or not metrics:
            found.append(f"{where}.metrics: missing (a list of COLUMN: {{usage, description}})")
            metrics = []
        for j, item in enumerate(metrics):
            if not isinstance(item, Mapping) or len(item) != 1:
                found.append(f"{where}.metrics[{j}]: expected one COLUMN: {{usage, description}}, got {_show(item)}")
                continue
            ((cname, spec),) = item.items()
            cwhere = f"{where}.metrics.{cname}"
            if not isinstance(spec, Mapping):
                found.append(f"{cwhere}: expected {{usage, description}}, got {_show(spec)}")
                continue
            for key in spec:
                if key not in _EXPORTER_COLUMN_KEYS:
                    found.append(f"{cwhere}.{shown.key(key)}: unknown key (known: {', '.join(_EXPORTER_COLUMN_KEYS)})")
            usage = EXPORTER_USAGES.get(str(spec.get("usage", "")))
            if usage is None:
                hint = (
                    " (postgres_exporter takes upper case only and dropped this column)"
                    if str(spec.get("usage", "")).upper() in EXPORTER_USAGES
                    else ""
                )
                found.append(
                    f"{cwhere}.usage: unknown usage {_show(spec.get('usage'))} "
                    f"(known: {', '.join(EXPORTER_USAGES)}){hint}"
                )
                continue
            help_text = str(spec.get("description") or f"{spec.get('usage')} column {cname} of {namespace}")
            mapping = (
                _mapping(spec.get("metric_mapping", spec.get("mapping")), cwhere, found) if usage == "mapped" else ()
            )
            metric = (
                ""
                if usage in ("label", "discard")
                else f"{namespace}_{cname}" + ("_milliseconds" if usage == "duration" else "")
            )
            # COUNTER keeps its name without _total: OpenMetrics would rename a counter, so it is untyped.
            kind = {"counter": "untyped", "histogram": "histogram"}.get(usage, "gauge")
            columns.append(Column(str(cname), usage, help_text, metric, kind, 1.0, usage == "duration", mapping))
        query = CustomQuery(
            namespace,
            sql,
            tuple(columns),
            source,
            interval,
            min(defaults.timeout_s, defaults.session_timeout_s),
            None,
            "any",
            versions,
            DEFAULT_MAX_SERIES,
            exporter_format=True,
        )
        found.extend(check_query(query, where))
        errors.extend(found)
        if not found:
            queries.append(query)
    return queries, errors


def check_query(query: CustomQuery, where: str) -> list[str]:
    """What is wrong with a query's columns and names, one line each."""
    errors = []
    names = [c.name for c in query.columns]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{where}: column {name!r} is listed twice; give each result column one usage")
    if query.columns and not query.metric_names():
        errors.append(f"{where}: no column is a metric (every one is a label or discarded)")
    reserved = (
        set(query.extra_labels) | {"le"}
        if any(c.usage == "histogram" for c in query.columns)
        else set(query.extra_labels)
    )
    for column in query.columns:
        if column.usage == "label":
            if not LABEL_NAME.fullmatch(column.name) or column.name.startswith("__"):
                errors.append(f"{where}: label column {column.name!r} is not a valid label name")
            elif column.name in reserved:
                errors.append(
                    f"{where}: label column {column.name!r} collides with the label pgradar adds "
                    f"({', '.join(sorted(reserved))}); rename it in the SQL (AS ...)"
                )
        if column.metric and not METRIC_NAME.fullmatch(column.metric):
            errors.append(f"{where}: column {column.name!r} makes {column.metric!r}, not a valid metric name")
        elif column.metric.startswith(OWN_NAMESPACE):
            errors.append(
                f"{where}: column {column.name!r} makes {column.metric!r}, in pgradar's own namespace "
                f"({OWN_NAMESPACE}); choose another prefix"
            )
    return errors


def check_set(queries: Sequence[CustomQuery]) -> list[str]:
    """Problems between queries: a name or a metric given by two of them."""
    errors = []
    seen: dict[str, CustomQuery] = {}
    metrics: dict[str, CustomQuery] = {}
    for query in queries:
        if query.name in seen:
            errors.append(f"{query.source}: query {query.name}: the name is also used in {seen[query.name].source}")
            continue
        seen[query.name] = query
        for metric in query.metric_names():
            for name in series_names(query, metric):
                other = metrics.get(name)
                if other is not None and other is not query:
                    errors.append(
                        f"{query.source}: query {query.name}: metric {name} is also made by query "
                        f"{other.name} ({other.source})"
                    )
                metrics[name] = query
    return errors


def series_names(query: CustomQuery, metric: str) -> tuple[str, ...]:
    """Every name a metric takes in an exposition: its series, and its family name in OpenMetrics."""
    column = next(c for c in query.columns if c.metric == metric)
    if column.kind == "histogram":
        return (metric, f"{metric}_bucket", f"{metric}_sum", f"{metric}_count")
    if column.kind == "counter":
        return (metric, metric.removesuffix("_total"))
    return (metric,)


# --- rows into series --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Family:
    """One metric of a custom query, ready to render: samples are (label values, value)."""

    name: str
    kind: str  # gauge, counter, untyped, histogram
    help: str
    labels: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], Any], ...]  # histogram value: (buckets ((le, count), ...), sum)
    unlisted: bool = False  # from a column the file does not list (postgres_exporter's format)


@dataclass(frozen=True, slots=True)
class Rows:
    """What one database answered: its column names and rows, in order."""

    database: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Series:
    """The series of one run of one query on one target, and what had to be left out."""

    families: tuple[Family, ...]
    series: int
    dropped: int  # over max_series
    duplicates: int  # a label set given twice: the first row is kept
    problems: tuple[str, ...]  # values that could not be read, once per column


def number(value: Any) -> float | None:
    """A column value as postgres_exporter reads one: numbers, booleans, times as whole Unix seconds; else None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return float(math.floor(value.timestamp()))  # whole seconds, as postgres_exporter gave them
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    if isinstance(value, (str, bytes)):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def duration_ms(value: Any) -> float | None:
    """postgres_exporter's DURATION: a Go duration text ("1.5s", "300ms"; "-1" is no value) in milliseconds.

    An interval value (timedelta) is read too, and a bare number as milliseconds.
    """
    if isinstance(value, timedelta):
        return value.total_seconds() * 1000
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if text == "-1":
            return None
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if body == "0":
            return 0.0
        parts = _GO_DURATION.findall(body)
        if not parts or "".join(n + u for n, u in parts) != body:
            return None
        return sign * sum(float(n) * _GO_UNITS_MS[u] for n, u in parts)
    return number(value)


def _value(column: Column, raw: Any) -> float | None:
    if column.usage == "mapped":
        return dict(column.mapping).get(str(raw)) if raw is not None else None
    if column.duration_ms:
        return duration_ms(raw)
    if isinstance(raw, timedelta):
        return raw.total_seconds()  # an interval is already a time: the unit is for numbers
    value = number(raw)
    return None if value is None else value * column.scale


def _label(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _histogram(column: Column, row: Mapping[str, Any]) -> tuple[Any, str | None]:
    bounds, counts = row.get(column.name), row.get(f"{column.name}_bucket")
    total, count = number(row.get(f"{column.name}_sum")), number(row.get(f"{column.name}_count"))
    if not isinstance(bounds, list) or not isinstance(counts, list) or total is None or count is None:
        return None, (
            f"histogram {column.name} needs array columns {column.name} and {column.name}_bucket "
            f"and numbers {column.name}_sum and {column.name}_count"
        )
    buckets = []
    for bound, value in zip(bounds, counts, strict=False):
        b, v = number(bound), number(value)
        if b is None or v is None:
            return None, f"histogram {column.name}: bucket {bound!r} or its count {value!r} is not a number"
        buckets.append((_format_le(b), v))
    buckets.append(("+Inf", count))
    return (tuple(buckets), total), None


def _format_le(bound: float) -> str:
    return repr(float(bound)) if bound != math.inf else "+Inf"


def to_series(query: CustomQuery, answers: Iterable[Rows], target: str, server: str = "") -> Series:
    """Rows from one or more databases as metric families, at most ``max_series`` series.

    Rows are taken in order until the cap: a row whose series would pass it
    is dropped whole and counted, so a query that suddenly returns 50,000
    label sets costs what 1,000 do. A label set given twice keeps its first
    row (counted too): an exposition with two equal series is invalid. A
    column that is neither listed nor, in postgres_exporter's format, numeric
    is left out; what could not be read is reported once per column.
    """
    label_names = (*query.extra_labels, *query.labels)
    samples: dict[str, list[tuple[tuple[str, ...], Any]]] = {c.metric: [] for c in query.columns if c.metric}
    meta: dict[str, Column] = {c.metric: c for c in query.columns if c.metric}
    seen: set[tuple[str, ...]] = set()
    series = dropped = duplicates = 0
    problems: dict[str, str] = {}
    histogram_parts = {
        f"{c.name}_{part}" for c in query.columns if c.usage == "histogram" for part in ("bucket", "sum", "count")
    }
    for answer in answers:
        listed = {c.name for c in query.columns} | histogram_parts
        unlisted = [name for name in answer.columns if name not in listed]
        for name in unlisted:
            metric = f"{query.name}_{name}"
            if query.exporter_format and METRIC_NAME.fullmatch(metric):
                if metric not in meta:
                    meta[metric] = Column(name, "gauge", f"Unknown metric from {query.name}", metric, "untyped")
                    samples[metric] = []
            else:
                problems.setdefault(name, f"column {name} is not listed in columns: (left out)")
        for values in answer.rows:
            row = dict(zip(answer.columns, values, strict=False))
            extra = (
                (target,)
                + ((server,) if query.exporter_format else ())
                + ((answer.database,) if query.databases is not None else ())
            )
            key = extra + tuple(_label(row.get(name)) for name in query.labels)
            if key in seen:
                duplicates += 1
                continue
            out: list[tuple[str, Any]] = []
            for metric, column in meta.items():
                if column.name not in row:
                    continue
                if column.kind == "histogram":
                    value, problem = _histogram(column, row)
                    if problem:
                        problems.setdefault(column.name, problem)
                        continue
                else:
                    value = _value(column, row[column.name])
                    if value is None:
                        if row[column.name] is not None:
                            problems.setdefault(
                                column.name,
                                f"column {column.name}: {_show(row[column.name])} "
                                f"is not a {column.usage} value (left out)",
                            )
                        continue
                out.append((metric, value))
            if series + len(out) > query.max_series:
                dropped += len(out)
                continue
            seen.add(key)
            series += len(out)
            for metric, value in out:
                samples[metric].append((key, value))
    listed = {c.metric for c in query.columns}
    families = tuple(
        Family(metric, meta[metric].kind, meta[metric].help, label_names, tuple(rows), metric not in listed)
        for metric, rows in samples.items()
    )
    return Series(families, series, dropped, duplicates, tuple(problems.values()))


def server_label(host: str | None, port: str | None) -> str:
    """postgres_exporter's ``server`` label: host:port from the DSN (localhost, 5432 when absent)."""
    return f"{(host or 'localhost').split(',')[0]}:{(port or '5432').split(',')[0]}"
