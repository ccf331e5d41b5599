"""pgbouncer's SHOW rows become typed records whatever its release's columns."""

from decimal import Decimal

from pgradar.agent.collect import queries
from pgradar.agent.collect.bouncer import console_hint, parse_databases, parse_pools, parse_stats
from pgradar.agent.collect.db import admin_command


def test_pools_read_by_name_and_missing_columns_are_zero() -> None:
    rows = [
        {"database": "pgbouncer", "user": "pgbouncer", "cl_active": 1},
        {
            "database": "app",
            "user": "shop",
            "cl_active": 2,
            "cl_waiting": 3,
            "sv_active": 2,
            "maxwait": 4,
            "maxwait_us": 250_000,
            "pool_mode": "transaction",
            "new_column": "x",
        },
        {"database": "old", "user": "u", "cl_waiting": 1, "maxwait": 2},
    ]  # before maxwait_us
    app, old = parse_pools(rows)
    assert (app.name, app.cl_waiting, app.sv_active, app.maxwait_seconds, app.servers) == ("app/shop", 3, 2, 4.25, 2)
    assert old.maxwait_seconds == 2 and old.sv_login == 0 and old.pool_mode == ""


def test_databases_and_stats() -> None:
    (db,) = parse_databases(
        [
            {"name": "pgbouncer", "pool_size": 2},
            {
                "name": "app",
                "host": "db-0",
                "port": 5432,
                "database": "shop",
                "force_user": None,
                "pool_size": 20,
                "reserve_pool": 5,
                "max_connections": 0,
                "current_connections": 7,
                "paused": 0,
                "disabled": 1,
            },
        ]
    )
    assert (db.name, db.database, db.pool_size, db.reserve_pool, db.disabled, db.paused) == (
        "app",
        "shop",
        20,
        5,
        True,
        False,
    )
    (st,) = parse_stats(
        [
            {
                "database": "app",
                "total_xact_count": Decimal(10),
                "total_query_count": Decimal(30),
                "total_wait_time": Decimal(1_500_000),
                "total_xact_time": 2_000_000,
            }
        ]
    )
    assert (st.transactions, st.queries, st.wait_seconds, st.xact_seconds, st.sent_bytes) == (10, 30, 1.5, 2.0, 0)


def test_admin_commands_lose_their_header_comment() -> None:
    for command in ("pools", "stats", "databases", "config"):
        text = queries.resolve("pgbouncer", command, 1).text
        assert text.startswith(f"-- pgbouncer/{command}")
        assert admin_command(text) == f"SHOW {command.upper()}"


def test_a_refused_console_login_names_stats_users() -> None:
    assert "stats_users" in console_hint("connection failed: ... failed: FATAL:  not allowed")
    assert console_hint("password authentication failed") == "password authentication failed"
