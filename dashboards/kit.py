"""Small builders the dashboards are made of (grafanalib underneath).

Every panel gets the ``${datasource}`` variable as its data source (never a
fixed uid, so the JSON imports into any Grafana as is), a unit, and a place on
the grid computed by :func:`layout`. A dashboard is a list of rows of panels;
adding a panel once a new metric exists is one line in ``boards.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib import core as g

from pgradar.agent.model.findings import Area, Kind
from pgradar.exporters import catalogue

RI = "$__rate_interval"  # a rate over what Grafana takes for the scrape interval
RANGE = "$__range"  # the dashboard's time range

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BASE: list[dict[str, Any]] = [{"color": "green", "value": None}]
SCHEMA_VERSION = 39  # Grafana 10/11 dashboard schema
TAG = "pgradar"

# Label filters the template variables provide.
T = 'target=~"$target"'
TD = 'target=~"$target", database=~"$database"'


def metric(name: str) -> str:
    """``name``, once the exporter's catalogue lists it.

    A panel naming a metric the exporter does not produce (renamed, dropped
    or mistyped) would stay empty in Grafana without an error; this makes
    it fail when the dashboards are built.
    """
    if name not in catalogue.BY_NAME:
        raise KeyError(f"{name} is not in the metric catalogue (exporters/catalogue.py)")
    return name


def kinds_of(area: Area) -> str:
    """A PromQL regex matching the problem kinds of one area, for ``kind=~"..."``."""
    return "|".join(kind for kind in Kind if kind.area is area)


@dataclass(frozen=True, slots=True)
class Q:
    """One query of a panel: a PromQL expression and its legend."""

    expr: str
    legend: str = ""


def _targets(queries: Sequence[Q | str], instant: bool, table: bool) -> list[g.Target]:
    out = []
    for i, q in enumerate(queries):
        q = Q(q) if isinstance(q, str) else q
        out.append(
            g.Target(
                expr=q.expr,
                legendFormat=q.legend,
                refId=chr(ord("A") + i),
                instant=instant,
                format="table" if table else "time_series",
                datasource=DATASOURCE,
                intervalFactor=1,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Cell:
    """A panel and its size on the 24-column grid."""

    panel: g.Panel
    w: int
    h: int


def timeseries(
    title: str,
    queries: Sequence[Q | str],
    unit: str,
    description: str = "",
    w: int = 12,
    h: int = 8,
    stack: bool = False,
) -> Cell:
    return Cell(
        g.TimeSeries(
            title=title,
            description=description or None,
            dataSource=DATASOURCE,
            targets=_targets(queries, instant=False, table=False),
            unit=unit,
            legendDisplayMode="table",
            legendPlacement="right" if w >= 16 else "bottom",
            legendCalcs=["lastNotNull", "max"],
            tooltipMode="multi",
            tooltipSort="desc",
            fillOpacity=10 if stack else 0,
            thresholds=BASE,
            stacking={"mode": "normal", "group": "A"} if stack else {},
        ),
        w,
        h,
    )


def stat(
    title: str,
    query: Q | str,
    unit: str,
    description: str = "",
    w: int = 4,
    h: int = 4,
    red_above: float | None = None,
    mappings: Sequence[dict[str, Any]] = (),
) -> Cell:
    steps = list(BASE)
    if red_above is not None:
        steps.append({"color": "red", "value": red_above})
    return Cell(
        g.Stat(
            title=title,
            description=description or None,
            dataSource=DATASOURCE,
            targets=_targets([query], instant=True, table=False),
            format=unit,
            reduceCalc="lastNotNull",
            graphMode="none",
            colorMode="value",
            thresholds=steps,
            mappings=list(mappings),
        ),
        w,
        h,
    )


def table(
    title: str,
    query: Q | str,
    unit: str,
    description: str = "",
    w: int = 12,
    h: int = 8,
    hide: Sequence[str] = ("Time", "__name__", "job", "instance"),
    links: Sequence[dict[str, str | bool]] = (),
    value_name: str = "Value",
) -> Cell:
    """An instant query shown as a table, one row per series, its labels as columns."""
    overrides = [
        {"matcher": {"id": "byName", "options": "Value"}, "properties": [{"id": "displayName", "value": value_name}]}
    ]
    if links:
        overrides.append(
            {"matcher": {"id": "byRegexp", "options": ".*"}, "properties": [{"id": "links", "value": list(links)}]}
        )
    return Cell(
        g.Table(
            title=title,
            description=description or None,
            dataSource=DATASOURCE,
            targets=_targets([query], instant=True, table=True),
            unit=unit,
            filterable=True,
            thresholds=BASE,
            overrides=overrides,
            transformations=[{"id": "organize", "options": {"excludeByName": dict.fromkeys(hide, True)}}],
        ),
        w,
        h,
    )


def layout(rows: Sequence[Sequence[Cell]]) -> list[g.Panel]:
    """Panels placed row by row; a row wraps when it passes 24 columns."""
    panels: list[g.Panel] = []
    y = 0
    for row in rows:
        x, height = 0, 0
        for cell in row:
            if x + cell.w > 24:
                x, y, height = 0, y + height, 0
            cell.panel.gridPos = g.GridPos(h=cell.h, w=cell.w, x=x, y=y)
            panels.append(cell.panel)
            x += cell.w
            height = max(height, cell.h)
        y += height
    return panels


def datasource_var() -> g.Template:
    return g.Template(name="datasource", label="Data source", query="prometheus", type="datasource", default="default")


def query_var(name: str, label: str, query: str, include_all: bool = True, multi: bool = True) -> g.Template:
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        includeAll=include_all,
        multi=multi,
        allValue=".*" if include_all else None,
        refresh=2,
        default="$__all" if include_all else None,
    )


def target_var() -> g.Template:
    return query_var("target", "Target", f"label_values({metric('pgradar_up')}, target)")


def database_var() -> g.Template:
    return query_var(
        "database", "Database", f'label_values({metric("pgradar_database_size_bytes")}{{target=~"$target"}}, database)'
    )


def dashboard(
    uid: str, title: str, description: str, rows: Sequence[Sequence[Cell]], variables: Sequence[g.Template] = ()
) -> g.Dashboard:
    return g.Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=[TAG],
        timezone="browser",
        refresh="30s",
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=1,
        editable=True,
        time=g.Time("now-1h", "now"),
        templating=g.Templating([datasource_var(), target_var(), *variables]),
        links=[
            g.DashboardLink(
                title="pgradar", type="dashboards", tags=[TAG], asDropdown=True, includeVars=True, keepTime=True
            )
        ],
        panels=layout(rows),
    ).auto_panel_ids()


def link(uid: str, title: str, **vars_: str) -> dict[str, str | bool]:
    """A data link to another pgradar dashboard, carrying the time range and variables."""
    params = "&".join(
        [
            "${__url_time_range}",
            "var-datasource=${datasource}",
            "var-target=${__data.fields.target}",
            *(f"var-{k}={v}" for k, v in vars_.items()),
        ]
    )
    return {"title": title, "url": f"/d/{uid}/{uid}?{params}"}
