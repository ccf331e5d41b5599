"""The lean encoder writes pgradar's families byte for byte as prometheus_client's encoders do, in both formats."""

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from factories import (
    MB,
    T0,
    bouncer,
    database,
    index,
    pool,
    receiver,
    replication,
    session,
    sessions,
    settings,
    slot,
    snap,
    standby_row,
    stat,
    table,
)
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.exposition import generate_latest as text_reference
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_reference
from prometheus_client.utils import floatToGoString

from pgradar.agent.derive.deltas import statement_deltas
from pgradar.agent.model.activity import ConnectionGroup, DatabaseSnapshot
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.statements import StatementTotals
from pgradar.agent.runtime.problems import ActiveProblem
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.encoding import LeanEncoder, go_float, lean_blocks
from pgradar.exporters.prometheus import PartedRegistry, registry_for


class Given:
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def lean(reference: Callable[..., bytes]) -> Callable[[Any], bytes]:
    """Our encoder for one of prometheus_client's, whole: a drop-in with the same bytes."""
    blocks = lean_blocks(reference)
    assert blocks is not None
    encoder: LeanEncoder = blocks.__self__  # type: ignore[attr-defined]
    return encoder.encode


def written_lean(reference: Callable[..., bytes], metric: Metric) -> bool:
    """Whether the lean encoder matching ``reference`` writes ``metric`` itself, not through prometheus_client."""
    lean = lean_blocks(reference)
    assert lean is not None
    encoder: LeanEncoder = lean.__self__  # type: ignore[attr-defined]
    return encoder.family(metric) is not None


PAIRS = [(lean(text_reference), text_reference), (lean(openmetrics_reference), openmetrics_reference)]

# What choose_encoder answers to the Accept headers scrapers send, escaping schemes included.
ACCEPT = [
    "",
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0; escaping=underscores",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=dots",
    "text/plain; version=1.0.0; escaping=values",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=dots",
    "application/openmetrics-text; version=2.0.0; escaping=values",
]

names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
values = st.one_of(
    st.sampled_from(
        [0.0, -0.0, 1.0, -1.0, 3.0, 1e-12, 1e21, 1e6, 999999.5, 1234567.0, 1e16, -1e7, math.nan, math.inf, -math.inf]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**18), 10**18).map(float),
)
label_values = st.one_of(st.sampled_from(["", '"', "\\", "\n", 'a\\"b\nc', "\\n"]), st.text())
documentation = st.one_of(st.sampled_from(["", 'say "hi"', "back\\slash\nnew line", "\\n"]), st.text())


@st.composite
def family(draw: st.DrawFn) -> Metric:
    kind = draw(st.sampled_from([GaugeMetricFamily, CounterMetricFamily]))
    labels = draw(st.lists(names, max_size=4, unique=True))
    metric = kind(draw(names), draw(documentation), labels=labels)
    for _ in range(draw(st.integers(0, 5))):
        metric.add_metric([draw(label_values) for _ in labels], draw(values))
    return metric


@st.composite
def families(draw: st.DrawFn) -> list[Metric]:
    out = draw(st.lists(family(), max_size=4))
    seen: set[str] = set()
    return [m for m in out if not (m.name in seen or seen.add(m.name))]  # type: ignore[func-returns-value]


@hypothesis_settings(max_examples=300, deadline=None)
@given(families())
def test_random_families_encode_as_prometheus_client_does(metrics: list[Metric]) -> None:
    for mine, reference in PAIRS:
        assert mine(Given(metrics)) == reference(Given(metrics))
        assert all(written_lean(reference, m) for m in metrics)


@hypothesis_settings(max_examples=60, deadline=None)
@given(families(), st.sampled_from(ACCEPT))
def test_every_escaping_scheme_choose_encoder_picks(metrics: list[Metric], accept: str) -> None:
    encoder, _ = choose_encoder(accept)
    lean = lean_blocks(encoder)
    assert lean is not None
    expected = encoder(Given(metrics))
    body = b"".join(header + lines for _, header, lines in lean(metrics))
    assert body == expected.removesuffix(b"# EOF\n")


@given(values)
def test_go_float_is_float_to_go_string(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def test_families_it_does_not_write_go_to_prometheus_client() -> None:
    timed = GaugeMetricFamily("timed", "a timestamp", labels=["a"])
    timed.add_metric(["x"], 1.0, timestamp=1700000000.5)
    created = CounterMetricFamily("made", "a _created sample", labels=["a"])
    created.add_metric(["x"], 2.0, created=1700000000.0)
    unknown = UnknownMetricFamily("odd", "another type", labels=["a"])
    unknown.add_metric(["x"], 3.0)
    uneven = GaugeMetricFamily("uneven", "samples of other labels", labels=["a"])
    uneven.add_metric(["x"], 4.0)
    uneven.add_sample("uneven", {"b": "y"}, 5.0)
    with_unit = GaugeMetricFamily("sized", "a unit", labels=["a"], unit="bytes")
    with_unit.add_metric(["x"], 6.0)
    metrics = [timed, created, unknown, uneven, with_unit]
    for mine, reference in PAIRS:
        assert mine(Given(metrics)) == reference(Given(metrics))
        assert mine(Given([])) == reference(Given([]))


def test_only_prometheus_client_encoders_map_to_lean_ones() -> None:
    assert lean_blocks(text_reference) is not None and lean_blocks(openmetrics_reference) is not None
    assert lean_blocks(lambda registry: text_reference(registry)) is None
    assert lean_blocks(partial(text_reference, Given([]))) is None  # positional options: not a choose_encoder answer


ODD = 'db "one"\\two\nthree'  # a target name every label escape applies to


def full_target(name: str) -> TargetState:
    """A target with series in every section: statements, tables, indexes, databases, activity, sessions, ..."""
    t = TargetState(name)
    t.up = True
    t.server = ServerInfo(180006, False, started_at=T0)
    before = snap(0, *[stat(q, 1, 1.0) for q in range(12)])
    after = snap(1, *[stat(q, 2 + q, 1.5 * q, rows=q) for q in range(12)])
    t.record("statements", before)
    t.record("statements", after)
    interval = statement_deltas(before, after)
    t.statement_totals = StatementTotals.empty()
    t.statement_totals.add(interval, {r.key for r in after.rows})
    t.statement_intervals.append(interval)
    rows = tuple(table(f't{i}"\\', relid=i, seq_tup_read=i * 10_000_000, schema=f"s{i % 2}\n") for i in range(25))
    t.record("tables", TablesSnapshot(T0, rows))
    t.record("tables", TablesSnapshot(T0 + timedelta(minutes=1), tuple(replace(r, n_tup_ins=7) for r in rows)))
    t.record(
        "indexes",
        IndexesSnapshot(T0, tuple(index(f"i{i}", ["a"], relation=f't{i}"\\', indexrelid=i) for i in range(30))),
    )
    t.record("database", DatabaseSnapshot(T0, (database("app"), database('odd "db"', xid_age=2**31))))
    t.record("settings", settings())
    t.record(
        "sessions",
        sessions(
            session(1, "idle in transaction", state_s=70),
            session(2, query_s=12, blocked_by=(1,)),
            session(3, query_s=400, database='odd "db"'),
            connections=(ConnectionGroup("app", "shop", "web\\app", "active", 7),),
        ),
    )
    t.record(
        "replication",
        replication(standby_row(behind=5 * MB, replay_lag=2.5), slots=(slot(), slot("s2", active=True))),
    )
    t.record("pgbouncer", bouncer(pool(waiting=4, maxwait=3.5), pool(database="other", user='u"2')))
    finding = Finding(
        Kind.UNUSED_INDEX,
        Severity.WARNING,
        name,
        "i29 is never used",
        "DROP INDEX",
        database="app",
        schema="s1\n",
        relation='t29"\\',
        index="i29",
    )
    t.problems = {finding.id: ActiveProblem(finding, T0, T0)}
    for collector in ("tables", "statements", "activity"):
        status = t.collector(collector)
        status.runs, status.last_duration_s, status.last_success_at = 3, 0.0125, T0
    return t


def standby_target(name: str) -> TargetState:
    t = TargetState(name)
    t.up = False
    t.server = ServerInfo(170004, True, started_at=T0)
    t.record("replication", replication(receiver_stat=receiver(last_replay_ago=30, pause_state="paused")))
    return t


def full_state() -> AgentState:
    return AgentState(
        {
            "primary": full_target("primary"),
            ODD: full_target(ODD),
            "standby": standby_target("standby"),
        }
    )


def wrapped(encoder: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """The same prometheus_client encoder, but not one lean_blocks knows: the registry encodes with it."""
    return lambda registry: encoder(registry)


@pytest.mark.parametrize("accept", ACCEPT)
def test_parted_registry_body_equals_prometheus_clients(accept: str) -> None:
    encoder, content_type = choose_encoder(accept)
    state = full_state()
    lean: PartedRegistry = registry_for(state, top_statements=5, top_tables=10, top_indexes=10)
    reference: PartedRegistry = registry_for(state, top_statements=5, top_tables=10, top_indexes=10)
    body = lean.render(encoder, content_type)
    assert all(value in body for value in (b'odd \\"db\\"', b'"i29"', b'"replica1"', b'"old_slot"', b'"u\\"2"'))
    assert body == reference.render(wrapped(encoder), content_type)
    state.targets["primary"].collector("tables").runs += 1  # one section encoded again, the rest reused
    assert lean.render(encoder, content_type) == reference.render(wrapped(encoder), content_type)


def test_every_family_of_the_full_state_is_written_by_the_lean_encoder() -> None:
    """No family of pgradar's sections falls back to prometheus_client (which would cost what it did)."""
    registry = registry_for(full_state(), top_statements=5, top_tables=10, top_indexes=10)
    metrics = [metric for part in registry.parts for metric in part.collect()]
    assert len(metrics) > 50
    for reference in (text_reference, openmetrics_reference):
        assert [m.name for m in metrics if not written_lean(reference, m)] == []


def test_escaped_label_values_follow_what_is_rendered_not_what_ever_was() -> None:
    """Under statement churn every render brings new queryids: the cache keeps the last two renders' values."""
    from pgradar.exporters import encoding

    cache = encoding.ESCAPED_LABEL_VALUES
    for render in range(50):
        encoding.forget_unused_label_values()
        assert encoding.escape_label_value("target-a") == "target-a"  # in every render
        for n in range(100):
            assert encoding.escape_label_value(f"queryid {render}-{n}") == f"queryid {render}-{n}"
    assert encoding.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert len(cache) + len(cache.older) <= 2 * 101 + 1
    assert "target-a" in cache and "queryid 0-0" not in cache and "queryid 0-0" not in cache.older
