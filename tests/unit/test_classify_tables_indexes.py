"""Table and index classifiers on hand-built observations: threshold edges and negative cases."""

from dataclasses import replace
from datetime import timedelta

from factories import T0, database, foreign_key, index, observation, server, table

from pgradar.agent.classifiers import indexes as ix
from pgradar.agent.classifiers import tables as tb
from pgradar.agent.collect.collectors import parse_settings
from pgradar.agent.model.activity import SettingsSnapshot
from pgradar.agent.model.catalog import IndexesSnapshot, IndexFirstSeen
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import DEFAULT


def run(classifier, obs: Observation) -> list[Finding]:
    return list(classifier(obs, DEFAULT))


# --- stale_stats ---------------------------------------------------------------------------


def test_stale_stats_at_the_ratio_and_not_below() -> None:
    at = table(n_mod_since_analyze=20_000, n_tup_ins=100_000, n_tup_upd=20_000)
    below = table("b", n_mod_since_analyze=19_999, n_tup_ins=100_000, n_tup_upd=19_999)
    found = run(tb.stale_stats, observation(tables=(at, below)))
    assert [f.relation for f in found] == ["orders"]
    assert found[0].recommendation.startswith("ANALYZE public.orders;")


def test_stale_stats_ignores_the_bulk_load_race() -> None:
    # pgbench -i: loaded, analyzed, and the counter still counts every loaded row.
    loaded = table(n_mod_since_analyze=100_000, n_tup_ins=100_000)
    assert run(tb.stale_stats, observation(tables=(loaded,))) == []
    # the same table after as many rows again were inserted: stale for real
    grown = table(n_mod_since_analyze=200_000, n_tup_ins=200_000, n_live_tup=200_000)
    assert len(run(tb.stale_stats, observation(tables=(grown,)))) == 1


def test_stale_stats_never_analyzed_and_small_tables() -> None:
    never = table('Mixed "Case"', schema="Sales Data", last_analyze=None, reltuples=-1, n_live_tup=50_000)
    small = table("tiny", rows=200, last_analyze=None)
    found = run(tb.stale_stats, observation(tables=(never, small)))
    assert [f.relation for f in found] == ['Mixed "Case"']
    assert found[0].recommendation.splitlines()[0] == 'ANALYZE "Sales Data"."Mixed ""Case""";'


def test_stale_stats_names_the_autovacuum_setting_when_it_is_the_cause() -> None:
    settings = parse_settings([("autovacuum_analyze_scale_factor", "0.5", ""), ("autovacuum", "on", "")])
    stale = table(n_mod_since_analyze=30_000, n_tup_ins=100_000, n_tup_upd=30_000)
    found = run(tb.stale_stats, observation(tables=(stale,), settings=SettingsSnapshot(T0, settings)))
    assert "ALTER TABLE public.orders SET (autovacuum_analyze_scale_factor = 0.05)" in found[0].recommendation
    # default settings: autovacuum should have acted already, no per-table setting to blame
    found = run(tb.stale_stats, observation(tables=(stale,), settings=SettingsSnapshot(T0, parse_settings([]))))
    assert "ALTER TABLE" not in found[0].recommendation
    off = replace(stale, reloptions=["autovacuum_enabled=false"])
    assert "RESET (autovacuum_enabled)" in run(tb.stale_stats, observation(tables=(off,)))[0].recommendation


# --- dead_tuples ---------------------------------------------------------------------------


def test_dead_tuples_edges() -> None:
    warn = table(n_live_tup=80_000, n_dead_tup=20_000)
    crit = table("c", n_live_tup=50_000, n_dead_tup=50_000)
    below = table("b", n_live_tup=80_001, n_dead_tup=19_999)
    few = table("f", rows=1000, n_live_tup=1000, n_dead_tup=9_999)
    found = {f.relation: f for f in run(tb.dead_tuples, observation(tables=(warn, crit, below, few)))}
    assert set(found) == {"orders", "c"}
    assert found["orders"].severity == "warning" and found["c"].severity == "critical"
    assert found["orders"].recommendation.startswith("VACUUM (VERBOSE, ANALYZE) public.orders;")


# --- xid_wraparound ------------------------------------------------------------------------


def test_xid_wraparound_names_the_table_that_holds_it_back() -> None:
    old = table(xid_age=1_250_000_000)
    found = run(
        tb.xid_wraparound,
        observation(tables=(old,), databases=(database(xid_age=1_250_000_000), database("other", 499_999_999))),
    )
    assert len(found) == 1
    assert (found[0].severity, found[0].database, found[0].relation) == ("critical", "app", "orders")
    assert "VACUUM (FREEZE, VERBOSE) public.orders;" in found[0].recommendation
    spread = run(
        tb.xid_wraparound, observation(tables=(table(xid_age=100),), databases=(database(xid_age=500_000_000),))
    )
    assert spread[0].severity == "warning" and spread[0].relation is None


# --- seq_scan (table counters) -------------------------------------------------------------


def test_table_seq_scans() -> None:
    hot = table(seq_scan=100, seq_tup_read=100 * 100_000, idx_scan=99)
    indexed = table("i", seq_scan=100, seq_tup_read=100 * 100_000, idx_scan=101)
    small = table("s", rows=5000, seq_scan=10_000, seq_tup_read=10_000 * 5000, idx_scan=0)
    found = run(tb.table_seq_scans, observation(tables=(hot, indexed, small)))
    assert [f.relation for f in found] == ["orders"]
    assert "pg_stat_statements" in found[0].recommendation


def test_table_seq_scans_suggest_an_index_from_the_statement_texts() -> None:
    from factories import snap, stat

    hot = table(seq_scan=100, seq_tup_read=100 * 100_000, idx_scan=0)
    statements = snap(0, stat(41, 10, 5.0), stat(42, 100, 900.0))
    texts = {
        (5, 41): "SELECT * FROM other WHERE x = $1",
        (5, 42): "SELECT id FROM orders WHERE customer_id = $1 AND created > $2",
    }
    obs = replace(observation(tables=(hot,), statements=statements), statement_texts=texts)
    (found,) = run(tb.table_seq_scans, obs)
    assert found.recommendation.startswith(
        "CREATE INDEX CONCURRENTLY orders_customer_id_created_idx ON public.orders (customer_id, created);"
    )
    assert found.evidence["statement_queryid"] == "42"
    covered = observation(
        tables=(hot,),
        indexes=(index("o_c_c", ["customer_id", "created", "x"], relid=hot.relid),),
        statements=statements,
    )
    (fallback,) = run(tb.table_seq_scans, replace(covered, statement_texts=texts))
    assert "pg_stat_statements" in fallback.recommendation  # an index already leads with it: no proposal


# --- unused_index --------------------------------------------------------------------------


def test_unused_index_window_decides_the_severity() -> None:
    idx = index("orders_status_idx", ["status"])
    found = run(ix.unused_index, observation(indexes=(idx,), server_info=server(started_days_ago=30)))
    assert found[0].severity == "warning"
    assert found[0].recommendation.startswith("DROP INDEX CONCURRENTLY public.orders_status_idx;")
    short = run(ix.unused_index, observation(indexes=(idx,), server_info=server(started_days_ago=6.9)))
    assert short[0].severity == "info" and "6.9 days (since server start)" in short[0].summary
    reset = run(
        ix.unused_index, observation(indexes=(idx,), databases=(database(stats_reset=T0 - timedelta(minutes=10)),))
    )
    assert reset[0].severity == "info" and "10 min (since statistics reset)" in reset[0].summary
    seen = IndexFirstSeen(T0, (((idx.database, idx.indexrelid), T0 - timedelta(hours=2)),))
    new = run(ix.unused_index, observation(indexes=(idx,), index_first_seen=seen))
    assert new[0].severity == "info" and "index first seen by pgradar" in new[0].summary


def test_unused_index_never_for_constraints_used_or_small() -> None:
    cases = (
        index("pk", ["id"], is_primary=True, is_unique=True, constraint_type="p"),
        index("uq", ["email"], is_unique=True),
        index("ex", ["period"], method="gist", constraint_type="x"),
        index("used", ["status"], idx_scan=1),
        index("small", ["note"], size_bytes=1024),
    )
    assert run(ix.unused_index, observation(indexes=cases)) == []


def test_an_index_scanned_on_a_standby_is_used() -> None:
    idx = index("orders_status_idx", ["status"])
    standby = observation(indexes=(replace(idx, idx_scan=5),), server_info=server(standby=True), target="replica")
    primary = observation(indexes=(idx,))
    primary = replace(primary, peers={"replica": standby})
    assert run(ix.unused_index, primary) == []
    assert run(ix.unused_index, standby) == []  # judged on the primary only


def test_unused_partitioned_index_is_one_finding_without_concurrently() -> None:
    parts = tuple(
        index(
            f"events_{m}_kind_idx",
            ["kind"],
            relation=f"events_{m}",
            root_schema="public",
            root_relation="events",
            root_index="events_kind_idx",
        )
        for m in ("jan", "feb")
    )
    found = run(ix.unused_index, observation(indexes=parts))
    assert len(found) == 1
    assert (found[0].relation, found[0].index) == ("events", "events_kind_idx")
    assert found[0].recommendation.startswith("DROP INDEX public.events_kind_idx;")
    assert found[0].evidence["size_bytes"] == 100 * 1024 * 1024


# --- duplicate_index -----------------------------------------------------------------------


def test_duplicate_identical_keeps_the_constraint_and_reports_the_other() -> None:
    pk = index("orders_pkey", ["id"], is_unique=True, is_primary=True, constraint_type="p")
    twin = index("orders_id_idx", ["id"], is_unique=True)
    plain = index("orders_id_plain", ["id"])
    found = run(ix.duplicate_index, observation(indexes=(pk, twin)))
    assert [(f.index, f.evidence["duplicate_of"], f.evidence["identical"]) for f in found] == [
        ("orders_id_idx", "orders_pkey", True)
    ]
    # a plain index on the primary key's columns serves nothing the key does not
    found = run(ix.duplicate_index, observation(indexes=(pk, plain)))
    assert [(f.index, f.evidence["identical"]) for f in found] == [("orders_id_plain", False)]
    assert "the same keys as public.orders_pkey" in found[0].summary


def test_duplicate_left_prefix_rules() -> None:
    ab = index("orders_a_b", ["a", "b"])
    a = index("orders_a", ["a"])
    b = index("orders_b", ["b"])
    a_unique = index("orders_a_uq", ["a"], is_unique=True)
    a_hash = index(
        "orders_a_hash", ["a"], method="hash", definition="CREATE INDEX orders_a_hash ON public.orders USING hash (a)"
    )
    a_partial = index(
        "orders_a_part",
        ["a"],
        predicate="(a > 0)",
        definition="CREATE INDEX orders_a_part ON public.orders USING btree (a) WHERE (a > 0)",
    )
    found = run(ix.duplicate_index, observation(indexes=(ab, a, b, a_unique, a_hash, a_partial)))
    assert [(f.index, f.evidence["duplicate_of"]) for f in found] == [("orders_a", "orders_a_b")]


def test_duplicate_identical_expression_indexes_keep_one() -> None:
    one = index("lower1", [None], expressions="lower(email)")
    two = index("lower2", [None], expressions="lower(email)")
    other = index(
        "upper",
        [None],
        expressions="upper(email)",
        definition="CREATE INDEX upper ON public.orders USING btree (upper(email))",
    )
    found = run(ix.duplicate_index, observation(indexes=(one, two, other)))
    assert len(found) == 1 and found[0].evidence["identical"] is True


# --- invalid_index -------------------------------------------------------------------------


def test_invalid_index() -> None:
    bad = index("Orders Status", ["status"], is_valid=False)
    found = run(ix.invalid_index, observation(indexes=(bad, index("ok", ["x"]))))
    assert [f.index for f in found] == ["Orders Status"]
    assert found[0].recommendation.startswith('REINDEX INDEX CONCURRENTLY public."Orders Status";')


# --- missing_fk_index ----------------------------------------------------------------------


def test_missing_fk_index() -> None:
    covered = foreign_key(["order_id"], ["id", "order_id,line"])
    reordered = foreign_key(["b", "a"], ["a,b,c"], constraint_oid=2)
    missing = foreign_key(["Order Id"], ["line,Order Id"], schema="Sales", relation="Lines")
    small = foreign_key(["x"], [], rows=100, relation="small")
    part = foreign_key(["order_id"], [], relation="events", relkind="p")
    found = run(ix.missing_fk_index, observation(foreign_keys=(covered, reordered, missing, small, part)))
    assert [f.relation for f in found] == ["Lines", "events"]
    assert found[0].recommendation == 'CREATE INDEX CONCURRENTLY "Lines_Order Id_idx" ON "Sales"."Lines" ("Order Id");'
    assert found[1].recommendation.startswith("CREATE INDEX events_order_id_idx ON public.events (order_id);")
    assert "CONCURRENTLY is not supported" in found[1].recommendation


def test_index_first_seen_carries_forward() -> None:
    from pgradar.agent.runtime.registry import index_first_seen

    a, b = index("a", ["a"]), index("b", ["b"])
    first = index_first_seen(None, IndexesSnapshot(T0, (a,)))
    assert first.of("app", a.indexrelid) is None
    later = T0 + timedelta(minutes=5)
    second = index_first_seen(first, IndexesSnapshot(later, (a, b)))
    assert second.of("app", a.indexrelid) is None and second.of("app", b.indexrelid) == later
    third = index_first_seen(second, IndexesSnapshot(later + timedelta(minutes=5), (a, b)))
    assert third.of("app", b.indexrelid) == later


def test_stale_stats_is_info_while_autovacuum_is_due() -> None:
    # pgbench_history: analyzed empty (reltuples -1) a few minutes ago, then filled by the workload
    busy = table(
        "history",
        reltuples=-1,
        n_live_tup=16_679,
        n_tup_ins=16_679,
        n_mod_since_analyze=16_679,
        last_analyze=T0 - timedelta(minutes=5),
    )
    (found,) = run(tb.stale_stats, observation(tables=(busy,), settings=SettingsSnapshot(T0, parse_settings([]))))
    assert found.severity == "info" and "autovacuum is due" in found.summary
    late = replace(busy, last_analyze=T0 - timedelta(minutes=10))
    assert run(tb.stale_stats, observation(tables=(late,)))[0].severity == "warning"


def test_duplicate_on_a_partitioned_table_is_reported_once_for_the_parent() -> None:
    leaves = []
    for relid, part in ((1, "events_jan"), (2, "events_feb")):
        leaves.append(
            index(
                f"{part}_kind_idx",
                ["kind"],
                relation=part,
                relid=relid,
                root_schema="public",
                root_relation="events",
                root_index="events_kind",
            )
        )
        leaves.append(
            index(
                f"{part}_kind_at_idx",
                ["kind", "at"],
                relation=part,
                relid=relid,
                root_schema="public",
                root_relation="events",
                root_index="events_kind_at",
            )
        )
    alone = index("events_jan_local", ["kind", "at", "x"], relation="events_jan", relid=1)  # one partition only
    found = run(ix.duplicate_index, observation(indexes=(*leaves, alone)))
    assert [(f.relation, f.index, f.evidence["duplicate_of"]) for f in found] == [
        ("events", "events_kind", "events_kind_at")
    ]
    assert found[0].recommendation.startswith("DROP INDEX public.events_kind;")


# --- a standby: local counters, and the primary's catalog ----------------------------------------


def _on_standby(obs: Observation, with_primary: bool) -> Observation:
    from dataclasses import replace as _replace

    peers = {"primary": observation(server_info=server(standby=False))} if with_primary else {}
    return _replace(obs, server=server(standby=True), target="replica", peers=peers)


def test_a_standby_never_reports_its_local_maintenance_counters() -> None:
    never_analyzed = table("orders", last_analyze=None, last_autoanalyze=None, analyze_count=0)
    dead = table("events", n_live_tup=50_000, n_dead_tup=50_000)
    primary = observation(tables=(never_analyzed, dead))
    assert list(tb.stale_stats(primary, DEFAULT)) and list(tb.dead_tuples(primary, DEFAULT))
    for with_primary in (False, True):
        standby = _on_standby(primary, with_primary)
        assert list(tb.stale_stats(standby, DEFAULT)) == []
        assert list(tb.dead_tuples(standby, DEFAULT)) == []


def test_catalog_problems_are_reported_on_the_primary_once() -> None:
    twins = (index("orders_a", ["customer_id"]), index("orders_b", ["customer_id"]))
    primary = observation(tables=(table("orders"),), indexes=twins)
    assert len(list(ix.duplicate_index(primary, DEFAULT))) == 1
    assert list(ix.duplicate_index(_on_standby(primary, with_primary=True), DEFAULT)) == []
    # A standby watched without its primary still says what it sees.
    assert len(list(ix.duplicate_index(_on_standby(primary, with_primary=False), DEFAULT))) == 1
