"""Asking the server for plans, inside the caller's transaction; shared by every job that plans.

A statement from pg_stat_statements is normalized (``$1`` for every
constant), so it is planned generically: ``EXPLAIN (GENERIC_PLAN)`` on 16+,
PREPARE + ``EXPLAIN EXECUTE name(NULL, ...)`` under
``plan_cache_mode = force_generic_plan`` before (the server infers the
parameter types). EXPLAIN never runs the statement. The SQL lives in
``agent/collect/sql/explain/``, one file per version.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pgradar.agent.collect import queries
from pgradar.agent.collect.db import QueryFailed, Session
from pgradar.agent.model.findings import qualified, quote_ident
from pgradar.agent.model.server import ServerInfo


def query(name: str, server: ServerInfo) -> queries.Query:
    return queries.resolve("explain", name, server.major)


def search_path_for(username: str) -> str:
    """PostgreSQL's default search path, spelt out for the statement's user."""
    return f"{quote_ident(username)}, public"


def explain(session: Session, server: ServerInfo, text: str, pruning: bool = True) -> Any:
    """The JSON plan of ``text``, inside the caller's transaction; never runs the statement.

    ``pruning=False`` (before 16 only) plans every partition: the generic
    plan with NULL parameters prunes them all at executor start (DESIGN 7).
    """
    if server.has_generic_plan:
        return session.with_statement(query("generic", server), text)[0]["QUERY PLAN"]
    session.dicts(query("generic_mode", server))
    session.with_statement(query("prepare", server), text)
    try:
        with session.rolled_back():  # a savepoint: a failure leaves the transaction usable for DEALLOCATE
            if not pruning:
                session.dicts(query("no_pruning", server))
            n = int(session.one(query("parameters", server))["n"])
            args = "(" + ", ".join(["NULL"] * n) + ")" if n else ""
            return session.with_statement(query("execute", server), args)[0]["QUERY PLAN"]
    finally:
        # in a savepoint of its own: with a hypothetical index on a partitioned table (hypopg, 15) the
        # prepared statement can be gone by now, and a failed DEALLOCATE must not abort the transaction
        with contextlib.suppress(QueryFailed), session.rolled_back():  # DEALLOCATE is not undone by the rollback
            session.with_statement(query("deallocate", server), "")


def relation(session: Session, server: ServerInfo, schema: str | None, name: str) -> dict[str, Any] | None:
    """The catalog's row of a relation the plan or the text names (size, kind, partition root, index keys)."""
    rows = session.dicts(query("relation", server), {"name": qualified(schema, name) if schema else quote_ident(name)})
    return rows[0] if rows else None


def hypopg_schema(session: Session, server: ServerInfo) -> str | None:
    """Where hypopg is installed in the session's database; None where it is not."""
    rows = session.dicts(query("hypopg", server))
    return str(rows[0]["schema"]) if rows else None
