"""wait_bottleneck without a server: the thresholds' edges, CPU and cores, the fix, one cause one finding."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pgradar.agent.classifiers import classify
from pgradar.agent.classifiers.load import join_findings, wait_bottleneck
from pgradar.agent.model.findings import Finding, Kind, Severity
from pgradar.agent.model.load import CPU, LoadHistory, LoadRow, LoadSample
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.model.waits import lookup, markdown

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def active(pid: int, wait: tuple[str, str], queryid: int | None = 7, database: str = "app", **kw: object) -> LoadRow:
    fields: dict[str, object] = {"username": "app", "application": "web", "active": True, "state": "active"}
    fields.update(kw)
    return LoadRow(pid, database, queryid, wait[0], wait[1], **fields)  # type: ignore[arg-type]


def observed(
    rows_at: list[list[LoadRow]], cpus: float | None = None, texts: dict[tuple[int, int], str] | None = None
) -> Observation:
    """An observation after one sample a second of each row list, in order."""
    history = LoadHistory()
    for s, rows in enumerate(rows_at):
        history.add(LoadSample(T0 + timedelta(seconds=s), 1.0, tuple(rows)))
    now = T0 + timedelta(seconds=len(rows_at))
    return Observation("main", now, load=history.window(cpus), statement_texts=texts or {})


def convoy(n: int = 60) -> list[list[LoadRow]]:
    holder = active(
        9, ("Client", "ClientRead"), queryid=11, active=False, state="idle in transaction", username="batch"
    )
    first = active(1, ("Lock", "transactionid"), blocked_by=(9,))
    queue = [active(p, ("Lock", "tuple"), blocked_by=(1,)) for p in (2, 3)]
    return [[holder, first, *queue, active(5, (CPU, CPU), queryid=8)] for _ in range(n)]


def test_a_lock_convoy_is_one_lock_bottleneck_with_its_blocker_and_the_fix_that_ends_it() -> None:
    obs = observed(convoy(), texts={(1, 7): "UPDATE counters SET n = n + $1 WHERE id = $2"})
    (lock,) = wait_bottleneck(obs, DEFAULT)  # transactionid and tuple: one cause, one finding
    e = lock.evidence
    assert lock.wait_event == "Lock" and e["events"] == {"Lock/tuple": 2.0, "Lock/transactionid": 1.0}
    assert e["aas"] == 4.0 and e["wait_aas"] == 3.0 and e["share"] == 0.75
    assert e["top_statements"][0]["queryid"] == "7"
    assert e["top_statements"][0]["statement"] == "UPDATE counters SET n = n + $1 WHERE id = $2"
    assert e["blockers"][0]["pid"] == 9 and e["blockers"][0]["state"] == "idle in transaction"  # the chain's head
    assert lock.recommendation.startswith("SELECT pg_terminate_backend(9);")
    assert "ALTER ROLE batch SET idle_in_transaction_session_timeout" in lock.recommendation
    assert lock.database == "app" and lock.kind is Kind.WAIT_BOTTLENECK


def test_below_the_load_or_the_share_or_the_window_there_is_no_finding() -> None:
    one_session = [[active(1, ("Lock", "transactionid"), blocked_by=(9,))] for _ in range(60)]
    assert list(wait_bottleneck(observed(one_session), DEFAULT)) != []  # 1 AAS, all of it one wait: at the edge
    assert list(wait_bottleneck(observed(one_session), replace(DEFAULT, load_min_aas=1.01))) == []
    spread = [[active(p, ("IO", f"Event{p}")) for p in range(4)] for _ in range(60)]  # 25% each, one class
    (io,) = wait_bottleneck(observed(spread), DEFAULT)
    assert io.wait_event == "IO" and io.evidence["share"] == 1.0  # the class, when no event holds most of it
    assert list(wait_bottleneck(observed(spread), replace(DEFAULT, load_wait_share=1.01))) == []
    assert list(wait_bottleneck(observed(one_session[:19]), DEFAULT)) == []  # 19 s sampled: too short to judge


def test_sessions_sleeping_on_purpose_are_load_but_no_bottleneck() -> None:
    sleeping = [[active(p, ("Timeout", "PgSleep")) for p in range(4)] for _ in range(60)]
    obs = observed(sleeping)
    assert obs.load.waits() == {("app", "Timeout", "PgSleep"): 240.0}
    assert list(wait_bottleneck(obs, DEFAULT)) == []


def test_a_bottleneck_that_ended_is_no_finding_on_the_next_pass() -> None:
    rows = convoy(120) + [[active(5, (CPU, CPU), queryid=8)] for _ in range(40)]  # the holder was ended
    assert list(wait_bottleneck(observed(rows), DEFAULT)) == []


def test_cpu_is_a_finding_only_above_the_configured_cores() -> None:
    busy = [[active(p, (CPU, CPU), queryid=100 + p % 2) for p in range(3)] for _ in range(60)]
    assert list(wait_bottleneck(observed(busy), DEFAULT)) == []  # cores unknown
    assert list(wait_bottleneck(observed(busy, cpus=4), DEFAULT)) == []  # 3 on 4 cores: the work being done
    (cpu,) = wait_bottleneck(observed(busy, cpus=2), DEFAULT)
    assert cpu.wait_event == CPU and cpu.severity is Severity.CRITICAL and cpu.evidence["cpu_aas"] == 3.0
    assert "on 2 cores" in cpu.summary


def test_disk_reads_name_the_setting_with_its_value() -> None:
    from pgradar.agent.model.activity import Settings, SettingsSnapshot
    from pgradar.agent.model.snapshots import Snapshots

    reads = [[active(p, ("IO", "DataFileRead"), queryid=31) for p in range(2)] for _ in range(60)]
    obs = observed(reads)
    settings = Settings(100, 3, 4 << 20, False, True, 50, 0.2, 50, 0.1, 200_000_000, 5000, 0.0,
                        (("shared_buffers", "16384", "8kB"),))  # fmt: skip
    obs = replace(obs, snapshots=Snapshots(settings=SettingsSnapshot(T0, settings)))
    (found,) = wait_bottleneck(obs, DEFAULT)
    assert "ALTER SYSTEM SET shared_buffers = '256MB';" in found.recommendation and "now 128MB" in found.recommendation
    seq = Finding(Kind.SEQ_SCAN, Severity.WARNING, "main", "s", "CREATE INDEX CONCURRENTLY x ON t (a);",
                  database="app", schema="public", relation="t", queryid="31")  # fmt: skip
    joined = [f for f in join_findings([found, seq]) if f.kind is Kind.WAIT_BOTTLENECK]
    assert joined[0].recommendation == "CREATE INDEX CONCURRENTLY x ON t (a);"


def test_lock_load_joins_lock_contention_instead_of_a_second_finding() -> None:
    obs = observed(convoy())
    lock = Finding(Kind.LOCK_CONTENTION, Severity.WARNING, "main", "blocked", "SELECT 1;", database="app")
    joined = join_findings([*wait_bottleneck(obs, DEFAULT), lock])
    assert [f.kind for f in joined] == [Kind.LOCK_CONTENTION]
    assert joined[0].evidence["load"]["wait_event_type"] == "Lock"
    findings, errors = classify(obs, DEFAULT)
    assert not errors and {f.kind for f in findings} == {Kind.WAIT_BOTTLENECK}


def test_the_knowledge_base_knows_every_version_s_name_and_the_page_is_generated_from_it() -> None:
    assert lookup("IO", "WALSync") is lookup("IO", "WalSync") is not None  # renamed in 17
    assert lookup("IO", "BufFileWrite") is lookup("IO", "BuffileWrite") is not None
    assert lookup("IPC", "BufferIO") is lookup("IPC", "BufferIo") is not None
    assert lookup("LWLock", "SubtransSLRU") is not None and lookup("LWLock", "MultiXactMemberSLRU") is not None
    assert lookup("IO", "AioIoCompletion") is not None  # 18
    assert lookup("IO", "NoSuchEvent") is None
    assert (ROOT / "docs" / "waits.md").read_text() == markdown(), "python -m pgradar.agent.model.waits > docs/waits.md"
