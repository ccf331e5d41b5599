"""A real pgbouncer: more clients than server connections, and pool_saturation names the pool."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import psycopg
from support import (
    BOUNCER_CLIENT_PASSWORD,
    MONITOR_PASSWORD,
    MONITOR_ROLE,
    Bouncer,
    monitor_dsn,
    of_kind,
    pgradar,
    poll,
    wait_for,
    watch,
)

from pgradar.agent.model.bouncer import BouncerSnapshot
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.exporters.prometheus import registry_for

T = replace(DEFAULT, pool_maxwait_warning_s=1, pool_maxwait_critical_s=3600, pool_waiting_clients=100)
CLIENTS = 5
SLEEP_S = 4


def test_waiting_clients_are_pool_saturation(pgbouncer: Bouncer) -> None:
    console = (("bouncer", pgbouncer.dsn("pgbouncer", MONITOR_ROLE, MONITOR_PASSWORD)),)
    client_dsn = pgbouncer.dsn("app", "postgres", BOUNCER_CLIENT_PASSWORD)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with psycopg.connect(client_dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_sleep(%s)", (SLEEP_S,))
        except psycopg.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    with watch(pgbouncers=console, thresholds=T) as agent:

        def saturated() -> BouncerSnapshot | None:
            poll(agent, "pgbouncer")
            snapshot: BouncerSnapshot = agent.state.target("bouncer").current().pgbouncer
            pool = next((p for p in snapshot.pools if p.name == "app/postgres"), None)
            return snapshot if pool is not None and pool.cl_waiting and pool.maxwait_seconds >= 1.2 else None

        snapshot = wait_for(saturated, SLEEP_S, step=0.2, what="clients waiting over a second")
        found = poll(agent, "pgbouncer")
        text = registry_for(agent.state, 10)
    for thread in threads:
        thread.join(3 * SLEEP_S)
    assert not errors
    (pool,) = [p for p in snapshot.pools if p.name == "app/postgres"]
    assert pool.sv_active == 2 and pool.cl_active == 2 and pool.cl_waiting == CLIENTS - 2
    assert snapshot.database("app") is not None and snapshot.database("app").pool_size == 2
    (f,) = of_kind(found, "pool_saturation")
    assert (f.target, f.pool, f.severity) == ("bouncer", "app/postgres", "warning")
    assert f.evidence["cl_waiting"] >= 1 and f.evidence["maxwait_seconds"] >= 1.2
    assert f.evidence["pool_size"] == 2 and "pool_size" in f.recommendation
    assert "waiting" in f.summary and "app/postgres" in f.summary
    labels = {"target": "bouncer", "pool": "app/postgres", "database": "app", "user": "postgres"}
    assert text.get_sample_value("pgradar_pgbouncer_clients", {**labels, "state": "waiting"}) >= 1
    assert text.get_sample_value("pgradar_pgbouncer_maxwait_seconds", labels) >= 1.2
    assert text.get_sample_value("pgradar_up", {"target": "bouncer"}) == 1.0

    with watch(pgbouncers=console, thresholds=T) as after:
        assert of_kind(poll(after, "pgbouncer"), "pool_saturation") == []
        stats = after.state.target("bouncer").current().pgbouncer.stats
        assert next(s for s in stats if s.database == "app").queries >= CLIENTS


def test_check_lists_a_pgbouncer_target(pgbouncer: Bouncer) -> None:
    proc = pgradar(
        "check",
        "--pgbouncer",
        f"bouncer={pgbouncer.dsn('pgbouncer', MONITOR_ROLE, MONITOR_PASSWORD)}",
        "--format",
        "json",
        "--fail-on",
        "never",
    )
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    assert target == {
        "name": "bouncer",
        "server_version": None,
        "role": "pgbouncer",
        "ok": True,
        "error": None,
        "disabled": [],
    }  # the admin console has nothing to switch off
    assert MONITOR_PASSWORD not in proc.stdout + proc.stderr


def test_scheduler_polls_a_pgbouncer_next_to_a_server(pgbouncer: Bouncer) -> None:
    server = pgbouncer.server
    with watch(
        ("main", monitor_dsn(server)),
        pgbouncers=(("bouncer", pgbouncer.dsn("pgbouncer", MONITOR_ROLE, MONITOR_PASSWORD)),),
    ) as agent:
        agent.start()
        wait_for(lambda: agent.ready()[0], 60, what=f"readiness ({agent.ready()[1]})")
        registry = registry_for(agent.state, 10)
        assert registry.get_sample_value("pgradar_up", {"target": "bouncer"}) == 1.0
        assert (
            registry.get_sample_value("pgradar_collector_runs_total", {"target": "bouncer", "collector": "pgbouncer"})
            >= 1
        )
        assert registry.get_sample_value("pgradar_pgbouncer_pool_size", {"target": "bouncer", "database": "app"}) == 2
        assert registry.get_sample_value("pgradar_wal_bytes_total", {"target": "main"}) > 0
        assert agent.state.target("bouncer").collector("server").runs == 0  # no PostgreSQL collector on it
    table = pgradar("check", "--pgbouncer", f"bouncer={pgbouncer.dsn('pgbouncer', MONITOR_ROLE, MONITOR_PASSWORD)}")
    assert table.returncode == 0, table.stderr
    assert "target bouncer: pgbouncer ok" in table.stdout and "checking 1 target(s)" in table.stderr
