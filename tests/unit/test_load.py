"""Database load without a server: samples into counters and buckets, and the bound on series."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pgradar.agent.model.load import (
    BUCKET_S,
    CPU,
    OTHER,
    LoadHistory,
    LoadRow,
    LoadSample,
    LoadTotals,
    sample_interval,
    top_statements,
)
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.prometheus import StateCollector

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
WAITS = (
    (CPU, CPU),
    ("Lock", "transactionid"),
    ("IO", "DataFileRead"),
    ("LWLock", "WALWrite"),
    ("Client", "ClientRead"),
)


def row(
    pid: int, queryid: int | None, wait: tuple[str, str] = (CPU, CPU), database: str = "app", **kw: object
) -> LoadRow:
    fields: dict[str, object] = {"username": "u", "application": "a", "active": True, "state": "active"}
    fields.update(kw)
    return LoadRow(pid, database, queryid, wait[0], wait[1], **fields)  # type: ignore[arg-type]


def at(seconds: float, *rows: LoadRow, interval: float = 1.0) -> LoadSample:
    return LoadSample(T0 + timedelta(seconds=seconds), interval, rows)


def test_a_sample_stands_for_its_interval_never_for_missed_time() -> None:
    assert sample_interval(1.0, None, T0) == 1.0
    assert sample_interval(1.0, T0, T0 + timedelta(seconds=5)) == 1.0  # four missed: not invented
    assert sample_interval(1.0, T0, T0 + timedelta(seconds=0.4)) == 0.4  # early (coalesced): the time since
    assert sample_interval(1.0, T0, T0 - timedelta(seconds=1)) == 0.0


def test_idle_and_blocking_rows_are_no_load_and_counters_add_per_active_backend() -> None:
    history = LoadHistory()
    holder = row(9, 77, ("Client", "ClientRead"), active=False, state="idle in transaction")
    for s in range(3):
        history.add(at(s, row(1, 5), row(2, 6, ("Lock", "transactionid"), blocked_by=(9,)), holder))
    totals = history.totals
    assert totals.waits == {("app", CPU, CPU): 3.0, ("app", "Lock", "transactionid"): 3.0}
    assert totals.statements == {("app", "5", CPU): 3.0, ("app", "6", "Lock"): 3.0}
    window = history.window()
    assert window.seconds == 3.0 and window.samples == 3
    assert window.blockers() == {("app", 77, "idle in transaction", 9, "u"): 3.0}
    top = top_statements(window.statements(), 5)
    assert [(s.queryid, s.seconds) for s in top] == [(5, 3.0), (6, 3.0)]


def test_buckets_roll_over_and_a_window_cuts_them() -> None:
    history = LoadHistory()
    for s in range(0, 60):
        history.add(at(s, row(1, 5)))
    window = history.window()
    assert len(window.buckets) == 60 / BUCKET_S and window.seconds == 60.0
    since = window.since((T0 + timedelta(seconds=30)).timestamp())
    assert since.seconds == 30.0


def test_statement_series_stay_bounded_with_1000_sessions_and_churning_statements() -> None:
    rng = random.Random(29)
    top = 20
    totals = LoadTotals(top=top)
    heavy = 4242  # one statement always busy on 50 sessions: it keeps its series through the churn
    series_seen: set[tuple[str, str, str]] = set()
    for s in range(300):
        rows = [row(pid, heavy, WAITS[pid % 2], database=f"db{pid % 3}") for pid in range(50)]
        # 950 sessions on statements that change every sample (one-off texts, literals in them)
        rows += [
            row(pid, 1_000_000 + s * 1000 + rng.randrange(400), rng.choice(WAITS), database=f"db{pid % 3}")
            for pid in range(50, 1000)
        ]
        totals.add(at(s, *rows), 1.0)
        series_seen.update(totals.statements)
        labels = {(db, q) for db, q, _ in totals.statements if q != OTHER}
        assert len(labels) <= top
        assert len(totals.statements) <= (top + 3) * len(WAITS)  # the top and one "other" per database
        assert len(totals.candidates) <= 10 * top
    assert {("db0", str(heavy)), ("db1", str(heavy)), ("db2", str(heavy))} <= {(d, q) for d, q, _ in totals.statements}
    assert sum(totals.waits.values()) == 300 * 1000  # every active backend counted every second
    assert totals.statements[("db0", OTHER, CPU)] > 0


def test_the_exporter_renders_the_bounded_counters() -> None:
    state = AgentState()
    target = TargetState("main")
    target.load.totals.top = 5
    state.targets["main"] = target
    for s in range(20):
        target.load.add(at(s, *(row(pid, 100 + (pid + s) % 40, WAITS[pid % 3]) for pid in range(1000))))
    families = {m.name: m for m in StateCollector(state, 50).collect()}
    load = families["pgradar_db_load_seconds"]  # the client strips _total from a counter family's name
    assert len(load.samples) == 3  # three wait events in one database
    statements = families["pgradar_statement_load_seconds"]
    queryids = {s.labels["queryid"] for s in statements.samples}
    assert OTHER in queryids and len(queryids) <= 6
    assert sum(s.value for s in load.samples if s.name.endswith("_total")) == 20 * 1000
    sampled = families["pgradar_load_sampled_seconds"].samples
    assert [s.value for s in sampled if s.name.endswith("_total")] == [20.0]
