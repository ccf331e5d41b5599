"""Small pure decisions of the collectors and the runtime."""

import pytest
from pgradar.agent.collectors import parse_settings, pgss_unavailable_reason, setting_in_base_units
from pgradar.agent.config import DatabaseFilter
from pgradar.agent.server import ServerInfo
from pgradar.agent.target import BACKOFF_MAX_S, backoff_delay, select_databases


@pytest.mark.parametrize(("setting", "unit", "expected"), [
    ("4096", "kB", 4 * 1024 * 1024), ("16384", "8kB", 128 * 1024 * 1024), ("30", "s", 30.0),
    ("1500", "ms", 1.5), ("100", "", 100.0), ("2", "min", 120.0),
])
def test_units(setting: str, unit: str, expected: float) -> None:
    assert setting_in_base_units(setting, unit) == expected


def test_parse_settings() -> None:
    s = parse_settings([("max_connections", "100", ""), ("superuser_reserved_connections", "3", ""),
                        ("reserved_connections", "2", ""), ("work_mem", "4096", "kB"),
                        ("idle_in_transaction_session_timeout", "60000", "ms")])
    assert (s.max_connections, s.reserved_connections, s.work_mem_bytes) == (100, 5, 4 * 1024 * 1024)
    assert s.idle_in_transaction_session_timeout_s == 60.0
    assert s.pgss_max is None


def test_pgss_reason_names_the_fix() -> None:
    not_loaded = ServerInfo(150000, False, pgss_schema=None, pgss_preloaded=False)
    assert "shared_preload_libraries" in pgss_unavailable_reason(not_loaded, "postgres")
    not_created = ServerInfo(150000, False, pgss_schema=None, pgss_preloaded=True)
    assert "CREATE EXTENSION pg_stat_statements" in pgss_unavailable_reason(not_created, "app")
    ok = ServerInfo(150000, False, pgss_schema="public", pgss_preloaded=True)
    assert pgss_unavailable_reason(ok, "app") is None


def test_capabilities_follow_versions() -> None:
    v = {m: ServerInfo(m * 10000, False) for m in range(13, 19)}
    assert [m for m in v if v[m].has_generic_plan] == [16, 17, 18]
    assert [m for m in v if v[m].has_pgss_toplevel] == [14, 15, 16, 17, 18]
    assert [m for m in v if v[m].has_checkpointer_view] == [17, 18]
    assert ServerInfo(120000, False).supported is False
    assert ServerInfo(150020, True).version == "15.20" and ServerInfo(150020, True).role == "standby"


def test_select_databases() -> None:
    found = ["app", "app_test", "postgres", "reporting"]
    assert select_databases(found, DatabaseFilter()) == tuple(found)
    assert select_databases(found, DatabaseFilter(include=("app*",))) == ("app", "app_test")
    assert select_databases(found, DatabaseFilter(exclude=("*_test", "postgres"))) == ("app", "reporting")


def test_backoff_grows_and_caps() -> None:
    delays = [backoff_delay(n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == BACKOFF_MAX_S and delays == sorted(delays)


def test_per_snapshot_computes_once_per_rows_tuple() -> None:
    from pgradar.agent.snapshots import per_snapshot

    calls: list[tuple[int, ...]] = []

    @per_snapshot
    def total(rows: tuple[int, ...]) -> int:
        calls.append(rows)
        return sum(rows)

    rows = (1, 2, 3)
    assert total(rows) == 6 and total(rows) == 6
    assert len(calls) == 1
    equal_but_new = tuple(list(rows))  # a new snapshot with the same rows is computed again
    assert total(equal_but_new) == 6 and len(calls) == 2
    for n in range(20):  # old entries are dropped: the cache stays small
        total((n, n + 1000))
    assert total(rows) == 6 and len(calls) == 23
