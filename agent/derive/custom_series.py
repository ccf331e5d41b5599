"""Rows of a custom query into bounded series, as postgres_exporter would have read them.

Pure: the same rows give the same series whatever the server said, which
the unit tests check without a server. The runtime calls ``to_series`` after
each run (``agent/runtime/custom_runner.py``); the exporter renders what it
returns (``exporters/custom.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pgradar.agent.model.custom_queries import METRIC_NAME, Column, CustomQuery, Family, Rows, Series


def _show(value: Any, limit: int = 50) -> str:
    """A value in a one-line problem: repr, cut short (a column may hold a page of text)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
