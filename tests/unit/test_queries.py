"""Every query resolves for every supported server version, to the right file."""

import re

import pytest

from pgradar.agent.collect import queries
from pgradar.agent.model.server import NEWEST_SUPPORTED, OLDEST_SUPPORTED

MAJORS = range(OLDEST_SUPPORTED, NEWEST_SUPPORTED + 1)
# Queries that exist only from a version on; the collector asks a capability first.
STARTS_LATER = {("statements", "info"): 14, ("explain", "generic"): 16, ("statements", "since"): 17}
# Every (collector, name) with a file: one not named <name>.<major>.sql resolves for no version and fails below.
ALL_QUERIES = sorted({(path.parent.name, path.name.split(".", 1)[0]) for path in queries.SQL_ROOT.glob("*/*.sql")})


@pytest.mark.parametrize(("collector", "name"), ALL_QUERIES)
def test_every_query_resolves_on_every_version(collector: str, name: str) -> None:
    first = STARTS_LATER.get((collector, name), OLDEST_SUPPORTED)
    for major in MAJORS:
        if major < first:
            with pytest.raises(queries.QueryNotFound):
                queries.resolve(collector, name, major)
            continue
        query = queries.resolve(collector, name, major)
        assert query.since <= major
        assert query.since == max(v for v in queries.variants(collector, name) if v <= major)


@pytest.mark.parametrize(("collector", "name"), ALL_QUERIES)
def test_every_variant_says_what_it_serves(collector: str, name: str) -> None:
    for path in queries.variants(collector, name).values():
        first_line = path.read_text().splitlines()[0]
        assert first_line.startswith(f"-- {collector}/{name}"), path


def test_renamed_columns_are_picked_by_version() -> None:
    assert "blk_read_time AS" in queries.resolve("statements", "pgss", 16).text
    assert "shared_blk_read_time AS" in queries.resolve("statements", "pgss", 17).text
    assert "true AS toplevel" in queries.resolve("statements", "pgss", 13).text
    assert "s.toplevel" in queries.resolve("statements", "pgss", 14).text
    assert "pg_stat_get_lastscan(c.oid) AS last_seq_scan" in queries.resolve("tables", "tables", 16).text
    assert "pg_stat_get_lastscan" not in queries.resolve("tables", "tables", 15).text
    assert "'p')" in queries.resolve("tables", "tables", 14).text  # partitioned tables, as the view has them
    assert "'p')" not in queries.resolve("tables", "tables", 13).text


def test_variants_of_one_query_return_the_same_columns() -> None:
    def columns(text: str) -> list[str]:
        if "SELECT" not in text:  # EXPLAIN/PREPARE/DEALLOCATE, pgbouncer SHOW: not our result columns
            return []
        select = text.split("SELECT", 1)[1].split("\n  FROM", 1)[0]
        return re.findall(r"(?:AS|\.)\s*(\w+),?\s*$", select, flags=re.MULTILINE)

    for collector, name in ALL_QUERIES:
        found = {since: columns(path.read_text()) for since, path in queries.variants(collector, name).items()}
        first = next(iter(found.values()))
        for since, cols in found.items():
            assert cols == first, f"{collector}/{name}.{since}.sql columns differ"


def test_unknown_query_is_a_clear_error() -> None:
    with pytest.raises(queries.QueryNotFound, match="no SQL for nope/x"):
        queries.resolve("nope", "x", 15)


def test_marker_ends_every_statement_once() -> None:
    """At the end, on its own line: PostgreSQL 18 drops leading comments from pg_stat_statements texts."""
    assert queries.marked("SELECT 1") == "SELECT 1\n/* pgradar */"
    assert queries.marked(queries.marked("SELECT 1")) == "SELECT 1\n/* pgradar */"
    assert queries.marked("SELECT 1 -- why\n;\n") == "SELECT 1 -- why\n/* pgradar */"
    assert queries.is_own("EXPLAIN (GENERIC_PLAN) SELECT $1\n/* pgradar */")
    assert queries.is_own("SELECT 1 /* pgradar */;")
    assert not queries.is_own("/* pgradar */ SELECT 1") and not queries.is_own("PREPARE p AS SELECT 1")


def test_agent_statements_leave_the_snapshot_and_the_observation() -> None:
    """Rows whose only text carries the marker are the agent's own: no interval, problem or top list sees them."""
    from factories import T0, snap, stat

    from pgradar.agent.runtime.observation import observe
    from pgradar.agent.runtime.registry import without_own
    from pgradar.agent.runtime.state import TargetState

    rows = snap(0, stat(1, 10, 10.0), stat(2, 10, 10.0))
    texts = {(5, 1): "SELECT * FROM orders WHERE id = $1", (5, 2): "-- statements/pgss\nSELECT ...\n/* pgradar */"}
    state = TargetState("t")
    for key, text in texts.items():
        state.keep_text(key, text)
    assert state.own_statements == {(5, 2)}
    kept = without_own(rows, state.own_statements)
    assert [r.queryid for r in kept.rows] == [1]
    assert without_own(kept, state.own_statements) is kept
    assert list(observe(state, T0).statement_texts) == [(5, 1)]
    state.keep_text((5, 2), "SELECT 2")  # the application's text replaces the marked one
    assert state.own_statements == set() and len(observe(state, T0).statement_texts) == 2
    state.forget_text((5, 2))
    assert list(state.statement_texts) == [(5, 1)]
