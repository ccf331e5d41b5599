"""Database load on the status page: the last hour as a stacked chart by wait class, and the top statements.

Drawn server-side as inline SVG (the page loads nothing from anywhere): one
column per minute, the average active sessions of each wait class stacked
with CPU at the bottom, and the server's cores as a dashed line when the
config gives them (``targets[i].cpus``). The top statements by load carry
their wait profile as a bar of the same colours.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from pgradar.agent.model.findings import TextPolicy
from pgradar.agent.model.load import CPU, HISTORY_S, LoadWindow, top_statements, wait_class_seconds

STEP_S = 60.0  # one column per minute
TOP = 10
# One colour per wait class; CPU green as Performance Insights draws it, locks red, I/O blue.
COLOURS = {
    CPU: "#2e9e44",
    "Lock": "#c62828",
    "LWLock": "#ef6c00",
    "IO": "#1565c0",
    "IPC": "#6a1b9a",
    "Client": "#8d6e63",
    "Timeout": "#9e9e9e",
    "BufferPin": "#ad1457",
    "Extension": "#00838f",
    "Activity": "#bdbdbd",
}
OTHER_COLOUR = "#546e7a"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def colour(wait_class: str) -> str:
    return COLOURS.get(wait_class, OTHER_COLOUR)


def class_order(window: LoadWindow) -> list[str]:
    """CPU first (the bottom of the stack), then the classes by load, heaviest first."""
    classes = [c for c, _ in wait_class_seconds(window.waits())]
    return ([CPU] if CPU in classes else []) + [c for c in classes if c != CPU]


def minute_columns(window: LoadWindow, now: float) -> list[dict[str, float]]:
    """Average active sessions per wait class in each minute of the last hour, oldest first."""
    columns: list[dict[str, float]] = [{} for _ in range(int(HISTORY_S / STEP_S))]
    sampled = [0.0] * len(columns)
    start = now - HISTORY_S
    for bucket in window.buckets:
        i = int((bucket.start - start) // STEP_S)
        if not 0 <= i < len(columns):
            continue
        sampled[i] += bucket.seconds
        for (_, wtype, _), seconds in bucket.waits:
            columns[i][wtype] = columns[i].get(wtype, 0.0) + seconds
    return [{k: v / sampled[i] for k, v in col.items()} if sampled[i] else {} for i, col in enumerate(columns)]


def load_chart(window: LoadWindow, now: float, width: int = 720, height: int = 180) -> str:
    """The stacked chart of the last hour, with its axis, the cores line and a legend."""
    columns = minute_columns(window, now)
    order = class_order(window)
    peak = max([sum(c.values()) for c in columns] + [window.cpus or 0.0, 1.0])
    top = peak * 1.1
    left, bottom, pad = 34, 18, 4
    plot_w, plot_h = width - left - pad, height - bottom - pad
    step = plot_w / len(columns)

    def y(v: float) -> float:
        return round(pad + plot_h - plot_h * v / top, 1)

    parts = []
    for wait_class in order:  # one polygon per class: the band between its base and its top
        lower, upper = [], []
        for i, col in enumerate(columns):
            base = sum(col.get(c, 0.0) for c in order[: order.index(wait_class)])
            x0, x1 = round(left + i * step, 1), round(left + (i + 1) * step, 1)
            lower += [(x0, y(base)), (x1, y(base))]
            upper += [(x0, y(base + col.get(wait_class, 0.0))), (x1, y(base + col.get(wait_class, 0.0)))]
        points = " ".join(f"{x},{v}" for x, v in upper + lower[::-1])
        parts.append(
            f'<polygon class="band" data-class="{_e(wait_class)}" points="{points}" fill="{colour(wait_class)}"'
            f' fill-opacity="0.85"><title>{_e(wait_class)}</title></polygon>'
        )
    ticks = [0.0, top / 2, top]
    axis = "".join(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v)}" y2="{y(v)}" stroke="#d9dee7"/>'
        f'<text x="{left - 4}" y="{y(v) + 4}" text-anchor="end" font-size="10" fill="#5b6473">{v:.1f}</text>'
        for v in ticks
    )
    labels = (
        f'<text x="{left}" y="{height - 4}" font-size="10" fill="#5b6473">-60 min</text>'
        f'<text x="{left + plot_w}" y="{height - 4}" font-size="10" fill="#5b6473" text-anchor="end">now</text>'
    )
    cores = ""
    if window.cpus:
        cores = (
            f'<line class="cores" x1="{left}" x2="{left + plot_w}" y1="{y(window.cpus)}" y2="{y(window.cpus)}"'
            f' stroke="#1d2330" stroke-dasharray="5,4" stroke-width="1.5"><title>{window.cpus:g} cores</title></line>'
            f'<text x="{left + plot_w - 2}" y="{y(window.cpus) - 3}" font-size="10" text-anchor="end"'
            f' fill="#1d2330">{window.cpus:g} cores</text>'
        )
    legend = " ".join(
        f'<span class="legend"><span style="display:inline-block;width:10px;height:10px;background:'
        f'{colour(c)}"></span> {_e(c)}</span>'
        for c in order
    )
    return (
        f'<svg class="load" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="database load, last hour, by wait class">'
        f"{axis}{''.join(parts)}{cores}{labels}</svg>"
        f'<div class="muted">average active sessions per minute, by wait class: {legend or "no load sampled"}</div>'
    )


def profile_bar(waits: Sequence[tuple[str, str, float]], width: int = 160, height: int = 12) -> str:
    """A statement's wait profile: one bar split by wait class, in the chart's colours."""
    by_class: dict[str, float] = {}
    for wtype, _, seconds in waits:
        by_class[wtype] = by_class.get(wtype, 0.0) + seconds
    total = sum(by_class.values()) or 1.0
    x, rects = 0.0, []
    for wait_class, seconds in sorted(by_class.items(), key=lambda kv: -kv[1]):
        w = width * seconds / total
        rects.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour(wait_class)}">'
            f"<title>{_e(wait_class)} {seconds / total:.0%}</title></rect>"
        )
        x += w
    return (
        f'<svg class="profile" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">{"".join(rects)}</svg>'
    )


def load_statements(window: LoadWindow, texts: Mapping[int, str], policy: TextPolicy, top: int = TOP) -> str:
    """The top statements by load over the window, each with AAS and its wait profile."""
    seconds = window.seconds
    ranked = top_statements(window.statements(), top)
    if not ranked or seconds <= 0:
        return '<p class="empty">no load sampled yet</p>'
    rows = []
    for s in ranked:
        text = policy.show(" ".join(texts.get(s.queryid, "").split())) if s.queryid is not None else None
        waits = ", ".join(f"{t}/{e} {v / s.seconds:.0%}" for t, e, v in s.waits[:4])
        rows.append(
            f'<tr class="load-statement" data-queryid="{_e(s.queryid if s.queryid is not None else "other")}">'
            f"<td><code>{_e(s.queryid if s.queryid is not None else 'other')}</code></td><td>{_e(s.database)}</td>"
            f'<td class="num">{s.seconds / seconds:.2f}</td><td>{profile_bar(s.waits)}'
            f'<div class="muted">{_e(waits)}</div></td><td class="stmt"><code>{_e(text or "")}</code></td></tr>'
        )
    return (
        "<table><thead><tr><th>queryid</th><th>database</th><th>AAS</th><th>wait profile</th>"
        "<th>statement (normalized)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
