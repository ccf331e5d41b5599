"""The vacuum rules on hand-built observations: threshold edges, the holder named, quiet look-alikes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from factories import T0, observation, server, sessions, slot, table
from factories import session as session_row

from pgradar.agent.classifiers.horizon import xmin_horizon_held
from pgradar.agent.classifiers.vacuum import (
    autovacuum_lagging,
    hot_updates_lost,
    index_bloat,
    multixact_wraparound,
    table_bloat,
)
from pgradar.agent.collect.vacuum import measure_candidates, with_seen
from pgradar.agent.model.findings import Finding, Severity
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.model.vacuum import (
    BloatSnapshot,
    HorizonHolder,
    IndexBloat,
    IndexBloatEstimate,
    Measured,
    TableBloat,
    TableBloatEstimate,
    VacuumProgress,
    VacuumSnapshot,
)

T = DEFAULT


def holder(kind: str = "backend", name: str = "42", **kw: object) -> HorizonHolder:
    values: dict[str, object] = dict(
        holder=kind,
        name=name,
        pid=42 if kind == "backend" else None,
        database="app",
        username="app_user",
        application="shop",
        state="idle in transaction",
        queryid=None,
        xmin=1000,
        xmin_age=5000,
        held_seconds=7200.0,
        catalog_only=False,
        active=None,
    )
    values.update(kw)
    return HorizonHolder(**values)  # type: ignore[arg-type]


def judged(*holders: HorizonHolder, dead: int = 50_000, **kw: object):  # type: ignore[no-untyped-def]
    obs = observation(tables=(table("orders", n_dead_tup=dead),), vacuum=VacuumSnapshot(T0, tuple(holders)), **kw)
    return list(xmin_horizon_held(obs, T))


def test_a_session_held_past_the_warning_is_named_with_its_fix() -> None:
    (f,) = judged(holder())
    assert f.severity is Severity.WARNING and f.database == "app"
    assert f.recommendation.startswith("SELECT pg_terminate_backend(42);")
    assert f.evidence["holders"][0]["held_seconds_from"] == "server" and f.evidence["dead_rows"] == 50_000
    assert "pid 42" in f.summary and "50,000 dead rows" in f.summary


def test_threshold_edges() -> None:
    assert judged(holder(held_seconds=T.xmin_horizon_warning_s - 1)) == []
    assert judged(holder(held_seconds=T.xmin_horizon_warning_s))[0].severity is Severity.WARNING
    assert judged(holder(held_seconds=T.xmin_horizon_critical_s))[0].severity is Severity.CRITICAL
    young_but_old_xmin = holder(held_seconds=10.0, xmin_age=int(T.xmin_horizon_critical_xids))
    assert judged(young_but_old_xmin)[0].severity is Severity.CRITICAL


def test_quiet_without_dead_rows_or_on_a_standby_or_when_nothing_died_since() -> None:
    assert judged(holder(), dead=0) == []
    assert judged(holder(), server_info=server(standby=True)) == []
    assert judged(holder(xmin_age=0)) == []
    obs = observation(vacuum=VacuumSnapshot(T0, (holder(),)))  # tables not read yet
    assert list(xmin_horizon_held(obs, T)) == []


def test_prepared_transaction_and_holders_of_every_database() -> None:
    (f,) = judged(holder("prepared", "tx-1", state="", application=""))
    assert f.recommendation.startswith("ROLLBACK PREPARED 'tx-1';") and "COMMIT PREPARED 'tx-1'" in f.recommendation
    standby = holder("standby", "replica-1", database="", held_seconds=None, seen_seconds=4000.0)
    (g,) = judged(standby)
    assert g.database is None and "hot_standby_feedback" in g.recommendation
    assert g.evidence["holders"][0]["held_seconds_from"] == "seen by pgradar"


def test_a_watched_standby_names_its_oldest_transaction() -> None:
    from factories import receiver, replication

    peer = observation(
        server_info=server(standby=True),
        replication=replication(receiver_stat=replace(receiver(), standby_name="replica-1")),
        sessions=sessions(session_row(77, state="idle in transaction", query_s=5000.0)),
    )
    standby = holder("standby", "replica-1", database="", held_seconds=None, seen_seconds=20.0)
    (f,) = judged(standby, peers={"replica": peer})
    assert "SELECT pg_terminate_backend(77);" in f.recommendation
    assert f.evidence["holders"][0]["held_seconds_from"] == "standby target replica"


def test_slot_fix_is_given_once() -> None:
    from factories import replication

    logical = holder(
        "slot",
        "old_slot",
        database="app",
        application="logical",
        catalog_only=True,
        active=False,
        held_seconds=None,
        seen_seconds=7200.0,
    )
    inactive = judged(logical, dead=0, replication=replication(slots=(slot("old_slot"),)))
    assert len(inactive) == 1 and "pg_drop_replication_slot" not in inactive[0].recommendation
    active_slot = replication(slots=(slot("old_slot", active=True),))
    (f,) = judged(replace(logical, active=True, pid=9), dead=0, replication=active_slot)
    assert f.recommendation.startswith("SELECT pg_drop_replication_slot('old_slot');")


def test_seen_seconds_follow_the_same_xmin_and_forget_the_rest() -> None:
    memory: dict[tuple[str, str, int], object] = {}
    h = holder("slot", "s", held_seconds=None)
    assert with_seen([h], memory, T0)[0].seen_seconds == 0  # type: ignore[arg-type]
    assert with_seen([h], memory, T0 + timedelta(seconds=30))[0].seen_seconds == 30  # type: ignore[arg-type]
    moved = replace(h, xmin=2000)
    assert with_seen([moved], memory, T0 + timedelta(seconds=60))[0].seen_seconds == 0  # type: ignore[arg-type]
    assert list(memory) == [moved.key]


MIB = 1024 * 1024


def estimate(size: int = 1000 * MIB, wasted: int | None = 500 * MIB, name: str = "orders") -> TableBloatEstimate:
    return TableBloatEstimate("app", 1006, "public", name, size, wasted, 100, None)


def bloat_of(*rows: TableBloat, **kw: object) -> list[Finding]:
    return list(table_bloat(observation(bloat=BloatSnapshot(T0, rows), **kw), T))


def test_table_bloat_edges_and_basis() -> None:
    (f,) = bloat_of(TableBloat(estimate()))
    assert f.evidence["basis"] == "estimate" and f.evidence["wasted_bytes"] == 500 * MIB
    assert f.recommendation.startswith("VACUUM FULL public.orders;") and "ACCESS EXCLUSIVE" in f.recommendation
    assert bloat_of(TableBloat(estimate(wasted=int(T.bloat_min_bytes) - 1, size=200 * MIB))) == []
    assert bloat_of(TableBloat(estimate(wasted=299 * MIB))) == []  # below bloat_ratio of 1000 MiB
    assert len(bloat_of(TableBloat(estimate(wasted=300 * MIB)))) == 1
    assert bloat_of(TableBloat(estimate(wasted=None))) == []
    # The measured figure wins over the estimate, either way.
    measured_low = TableBloat(estimate(), Measured(1000 * MIB, 10 * MIB))
    assert bloat_of(measured_low) == []
    (g,) = bloat_of(TableBloat(estimate(wasted=0), Measured(1000 * MIB, 600 * MIB)))
    assert g.evidence["basis"] == "pgstattuple" and g.evidence["estimated_wasted_bytes"] == 0


def test_measure_candidates_near_the_thresholds_largest_first() -> None:
    small = estimate(size=10 * MIB, wasted=9 * MIB, name="small")
    near = estimate(size=400 * MIB, wasted=60 * MIB, name="near")
    far = estimate(size=1000 * MIB, wasted=10 * MIB, name="far")
    unknown = estimate(size=200 * MIB, wasted=None, name="unknown")
    huge = estimate(size=int(T.bloat_measure_max_bytes) + 1, wasted=10**10, name="huge")
    big = estimate(size=1000 * MIB, wasted=700 * MIB, name="big")
    picked = measure_candidates([small, near, far, unknown, huge, big], T)
    assert [e.relation for e in picked] == ["big", "unknown", "near"]


def test_index_bloat_names_the_index_and_reindexes_it_concurrently() -> None:
    def index_row(wasted: int | None, measured: Measured | None = None) -> IndexBloat:
        return IndexBloat(
            IndexBloatEstimate("app", 7, "Sales", "orders", "orders_pkey", 400 * MIB, wasted, 90), measured
        )

    def judged_indexes(*rows: IndexBloat) -> list[Finding]:
        return list(index_bloat(observation(bloat=BloatSnapshot(T0, (), indexes=rows)), T))

    (f,) = judged_indexes(index_row(200 * MIB))
    assert (f.schema, f.relation, f.index) == ("Sales", "orders", "orders_pkey")
    assert f.recommendation.startswith('REINDEX INDEX CONCURRENTLY "Sales".orders_pkey;')
    assert judged_indexes(index_row(119 * MIB)) == []  # below bloat_ratio of 400 MiB
    assert judged_indexes(index_row(200 * MIB, Measured(400 * MIB, 50 * MIB))) == []


def test_autovacuum_lagging_needs_the_trigger_for_the_lag_time_and_says_why() -> None:
    from factories import settings as settings_snapshot
    from factories import tables_snapshot

    big = table("events", rows=50_000_000, n_dead_tup=12_000_000)  # trigger: 50 + 0.2 * 50M = 10,000,050
    earlier = tables_snapshot((big,), taken_at=T0 - timedelta(seconds=T.autovacuum_lag_s))
    worker = VacuumProgress(9, "app", 1, "scanning heap", True, 600.0, 3)
    others = tuple(replace(worker, pid=p, relid=50 + p) for p in (1, 2))
    busy = VacuumSnapshot(T0, (), (replace(worker, relid=77), *others))

    def lag(**kw: object) -> list[Finding]:
        obs = observation(tables=kw.pop("tables", (big,)), settings=settings_snapshot(), **kw)  # type: ignore[arg-type]
        return list(autovacuum_lagging(obs, T))

    assert lag() == []  # above the trigger, but only just seen
    (f,) = lag(history={"tables": (earlier,)}, vacuum=busy)
    assert f.evidence["trigger_rows"] == 10_000_050 and f.evidence["above_trigger_seconds"] == T.autovacuum_lag_s
    assert f.evidence["reasons"][0].startswith("every autovacuum worker is busy (3 of autovacuum_max_workers 3)")
    assert (
        "ALTER TABLE public.events SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000)"
        in (f.recommendation)
    )
    assert f.recommendation.splitlines()[-1] == "VACUUM (VERBOSE) public.events;"
    off = table("events", rows=50_000_000, n_dead_tup=12_000_000, reloptions=["autovacuum_enabled=false"])
    (g,) = lag(tables=(off,))  # one pass is enough: no run will come
    assert g.evidence["reasons"][0] == "autovacuum is off for this table"
    written_off = replace(off, reloptions=["autovacuum_enabled=off"])  # as WITH (autovacuum_enabled = off) stores it
    assert lag(tables=(written_off,))[0].evidence["reasons"][0] == "autovacuum is off for this table"
    below = table("events", rows=50_000_000, n_dead_tup=9_000_000)
    assert lag(tables=(below,), history={"tables": (replace(earlier, tables=(below,)),)}) == []


def test_updated_columns_from_statement_texts() -> None:
    from pgradar.agent.sqlshape.writes import UpdatedColumns, updated_columns

    assert updated_columns('UPDATE public.orders o SET status = $1, "Total" = o.total + $2 WHERE id = $3') == (
        UpdatedColumns("public", "orders", ("status", "Total"))
    )
    assert updated_columns("update orders set (a, b) = ($1, $2) where id = $3") == UpdatedColumns(
        None, "orders", ("a", "b")
    )
    assert updated_columns("SELECT status FROM orders") is None
    assert updated_columns("UPDATE orders SET") is None


def test_hot_updates_lost_only_where_an_index_holds_a_set_column() -> None:
    from factories import index, snap, stat

    orders = table("orders", n_tup_upd=50_000, n_tup_hot_upd=1_000)
    status_idx = index("orders_status", ["status"])
    pkey = index("orders_pkey", ["id"], is_unique=True, constraint_type="p")
    statements = snap(1, replace(stat(11, 40_000, 10.0), database="app"), replace(stat(12, 900, 1.0), database="app"))

    def hot(texts: dict[tuple[int, int], str], **kw: object) -> list[Finding]:
        obs = observation(
            tables=kw.pop("tables", (orders,)),  # type: ignore[arg-type]
            indexes=(status_idx, pkey),
            statements=statements,
            texts=texts,
            **kw,
        )
        return list(hot_updates_lost(obs, T))

    dbid = statements.rows[0].dbid
    (f,) = hot({(dbid, 11): "UPDATE orders SET status = $1 WHERE id = $2"})
    assert f.evidence["hot_share"] == 0.02 and f.evidence["indexes_written_per_update"] == 2
    assert f.recommendation.startswith("DROP INDEX CONCURRENTLY public.orders_status;")
    assert hot({(dbid, 11): "UPDATE orders SET note = $1 WHERE id = $2"}) == []  # no index holds note
    assert hot({(dbid, 11): "UPDATE other SET status = $1 WHERE id = $2"}) == []
    mostly_hot = table("orders", n_tup_upd=50_000, n_tup_hot_upd=30_000)
    assert hot({(dbid, 11): "UPDATE orders SET status = $1 WHERE id = $2"}, tables=(mostly_hot,)) == []
    few = table("orders", n_tup_upd=int(T.hot_min_updates) - 1, n_tup_hot_upd=0)
    assert hot({(dbid, 11): "UPDATE orders SET status = $1 WHERE id = $2"}, tables=(few,)) == []


def test_multixact_wraparound_names_the_table_that_holds_it() -> None:
    from factories import database

    def mx(age: int, table_age: int) -> list[Finding]:
        db = replace(database("app"), mxid_age=age)
        held = TableBloat(replace(estimate(), mxid_age=table_age))
        return list(multixact_wraparound(observation(databases=(db,), bloat=BloatSnapshot(T0, (held,))), T))

    assert mx(int(T.mxid_age_warning) - 1, 0) == []
    (f,) = mx(int(T.mxid_age_warning), int(T.mxid_age_warning))
    assert f.severity is Severity.WARNING and f.relation == "orders"
    assert f.recommendation == "-- in database app:\nVACUUM (FREEZE, VERBOSE) public.orders;"
    (g,) = mx(int(T.mxid_age_critical), 1000)
    assert g.severity is Severity.CRITICAL and g.relation is None
    assert g.recommendation.endswith("VACUUM (FREEZE, VERBOSE);")
