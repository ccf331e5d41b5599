"""Small pure decisions of the collectors and the runtime."""

import pytest

from pgradar.agent.collect.collectors import parse_settings, pgss_unavailable, setting_in_base_units
from pgradar.agent.collect.pool import BACKOFF_MAX_S, backoff_delay
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.runtime.runner import select_databases
from pgradar.agent.settings.config import DatabaseFilter


@pytest.mark.parametrize(
    ("setting", "unit", "expected"),
    [
        ("4096", "kB", 4 * 1024 * 1024),
        ("16384", "8kB", 128 * 1024 * 1024),
        ("30", "s", 30.0),
        ("1500", "ms", 1.5),
        ("100", "", 100.0),
        ("2", "min", 120.0),
    ],
)
def test_units(setting: str, unit: str, expected: float) -> None:
    assert setting_in_base_units(setting, unit) == expected


def test_parse_settings() -> None:
    s = parse_settings(
        [
            ("max_connections", "100", ""),
            ("superuser_reserved_connections", "3", ""),
            ("reserved_connections", "2", ""),
            ("work_mem", "4096", "kB"),
            ("idle_in_transaction_session_timeout", "60000", "ms"),
        ]
    )
    assert (s.max_connections, s.reserved_connections, s.work_mem_bytes) == (100, 5, 4 * 1024 * 1024)
    assert s.idle_in_transaction_session_timeout_s == 60.0
    assert s.pgss_max is None


def test_pgss_unavailable_names_the_fix() -> None:
    not_loaded = ServerInfo(150000, False, pgss_schema=None, pgss_preloaded=False)
    assert "shared_preload_libraries" in " ".join(pgss_unavailable(not_loaded, "postgres") or ())
    not_created = ServerInfo(150000, False, pgss_schema=None, pgss_preloaded=True)
    assert pgss_unavailable(not_created, "app") == (
        "pg_stat_statements is loaded but the extension is not created in database app",
        "CREATE EXTENSION pg_stat_statements;",
    )
    ok = ServerInfo(150000, False, pgss_schema="public", pgss_preloaded=True)
    assert pgss_unavailable(ok, "app") is None


def test_capabilities_follow_versions() -> None:
    v = {m: ServerInfo(m * 10000, False) for m in range(13, 19)}
    assert [m for m in v if v[m].has_generic_plan] == [16, 17, 18]
    assert [m for m in v if v[m].has_pgss_toplevel] == [14, 15, 16, 17, 18]
    assert ServerInfo(120000, False).supported is False
    assert ServerInfo(150020, True).version == "15.20" and ServerInfo(150020, True).role == "standby"


def test_select_databases() -> None:
    found = ["app", "app_test", "postgres", "reporting"]
    assert select_databases(found, DatabaseFilter()) == tuple(found)
    assert select_databases(found, DatabaseFilter(include=("app*",))) == ("app", "app_test")
    assert select_databases(found, DatabaseFilter(exclude=("*_test", "postgres"))) == ("app", "reporting")


def test_each_target_kind_runs_its_collectors_from_the_registry() -> None:
    """pgbouncer is a collector of the registry like the others: the runner of a pgbouncer target runs it alone."""
    from pgradar.agent.model.jobs import COLLECTOR_NAMES
    from pgradar.agent.runtime.registry import spec
    from pgradar.agent.runtime.runner import TargetRunner
    from pgradar.agent.runtime.state import TargetState
    from pgradar.agent.settings.config import Config, TargetConfig

    target = TargetConfig("t", "host=localhost")
    config = Config(targets=(target,))
    assert TargetRunner(target, config, TargetState("t")).collector_names == COLLECTOR_NAMES
    assert TargetRunner(target, config, TargetState("b", kind="pgbouncer")).collector_names == ("pgbouncer",)
    assert not spec("pgbouncer").needs_server and spec("server").refreshes_server


def test_a_console_target_is_up_when_its_collector_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server collector on a pgbouncer: a failed connect marks it down, its one collector's read up."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from pgradar.agent.collect.db import ConnectFailed
    from pgradar.agent.model.bouncer import BouncerSnapshot
    from pgradar.agent.runtime import registry
    from pgradar.agent.runtime.runner import TargetRunner
    from pgradar.agent.runtime.state import TargetState
    from pgradar.agent.settings.config import Config, TargetConfig

    target = TargetConfig("b", "host=localhost dbname=pgbouncer")
    state = TargetState("b", kind="pgbouncer")
    runner = TargetRunner(target, Config(targets=(), pgbouncers=(target,)), state)

    def refused(database: str | None) -> None:
        raise ConnectFailed("connection refused")

    monkeypatch.setattr(runner.pool, "_open", refused)
    runner.run_collector("pgbouncer")
    assert not state.up and state.collector("pgbouncer").last_error == "cannot connect: connection refused"

    snapshot = BouncerSnapshot(datetime.now(UTC), (), (), (), ())
    read = replace(registry.spec("pgbouncer"), collect=lambda ctx: snapshot)
    monkeypatch.setattr(
        registry, "COLLECTORS", tuple(read if c.name == "pgbouncer" else c for c in registry.COLLECTORS)
    )
    runner.run_collector("pgbouncer")
    assert state.up and state.current().pgbouncer is snapshot
    assert state.collector("pgbouncer").last_error is None


def test_backoff_grows_and_caps() -> None:
    delays = [backoff_delay(n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == BACKOFF_MAX_S and delays == sorted(delays)


def test_first_runs_spread_over_the_start_window() -> None:
    """100 targets: the collectors' first runs spread over the start window (or their interval), in a fixed order."""
    from pgradar.agent.model.jobs import COLLECTOR_INTERVALS
    from pgradar.agent.runtime.agent import START_SPREAD_S, first_run_offset, spread_window

    intervals = COLLECTOR_INTERVALS.items()
    offsets = [first_run_offset(f"db{n:03d}", c, interval) for n in range(100) for c, interval in intervals]
    assert all(0 <= o < START_SPREAD_S for o in offsets)
    per_second = [sum(1 for o in offsets if s <= o < s + 1) for s in range(int(START_SPREAD_S))]
    assert max(per_second) < len(offsets) / 10  # no second holds a tenth of them (all at once: every one)
    assert all(0 <= first_run_offset(f"db{n:03d}", "activity", 15) < 15 for n in range(100))
    assert spread_window(1) == 10.0 and spread_window(100) == START_SPREAD_S  # a sidecar is ready quickly
    assert max(first_run_offset("db000", c, interval, spread_window(1)) for c, interval in intervals) < 10
    assert first_run_offset("db000", "indexes", 300) == first_run_offset("db000", "indexes", 300)
