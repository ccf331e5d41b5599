"""Custom SQL collectors: reading a queries file in either format, checking it, naming the metrics.

Two formats are read. pgradar's own (``custom_queries:`` in the config, or a
file whose top level is a list) names each metric by the exporter's
conventions: ``<prefix><query>_<column>`` plus ``_bytes`` or ``_seconds`` for
a unit and ``_total`` on counters. postgres_exporter's ``queries.yaml`` (a
mapping of namespace to ``query``/``master``/``cache_seconds``/``runonserver``/
``metrics``) is read unchanged and keeps postgres_exporter's names,
``<namespace>_<column>`` (``_milliseconds`` for DURATION), and its ``server``
label, so the dashboards and alerts built on it keep working.

Pure: no database, no clock, no logging. A bad file is found at start, each
problem one line naming the file, the query, the key and what is wrong
(``agent/settings/validate.py``); the records are the model's
(``agent/model/custom_queries.py``), what is wrong between queries is
``custom_checks``, and rows become series in ``agent/derive/custom_series.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pgradar.agent.model.custom_queries import (
    DEFAULT_INTERVAL_S,
    DEFAULT_MAX_SERIES,
    DEFAULT_TIMEOUT_S,
    METRIC_NAME,
    Column,
    CustomQuery,
    VersionRange,
)
from pgradar.agent.settings import validate
from pgradar.agent.settings.custom_checks import check_query
from pgradar.agent.settings.validate import MISSING, Checker

QUERY_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
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
        return None, [validate.yaml_problem(path, exc)]


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


# --- the fields both formats share (checkers for validate.fields) ------------------------


def _show(value: Any) -> str:
    return validate.show(value, 50)


def _number(default: float) -> Checker:
    """A positive, finite number; ``default`` when not given (or when wrong, with the line)."""

    def checker(value: Any, path: str, errors: list[str]) -> float:
        if value is MISSING:
            return default
        if not validate.is_positive(value, finite=True):
            errors.append(f"{path}: expected a positive number, got {_show(value)}")
            return default
        return float(value)

    return checker


def _timeout(defaults: Defaults) -> Checker:
    """A query's own statement_timeout: never above the sessions' (it could not be honoured)."""
    number = _number(min(defaults.timeout_s, defaults.session_timeout_s))

    def checker(value: Any, path: str, errors: list[str]) -> float:
        seconds: float = number(value, path, errors)
        if seconds > defaults.session_timeout_s:
            errors.append(
                f"{path}: {seconds:g}s is above the sessions' statement_timeout "
                f"({defaults.session_timeout_s:g}s, timeouts.statement_ms); lower it or raise that"
            )
        return seconds

    return checker


def _sql(value: Any, path: str, errors: list[str]) -> str:
    if value is MISSING or value is None:
        errors.append(f"{path}: missing")
        return ""
    return _help(value, path, errors)


def _help(value: Any, path: str, errors: list[str]) -> str:
    if value is MISSING or value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{path}: expected text, got {_show(value)}")
        return ""
    return value


_OPS = (">=", "<=", "!=", "==", ">", "<", "=")
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


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


def _versions(value: Any, path: str, errors: list[str]) -> VersionRange | None:
    if value is MISSING or value is None or value == "":
        return None
    try:
        return parse_range(str(value))
    except ValueError as exc:
        errors.append(f"{path}: {exc}")
        return None


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


# --- pgradar's format ----------------------------------------------------------------------


def _prefix(value: Any, path: str, errors: list[str]) -> str:
    if value is MISSING:
        return ""
    if not isinstance(value, str) or (value and not METRIC_NAME.fullmatch(value)):
        errors.append(f"{path}: {_show(value)} cannot start a metric name")
        return ""
    return value


def _databases(value: Any, path: str, errors: list[str]) -> tuple[str, ...] | None:
    if value is MISSING or value is None:
        return None
    if value == "all":
        return ("*",)
    if isinstance(value, list) and value and all(isinstance(d, str) and d and d != "*" for d in value):
        return tuple(value)
    errors.append(f"{path}: expected all or a list of database names, got {_show(value)}")
    return None


@dataclass(frozen=True, slots=True)
class _Spec:
    """A column as written, before its metric is named (that needs the query's name and prefix)."""

    name: str
    usage: str
    help: str
    suffix: str
    scale: float
    mapping: tuple[tuple[str, float], ...]


def _unit(raw: Mapping[str, Any], usage: str, where: str, errors: list[str]) -> tuple[str, float]:
    """The name suffix and scale for a column's ``unit`` (durations default to milliseconds)."""
    unit = raw.get("unit", "ms" if usage == "duration" else None)
    if unit is None:
        return "", 1.0
    if isinstance(unit, str) and unit in TIME_UNITS:
        return "_seconds", TIME_UNITS[unit]
    if isinstance(unit, str) and unit in BYTE_UNITS and usage != "duration":
        return "_bytes", BYTE_UNITS[unit]
    known = TIME_UNITS if usage == "duration" else {**TIME_UNITS, **BYTE_UNITS}
    errors.append(f"{where}.unit: unknown unit {_show(unit)} (known: {', '.join(known)})")
    return "", 1.0


_COLUMN_KEYS = ("name", "usage", "help", "unit", "mapping")


def _native_column(j: int, col: Any, where: str, errors: list[str]) -> _Spec | None:
    cwhere = f"{where}.columns[{j}]"
    if not isinstance(col, Mapping):
        errors.append(f"{cwhere}: expected a mapping with name and usage, got {_show(col)}")
        return None
    cname = col.get("name")
    if isinstance(cname, str) and cname:
        cwhere = f"{where}.columns.{cname}"
    validate.unknown_keys(col, _COLUMN_KEYS, cwhere, errors)
    usage = col.get("usage")
    if usage not in USAGES:
        errors.append(f"{cwhere}.usage: unknown usage {_show(usage)} (known: {', '.join(USAGES)})")
        return None
    if not isinstance(cname, str) or not cname:
        errors.append(f"{cwhere}.name: missing (the result column's name)")
        return None
    help_text = col.get("help")
    if usage not in ("label", "discard") and (not isinstance(help_text, str) or not help_text.strip()):
        errors.append(f"{cwhere}.help: missing (every metric needs help text)")
    suffix, scale = (
        _unit(col, usage, cwhere, errors) if usage not in ("label", "discard", "mapped", "histogram") else ("", 1.0)
    )
    mapping = _mapping(col.get("mapping"), cwhere, errors) if usage == "mapped" else ()
    return _Spec(cname, usage, str(help_text or ""), suffix, scale, mapping)


def _native_columns(value: Any, path: str, errors: list[str]) -> list[_Spec]:
    if not isinstance(value, list) or not value:
        errors.append(f"{path}: missing (a list of {{name, usage, help}})")
        return []
    where = path.removesuffix(".columns")
    return [spec for j, col in enumerate(value) if (spec := _native_column(j, col, where, errors)) is not None]


def _native_metric(prefix: str, query: str, column: str, suffix: str, counter: bool) -> str:
    name = f"{prefix}{query}_{column}"
    if suffix and not name.endswith(suffix) and not (counter and name.endswith(suffix + "_total")):
        name += suffix
    if counter and not name.endswith("_total"):
        name += "_total"
    return name


def _native_column_record(spec: _Spec, prefix: str, query: str) -> Column:
    metric = (
        ""
        if spec.usage in ("label", "discard")
        else _native_metric(prefix, query, spec.name, spec.suffix, counter=spec.usage == "counter")
    )
    kind = {"counter": "counter", "histogram": "histogram"}.get(spec.usage, "gauge")
    return Column(spec.name, spec.usage, spec.help, metric, kind, spec.scale, False, spec.mapping)


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


def _native_fields(defaults: Defaults) -> tuple[tuple[str, Checker], ...]:
    """A query's fields in the order they are checked (and their problems listed)."""
    return (
        ("prefix", _prefix),
        ("sql", _sql),
        ("help", _help),
        ("databases", _databases),
        ("on", validate.optional(validate.one_of(ROLES, limit=50), "any")),
        ("server_version", _versions),
        ("max_series", _number(DEFAULT_MAX_SERIES)),
        ("columns", _native_columns),
        ("interval", _number(defaults.interval_s)),
        ("timeout", _timeout(defaults)),
    )


def parse_native(items: Sequence[Any], source: str, defaults: Defaults) -> tuple[list[CustomQuery], list[str]]:
    """pgradar's format: a list of queries, each with ``name``, ``sql``, ``columns`` and options."""
    queries, errors = [], []
    table = _native_fields(defaults)
    for i, raw in enumerate(items):
        where = f"{source}: custom_queries[{i}]"
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: expected a mapping with name, sql and columns, got {_show(raw)}")
            continue
        name = raw.get("name")
        if isinstance(name, str) and QUERY_NAME.fullmatch(name):
            where = f"{source}: query {name}"
        found: list[str] = []
        validate.unknown_keys(raw, _NATIVE_KEYS, where, found)
        if not isinstance(name, str) or not QUERY_NAME.fullmatch(name):
            found.append(f"{where}.name: {_show(name)} is not a name (letters, digits and '_', not first a digit)")
            name = f"query{i}"
        got = validate.fields(raw, table, where, found)
        query = CustomQuery(
            name,
            got["sql"],
            tuple(_native_column_record(spec, got["prefix"], name) for spec in got["columns"]),
            source,
            got["interval"],
            got["timeout"],
            got["databases"],
            str(got["on"]),
            got["server_version"],
            int(got["max_series"]),
        )
        found.extend(check_query(query, where))
        errors.extend(found)
        if not found:
            queries.append(query)
    return queries, errors


# --- postgres_exporter's format ------------------------------------------------------------

_EXPORTER_KEYS = ("query", "metrics", "master", "cache_seconds", "runonserver")
# metric_mapping and pg_version are postgres_exporter's own keys (its MappingOptions); 0.11 read
# neither for a user query. mapping is accepted for metric_mapping; pg_version is accepted and, as there, unused.
_EXPORTER_COLUMN_KEYS = ("usage", "description", "metric_mapping", "mapping", "pg_version")


def _cache_seconds(default: float) -> Checker:
    """How often the query runs: ``cache_seconds`` when above 0 (pgradar never runs one on a scrape)."""

    def checker(value: Any, path: str, errors: list[str]) -> float:
        if value is MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(f"{path}: expected a whole number of seconds, got {_show(value)}")
            return default
        return float(value) if value > 0 else default

    return checker


def _exporter_column(j: int, item: Any, namespace: str, where: str, errors: list[str]) -> Column | None:
    if not isinstance(item, Mapping) or len(item) != 1:
        errors.append(f"{where}.metrics[{j}]: expected one COLUMN: {{usage, description}}, got {_show(item)}")
        return None
    ((cname, spec),) = item.items()
    cwhere = f"{where}.metrics.{cname}"
    if not isinstance(spec, Mapping):
        errors.append(f"{cwhere}: expected {{usage, description}}, got {_show(spec)}")
        return None
    validate.unknown_keys(spec, _EXPORTER_COLUMN_KEYS, cwhere, errors)
    usage = EXPORTER_USAGES.get(str(spec.get("usage", "")))
    if usage is None:
        hint = (
            " (postgres_exporter takes upper case only and dropped this column)"
            if str(spec.get("usage", "")).upper() in EXPORTER_USAGES
            else ""
        )
        errors.append(
            f"{cwhere}.usage: unknown usage {_show(spec.get('usage'))} (known: {', '.join(EXPORTER_USAGES)}){hint}"
        )
        return None
    help_text = str(spec.get("description") or f"{spec.get('usage')} column {cname} of {namespace}")
    mapping = _mapping(spec.get("metric_mapping", spec.get("mapping")), cwhere, errors) if usage == "mapped" else ()
    metric = (
        ""
        if usage in ("label", "discard")
        else f"{namespace}_{cname}" + ("_milliseconds" if usage == "duration" else "")
    )
    # COUNTER keeps its name without _total: OpenMetrics would rename a counter, so it is untyped.
    kind = {"counter": "untyped", "histogram": "histogram"}.get(usage, "gauge")
    return Column(str(cname), usage, help_text, metric, kind, 1.0, usage == "duration", mapping)


def _exporter_metrics(namespace: str) -> Checker:
    def checker(value: Any, path: str, errors: list[str]) -> list[Column]:
        if not isinstance(value, list) or not value:
            errors.append(f"{path}: missing (a list of COLUMN: {{usage, description}})")
            return []
        where = path.removesuffix(".metrics")
        return [
            c for j, item in enumerate(value) if (c := _exporter_column(j, item, namespace, where, errors)) is not None
        ]

    return checker


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
        validate.unknown_keys(raw, _EXPORTER_KEYS, where, found)
        table: tuple[tuple[str, Checker], ...] = (
            ("query", _sql),
            ("master", validate.optional(validate.boolean(limit=50), True)),
            ("cache_seconds", _cache_seconds(defaults.interval_s)),
            ("runonserver", _versions),
            ("metrics", _exporter_metrics(namespace)),
        )
        got = validate.fields(raw, table, where, found)
        query = CustomQuery(
            namespace,
            got["query"],
            tuple(got["metrics"]),
            source,
            got["cache_seconds"],
            min(defaults.timeout_s, defaults.session_timeout_s),
            None,
            "any",
            got["runonserver"],
            DEFAULT_MAX_SERIES,
            exporter_format=True,
        )
        found.extend(check_query(query, where))
        errors.extend(found)
        if not found:
            queries.append(query)
    return queries, errors
