"""What can be wrong with custom queries once they are read: names, labels, and clashes between them.

Checked on the records (``agent/model/custom_queries.py``) whichever format
they came from, so a query in pgradar's format and one in postgres_exporter's
are held to the same rules: every metric and label name valid, no label that
pgradar adds itself, no metric in pgradar's own namespace, and no name or
metric given by two queries (which would make an invalid exposition).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pgradar.agent.model.custom_queries import METRIC_NAME, CustomQuery

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OWN_NAMESPACE = "pgradar_"  # the agent's own metrics; a custom metric may not start with it


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
