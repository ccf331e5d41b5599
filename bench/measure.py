"""Pure parts of the benchmark: exposition parsing, statistics, targets, the table.

Nothing here opens a socket, a file or a process, so the unit tests cover it
(tests/unit/test_bench_measure.py). ``run.py`` gathers the raw figures and
hands them to these functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

# --- exposition text ---------------------------------------------------------------


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for every sample line of a Prometheus or OpenMetrics text.

    Comments (# HELP, # TYPE, # EOF) and blank lines are not samples. Label
    values may hold escaped quotes, commas, spaces and braces.
    """
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            labels, rest = _labels(line, brace + 1)
        else:
            name, rest, labels = line[:space], line[space:], {}
        parts = rest.split()
        out.append((name, labels, float(parts[0]) if parts else float("nan")))
    return out


def _labels(line: str, i: int) -> tuple[dict[str, str], str]:
    labels: dict[str, str] = {}
    while i < len(line) and line[i] != "}":
        if line[i] in ", ":
            i += 1
            continue
        eq = line.index("=", i)
        key = line[i:eq].strip()
        i = eq + 2  # past ="
        value = []
        while line[i] != '"':
            if line[i] == "\\":
                nxt = line[i + 1]
                value.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
            else:
                value.append(line[i])
                i += 1
        labels[key] = "".join(value)
        i += 1
    return labels, line[i + 1 :]


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def series_by_family(text: str, top: int = 20) -> dict[str, int]:
    """The ``top`` metric names with the most sample lines, most first: where the series go."""
    counts: dict[str, int] = {}
    for name, _, _ in parse_samples(text):
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


def lateness_of(text: str, collector: str) -> list[float]:
    """Each target's ``pgradar_collector_lateness_seconds`` for ``collector`` (its last run) in one scrape."""
    if f'collector="{collector}"' not in text:
        return []
    return [
        value
        for name, labels, value in parse_samples(text)
        if name == "pgradar_collector_lateness_seconds" and labels.get("collector") == collector
    ]


def sample(samples: Iterable[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    for n, lab, value in samples:
        if n == name and all(lab.get(k) == v for k, v in labels.items()):
            return value
    return None


def collectors_succeeded(samples: Iterable[tuple[str, dict[str, str], float]]) -> dict[str, bool]:
    """Per collector: has pgradar_collector_last_success_timestamp_seconds been set."""
    return {
        lab["collector"]: value > 0
        for n, lab, value in samples
        if n == "pgradar_collector_last_success_timestamp_seconds"
    }


# --- figures -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def per_minute(amount: float, seconds: float) -> float:
    return amount * 60.0 / seconds if seconds > 0 else float("nan")


def ratio(ours: float | None, peer: float | None) -> float | None:
    if ours is None or peer is None or peer == 0:
        return None
    return ours / peer


@dataclass(frozen=True, slots=True)
class Target:
    key: str  # figure name in the per-agent results
    label: str  # what the table prints
    unit: str
    kind: str  # "ratio": pgradar/peer <= limit; "absolute": pgradar <= limit; "info": no target
    limit: float | None = None


# The goals of the third performance round (issue 32; see bench/README.md): pgradar/peer unless
# "absolute". The whole-window figures are the first ten minutes with `--window 600`, start included.
# "steady" figures count from STEADY_AFTER_S over whole cycles of LONGEST_INTERVAL_S (steady_span).
STEADY_AFTER_S = 120.0
LONGEST_INTERVAL_S = 300.0  # the default interval of tables, indexes, sizes, settings, foreign keys, bloat
TARGETS: tuple[Target, ...] = (
    Target("scrape_latency_median_s", "scrape latency, median", "s", "ratio", 0.01),
    Target("scrape_latency_max_s", "scrape latency, max", "s", "info"),
    Target("response_bytes", "response size", "B", "info"),
    Target("series", "series exported", "", "ratio", 0.10),
    Target("db_exec_ms_per_min", "DB exec time per minute (pg_stat_statements)", "ms", "info"),
    Target("db_backend_cpu_s_per_min", "DB backend CPU per minute (/proc), start included", "s", "ratio", 0.25),
    Target("steady_db_exec_ms_per_min", "DB exec time per minute, steady", "ms", "ratio", 0.10),
    Target("steady_db_backend_cpu_s_per_min", "DB backend CPU per minute, steady", "s", "ratio", 0.10),
    Target("agent_cpu_s_per_min", "agent CPU per minute", "s", "ratio", 0.08),
    Target("steady_agent_cpu_s_per_min", "agent CPU per minute, steady", "s", "info"),
    Target("peak_rss_bytes", "agent peak RSS", "B", "ratio", 0.60),
    Target("first_complete_pass_s", "first complete pass", "s", "absolute", 60.0),
    Target("texts_after_first_poll", "statement texts fetched after the first poll", "", "texts"),
)


def steady_span(started: float, until: float) -> tuple[float, float | None]:
    """When the steady part of a window starts and ends (None: the window has no steady part).

    It starts at minute 2 and lasts whole cycles of the longest default interval: a collector read
    every 300 s then counts once per 300 s, neither more (a span that catches two of its runs) nor
    less (a span shorter than its interval, which may catch none).
    """
    steady_from = started + STEADY_AFTER_S
    cycles = int((until - steady_from) // LONGEST_INTERVAL_S)
    if cycles < 1:
        return steady_from, None
    return steady_from, steady_from + cycles * LONGEST_INTERVAL_S


def per_thousand(amount: float | None, objects: int, scale: float = 1.0) -> float | None:
    """``amount`` (times ``scale``) per 1,000 catalog objects: tables and indexes."""
    if amount is None or objects <= 0:
        return None
    return amount * scale * 1000.0 / objects


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    unit: str
    pgradar: float | None
    peer: float | None
    ratio: float | None
    target: str
    passed: bool | None  # None: informational, or not measurable

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def evaluate(
    pgradar: Mapping[str, float | None], peer: Mapping[str, float | None], new_statements: int | None = None
) -> list[Row]:
    """One row per target: both figures, the ratio, and pass/fail against the issue's limit.

    ``texts_after_first_poll`` passes when pgradar fetched no more texts after
    its first poll than statements appeared in pg_stat_statements meanwhile.
    """
    rows = []
    for t in TARGETS:
        ours, theirs = pgradar.get(t.key), peer.get(t.key)
        r = ratio(ours, theirs)
        passed: bool | None = None
        if t.kind == "ratio":
            target = f"<= {t.limit:.0%} of peer" if t.limit != 1 else "<= peer"
            passed = None if r is None else r <= (t.limit or 0)
        elif t.kind == "absolute":
            target = f"<= {t.limit:g} {t.unit}"
            passed = None if ours is None else ours <= (t.limit or 0)
        elif t.kind == "texts":
            target = f"<= new statements ({new_statements if new_statements is not None else '?'})"
            passed = None if ours is None or new_statements is None else ours <= new_statements
            r = None
        else:
            target = ""
        rows.append(Row(t.key, t.label, t.unit, ours, theirs, r, target, passed))
    return rows


def human(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {suffix}"
        return f"{value:.0f} B"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def table(rows: Sequence[Row]) -> str:
    """The side-by-side table, as GitHub markdown (readable in a terminal too)."""
    head = ("figure", "pgradar", "postgres_exporter", "pgradar/peer", "target", "result")
    body = []
    for row in rows:
        result = "-" if row.passed is None else ("pass" if row.passed else "FAIL")
        body.append(
            (
                row.label,
                human(row.pgradar, row.unit),
                human(row.peer, row.unit),
                "-" if row.ratio is None else f"{row.ratio:.1%}",
                row.target or "-",
                result,
            )
        )
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


# --- growth from small to full ---------------------------------------------------------

GROWTH_KEYS = (
    "scrape_latency_median_s",
    "response_bytes",
    "series",
    "db_exec_ms_per_min",
    "db_backend_cpu_s_per_min",
    "steady_db_exec_ms_per_min",
    "agent_cpu_s_per_min",
    "peak_rss_bytes",
    "first_complete_pass_s",
    "steady_db_backend_cpu_ms_per_min_per_1000_objects",
    "steady_db_exec_ms_per_min_per_1000_objects",
)
# The database's cost per 1,000 objects, small to full: at most 1.5x (it grows with the catalog, no faster).
PER_OBJECT_KEYS = ("steady_db_backend_cpu_ms_per_min_per_1000_objects", "steady_db_exec_ms_per_min_per_1000_objects")
PER_OBJECT_LIMIT = 1.5
CATALOG_KEYS = ("databases", "tables", "indexes", "statements")


def growth(
    small: Mapping[str, object], full: Mapping[str, object]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(figure, small, full, full/small) for the catalog and pgradar's figures of two results."""
    out = []
    for key in CATALOG_KEYS:
        a, b = small["catalog"].get(key), full["catalog"].get(key)  # type: ignore[attr-defined]
        out.append((f"catalog {key}", a, b, ratio(b, a)))
    for key in GROWTH_KEYS:
        a = small["agents"]["pgradar"].get(key)  # type: ignore[index]
        b = full["agents"]["pgradar"].get(key)  # type: ignore[index]
        out.append((f"pgradar {key}", a, b, ratio(b, a)))
    return out


def growth_table(rows: Sequence[tuple[str, float | None, float | None, float | None]]) -> str:
    """The growth table; the per-1,000-objects rows carry their goal (within PER_OBJECT_LIMIT)."""
    head = ("figure", "small", "full", "full/small", "goal")

    def goal(name: str, r: float | None) -> str:
        # no faster than the catalog: a full catalog's 1,000 objects cost at most 1.5 times a small one's
        # (less is the fixed cost of a target, spread over more objects)
        if not name.endswith(PER_OBJECT_KEYS) or r is None:
            return "-"
        return f"<= x{PER_OBJECT_LIMIT:g}: {'pass' if r <= PER_OBJECT_LIMIT else 'FAIL'}"

    body = [
        (
            name,
            "-" if a is None else f"{a:,.4g}",
            "-" if b is None else f"{b:,.4g}",
            "-" if r is None else f"x{r:.2f}",
            goal(name, r),
        )
        for name, a, b, r in rows
    ]
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in (head, *body)]
    return "\n".join([lines[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *lines[1:]])
