"""The custom SQL collectors' series, and their own health, on /metrics.

Custom series are named by their config (``agent/settings/custom_queries.py``), not by
the catalogue, so they are rendered here from the last output of each run;
the health series (``pgradar_custom_query_*``) are in the catalogue like every
other self-metric. Nothing here can fail a scrape: the series were bounded
and de-duplicated when the query ran (``agent/derive/custom_series.py``, ``to_series``).

postgres_exporter's COUNTER columns keep their names (no ``_total``) and are
typed untyped: OpenMetrics renames a counter that does not end in ``_total``,
which would break the dashboards the names were kept for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from pgradar.agent.model.custom_queries import Family
from pgradar.agent.runtime.custom_runner import CustomRunner
from pgradar.exporters.series import Families


def _family(spec: Family) -> Metric:
    labels = list(spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels)
    if spec.kind == "untyped":
        return UnknownMetricFamily(spec.name, spec.help, labels=labels)
    if spec.kind == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels)


def _add(metric: Metric, spec: Family) -> None:
    for values, value in spec.samples:
        if spec.kind == "histogram":
            buckets, total = value
            metric.add_metric(list(values), buckets=list(buckets), sum_value=total)  # type: ignore[attr-defined]
        else:
            metric.add_metric(list(values), value)  # type: ignore[attr-defined]


class CustomCollector(Collector):
    """Every target's custom series and the health of each query."""

    def __init__(self, runners: Iterable[CustomRunner]) -> None:
        self.runners = tuple(runners)

    def describe(self) -> Iterable[Metric]:
        return []

    def version(self) -> tuple[Any, ...]:
        """Changes after every run (PartedRegistry renders this part again only then)."""
        return tuple(r.version for r in self.runners)

    def collect(self) -> Iterable[Metric]:
        health = Families()
        families: dict[str, Metric] = {}
        owners: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # name -> the query, kind and labels it came from
        found: list[tuple[str, Family]] = []
        for runner in self.runners:
            with runner.lock:
                for query in runner.queries():
                    status, output = runner.status[query.name], runner.output[query.name]
                    labels = {"target": runner.target.name, "custom_query": query.name}
                    health.add("pgradar_custom_query_runs_total", status.runs, **labels)
                    health.add("pgradar_custom_query_errors_total", status.errors, **labels)
                    health.add("pgradar_custom_query_duration_seconds", status.last_duration_s, **labels)
                    if status.last_success_at is not None:
                        health.add(
                            "pgradar_custom_query_last_success_timestamp_seconds",
                            status.last_success_at.timestamp(),
                            **labels,
                        )
                    health.add("pgradar_custom_query_enabled", 1.0 if status.enabled else 0.0, **labels)
                    health.add(
                        "pgradar_custom_query_series",
                        output.series.series if output.series is not None else 0,
                        **labels,
                    )
                    health.add(
                        "pgradar_custom_query_series_dropped_total", output.dropped_total, reason="max_series", **labels
                    )
                    health.add(
                        "pgradar_custom_query_series_dropped_total",
                        output.duplicates_total,
                        reason="duplicate",
                        **labels,
                    )
                    if output.series is not None:
                        found.extend((query.name, spec) for spec in output.series.families)
        # A listed column's metric first: an unlisted column named like it is left out, never a second family.
        for query_name, spec in sorted(found, key=lambda item: item[1].unlisted):
            if not spec.samples:
                continue
            if owners.setdefault(spec.name, (query_name, spec.kind, spec.labels)) != (
                query_name,
                spec.kind,
                spec.labels,
            ):
                continue
            metric = families.get(spec.name)
            if metric is None:
                metric = families[spec.name] = _family(spec)
            _add(metric, spec)
        return [*health, *families.values()]
