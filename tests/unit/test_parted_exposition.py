"""/metrics for a fleet: text cached per target and section, joined per family, and valid in both formats."""

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from factories import T0, index, snap, stat, table
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementTotals
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.prometheus import family_blocks, join_families, registry_for

TEXT = "text/plain; version=0.0.4"
NAMES = ("a", "b", "c", "d")


def target(name: str) -> TargetState:
    """A target with statements, tables, indexes, a problem and its own status: every section has series."""
    t = TargetState(name)
    t.up = True
    t.server = ServerInfo(180006, False, started_at=T0)
    before = snap(0, *[stat(q, 1, 1.0) for q in range(8)])
    after = snap(1, *[stat(q, 2, 1.0 + q) for q in range(8)])
    t.record("statements", before)
    t.record("statements", after)
    interval = statement_deltas(before, after)
    t.statement_totals = StatementTotals.empty()
    t.statement_totals.add(interval, {r.key for r in after.rows})
    t.statement_intervals.append(interval)
    rows = tuple(table(f"t{i}", relid=i, seq_tup_read=i) for i in range(30))
    t.record("tables", TablesSnapshot(T0, rows))
    t.record(
        "indexes", IndexesSnapshot(T0, tuple(index(f"i{i}", ["a"], relation=f"t{i}", indexrelid=i) for i in range(20)))
    )
    finding = Finding(
        Kind.UNUSED_INDEX,
        Severity.WARNING,
        name,
        "i0 is never used",
        "DROP INDEX public.i0;",
        database="app",
        schema="public",
        relation="t0",
        index="i0",
    )
    t.problems = {finding.id: ActiveProblem(finding, T0, T0)}
    t.collector("tables").runs = 1
    return t


def fleet() -> AgentState:
    return AgentState({name: target(name) for name in NAMES})


def headers(body: bytes) -> Counter[bytes]:
    return Counter(line.split(b" ")[2] for line in body.splitlines() if line.startswith(b"# HELP "))


def test_parted_text_equals_a_whole_render_with_one_header_per_family() -> None:
    state = fleet()
    registry = registry_for(state, top_statements=5, top_tables=10, top_indexes=10)
    parted = registry.render(generate_latest, TEXT)
    whole = generate_latest(registry)  # every collector at once, through prometheus_client alone
    assert sorted(parted.splitlines()) == sorted(whole.splitlines())
    assert headers(parted) and max(headers(parted).values()) == 1
    live = [line for line in parted.splitlines() if line.startswith(b"pgradar_table_live_rows{")]
    assert {line.split(b'target="')[1].split(b'"')[0] for line in live} == set(n.encode() for n in NAMES)


def test_parted_openmetrics_parses_strictly() -> None:
    registry = registry_for(fleet(), top_statements=5, top_tables=10, top_indexes=10)
    body = registry.render(openmetrics, OPENMETRICS)
    assert body.count(b"# EOF") == 1 and body.endswith(b"# EOF\n")
    # the OpenMetrics parser rejects a family whose samples are not together
    families = list(parse_openmetrics(body.decode()))
    assert len({f.name for f in families}) == len(families)
    samples = sorted((s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples)
    whole = sorted(
        (s.name, tuple(sorted(s.labels.items())))
        for f in parse_openmetrics(openmetrics(registry).decode())
        for s in f.samples
    )
    assert samples == whole


def test_a_change_in_one_target_encodes_only_that_targets_section() -> None:
    state = fleet()
    registry = registry_for(state, top_statements=5, top_tables=10, top_indexes=10)
    registry.render(generate_latest, TEXT)
    encoded = registry.encoded
    assert registry.render(generate_latest, TEXT) and registry.encoded == encoded  # nothing changed
    t = state.targets["c"]
    newer = TablesSnapshot(
        T0 + timedelta(minutes=3), tuple(replace(r, n_live_tup=7) for r in t.current().tables.tables)
    )
    t.record("tables", newer)
    body = registry.render(generate_latest, TEXT)
    assert registry.encoded == encoded + 1
    assert sorted(body.splitlines()) == sorted(generate_latest(registry).splitlines())
    t.collector("tables").runs += 1  # a job ran: the target's own series change, nothing else
    registry.render(generate_latest, TEXT)
    assert registry.encoded == encoded + 2


def test_a_target_no_longer_watched_leaves_the_exposition_and_the_cache() -> None:
    state = fleet()
    registry = registry_for(state, top_statements=5, top_tables=10, top_indexes=10)
    registry.render(generate_latest, TEXT)
    cached = len(registry._cache)
    del state.targets["d"]
    body = registry.render(generate_latest, TEXT)
    assert b'target="d"' not in body and b'target="a"' in body
    assert len(registry._cache) < cached


def test_family_blocks_round_trip_and_join() -> None:
    body = (
        b'# HELP x_total a counter\n# TYPE x_total counter\nx_total{t="1"} 1.0\n'
        b'# HELP y a gauge, "# HELP" in text\n# TYPE y gauge\ny{t="# HELP z"} 2.0\ny{t="2"} 3.0\n'
    )
    blocks = family_blocks(body)
    assert [name for name, _, _ in blocks] == [b"x_total", b"y"]
    assert join_families([blocks]) == body
    other = family_blocks(b'# HELP y a gauge, "# HELP" in text\n# TYPE y gauge\ny{t="3"} 4.0\n')
    joined = join_families([blocks, other])
    assert joined.count(b"# TYPE y gauge") == 1 and joined.endswith(b'y{t="2"} 3.0\ny{t="3"} 4.0\n')
    assert family_blocks(b"") == [] and family_blocks(b"# EOF\n") == []
