"""Connection pools: clients waiting in pgbouncer, a server near max_connections.

Both are one symptom seen from two sides: an application starved of
connections. In pgbouncer the pool is the object (``database/user``); on a
PostgreSQL server the object is the server itself (``pool`` null).
"""

from __future__ import annotations

from collections.abc import Iterator

from pgradar.agent.model.activity import SessionsSnapshot, SettingsSnapshot
from pgradar.agent.model.bouncer import BouncerSnapshot, PoolStat
from pgradar.agent.model.findings import Finding, Kind, Severity, human_seconds
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds


def pool_severity(pool: PoolStat, t: Thresholds) -> Severity | None:
    """Critical when the oldest waiting client waited the critical time; warning on a queue or a wait.

    A client that has just queued (maxwait under the warning) is ordinary
    pooling; many of them, or one waiting long, is saturation.
    """
    if pool.cl_waiting <= 0:
        return None
    if pool.maxwait_seconds >= t.pool_maxwait_critical_s:
        return Severity.CRITICAL
    if pool.maxwait_seconds >= t.pool_maxwait_warning_s or pool.cl_waiting >= t.pool_waiting_clients:
        return Severity.WARNING
    return None


def _pool_advice(snapshot: BouncerSnapshot, pool: PoolStat) -> tuple[str, int | None]:
    entry = snapshot.database(pool.database)
    size = entry.pool_size if entry is not None else None
    if size is None:
        default = snapshot.setting("default_pool_size")
        size = int(default) if default and default.isdigit() else None
    where = f"pool_size in the [databases] entry {pool.database}" if entry is not None else "default_pool_size"
    advice = (
        f"raise {where} (now {size if size is not None else '?'}) if the server has connections to "
        f"spare, then RELOAD; or shorten what holds the {pool.sv_active} busy server connection(s)"
    )
    if pool.pool_mode == "session":
        advice += "; pool_mode = transaction lets clients share server connections between transactions"
    return advice, size


def pgbouncer_pool_saturation(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A pgbouncer pool with clients waiting: many (pool_waiting_clients) or long (pool_maxwait_*).

    Evidence: clients active and waiting, the longest wait (maxwait), the
    server connections in use against the pool size, and the pool mode.
    """
    snapshot = obs.snapshots.pgbouncer
    if not isinstance(snapshot, BouncerSnapshot):
        return
    for pool in snapshot.pools:
        severity = pool_severity(pool, t)
        if severity is None:
            continue
        advice, size = _pool_advice(snapshot, pool)
        yield Finding(
            Kind.POOL_SATURATION,
            severity,
            obs.target,
            f"pool {pool.name}: {pool.cl_waiting} client(s) waiting, the oldest for "
            f"{human_seconds(pool.maxwait_seconds)}; {pool.servers} server connection(s) of pool_size "
            f"{size if size is not None else '?'}",
            advice,
            {
                "cl_waiting": pool.cl_waiting,
                "cl_active": pool.cl_active,
                "maxwait_seconds": pool.maxwait_seconds,
                "sv_active": pool.sv_active,
                "sv_idle": pool.sv_idle,
                "servers": pool.servers,
                "pool_size": size,
                "pool_mode": pool.pool_mode,
            },
            pool=pool.name,
        )


def connections_severity(used: int, limit: int, t: Thresholds) -> Severity | None:
    if limit <= 0:
        return None
    ratio = used / limit
    if ratio >= t.connections_critical_ratio:
        return Severity.CRITICAL
    if ratio >= t.connections_warning_ratio:
        return Severity.WARNING
    return None


def server_connections_saturation(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Client connections near max_connections minus the reserved slots.

    Past that limit ordinary roles are refused ("too many clients already").
    Evidence: connections in use, the limit, and who holds the most.
    """
    sessions, settings = obs.snapshots.sessions, obs.snapshots.settings
    if not isinstance(sessions, SessionsSnapshot) or not isinstance(settings, SettingsSnapshot):
        return
    s = settings.settings
    limit = s.max_connections - s.reserved_connections
    used = sessions.total_connections
    severity = connections_severity(used, limit, t)
    if severity is None:
        return
    holders: dict[str, int] = {}
    for g in sessions.connections:
        who = f"{g.username}@{g.database} ({g.application or '-'})"
        holders[who] = holders.get(who, 0) + g.connections
    top = dict(sorted(holders.items(), key=lambda kv: -kv[1])[:5])
    idle = sum(g.connections for g in sessions.connections if g.state == "idle")
    yield Finding(
        Kind.POOL_SATURATION,
        severity,
        obs.target,
        f"{used} of {limit} connections in use ({used / limit:.0%}; max_connections {s.max_connections} minus "
        f"{s.reserved_connections} reserved), {idle} of them idle",
        "put a transaction-mode pooler (pgbouncer) in front or shrink the applications' pools; "
        "raising max_connections needs a restart and memory for each connection",
        {
            "connections": used,
            "limit": limit,
            "max_connections": s.max_connections,
            "reserved_connections": s.reserved_connections,
            "idle": idle,
            "top": top,
        },
    )


CLASSIFIERS = (pgbouncer_pool_saturation, server_connections_saturation)
