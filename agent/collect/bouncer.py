"""pgbouncer targets: its admin console polled on the same scheduler as the servers.

A pgbouncer is a target like a server (``pgradar_up``, collector health,
backoff, classification), with one collector, ``pgbouncer`` (in the
registry, for targets of kind pgbouncer), that reads SHOW POOLS, DATABASES,
STATS and CONFIG. Their columns change between pgbouncer
releases, so rows are read by column name and a missing column reads as 0.
pgbouncer's own admin pseudo-database is left out: it is the console pgradar
itself uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import ConnectFailed, Session, SessionSettings, connect_bouncer
from pgradar.agent.model.bouncer import BouncerDatabase, BouncerSnapshot, BouncerStat, PoolStat

ADMIN_DATABASE = "pgbouncer"
SQL_VERSION = 1  # agent/collect/sql/pgbouncer/<command>.1.sql: pgbouncer 1.x
US = 1_000_000.0  # pgbouncer counts times in microseconds

Row = Mapping[str, Any]


def _int(row: Row, key: str) -> int:
    value = row.get(key)
    return int(value) if value is not None and str(value).lstrip("-").isdigit() else 0


def _str(row: Row, key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


def parse_pools(rows: Sequence[Row]) -> tuple[PoolStat, ...]:
    return tuple(
        PoolStat(
            database=_str(r, "database"),
            user=_str(r, "user"),
            cl_active=_int(r, "cl_active"),
            cl_waiting=_int(r, "cl_waiting"),
            sv_active=_int(r, "sv_active"),
            sv_idle=_int(r, "sv_idle"),
            sv_used=_int(r, "sv_used"),
            sv_tested=_int(r, "sv_tested"),
            sv_login=_int(r, "sv_login"),
            maxwait_seconds=_int(r, "maxwait") + _int(r, "maxwait_us") / US,
            pool_mode=_str(r, "pool_mode"),
        )
        for r in rows
        if r.get("database") != ADMIN_DATABASE
    )


def parse_databases(rows: Sequence[Row]) -> tuple[BouncerDatabase, ...]:
    return tuple(
        BouncerDatabase(
            name=_str(r, "name"),
            host=_str(r, "host"),
            port=_int(r, "port") or None,
            database=_str(r, "database"),
            pool_size=_int(r, "pool_size"),
            reserve_pool=_int(r, "reserve_pool"),
            pool_mode=_str(r, "pool_mode"),
            max_connections=_int(r, "max_connections"),
            current_connections=_int(r, "current_connections"),
            paused=bool(_int(r, "paused")),
            disabled=bool(_int(r, "disabled")),
        )
        for r in rows
        if r.get("name") != ADMIN_DATABASE
    )


def parse_stats(rows: Sequence[Row]) -> tuple[BouncerStat, ...]:
    return tuple(
        BouncerStat(
            database=_str(r, "database"),
            transactions=_int(r, "total_xact_count"),
            queries=_int(r, "total_query_count"),
            received_bytes=_int(r, "total_received"),
            sent_bytes=_int(r, "total_sent"),
            xact_seconds=_int(r, "total_xact_time") / US,
            query_seconds=_int(r, "total_query_time") / US,
            wait_seconds=_int(r, "total_wait_time") / US,
        )
        for r in rows
        if r.get("database") != ADMIN_DATABASE
    )


def console_hint(message: str) -> str:
    """pgbouncer says only "not allowed" to a role outside stats_users and admin_users: name the fix."""
    if message.rstrip().endswith("not allowed"):
        return f"{message}: add the role to pgbouncer's stats_users (read-only SHOW commands are enough)"
    return message


class ConsoleContext(Protocol):
    """What the pgbouncer collector needs of its job: the console session and the time of the read."""

    now: datetime

    def session(self, database: str | None = None) -> Session: ...


def open_console(dsn: str, settings: SessionSettings) -> Session:
    """A session to the admin console; a refused role gets the fix in the message."""
    try:
        return connect_bouncer(dsn, settings)
    except ConnectFailed as exc:
        raise ConnectFailed(console_hint(str(exc))) from None


def collect_pgbouncer(ctx: ConsoleContext) -> BouncerSnapshot:
    session = ctx.session()

    def show(command: str) -> list[dict[str, Any]]:
        return session.dicts(queries.resolve("pgbouncer", command, SQL_VERSION))

    config = tuple((_str(r, "key"), _str(r, "value")) for r in show("config"))
    return BouncerSnapshot(
        ctx.now, parse_pools(show("pools")), parse_databases(show("databases")), parse_stats(show("stats")), config
    )
