"""The one module that talks to the driver.

It owns what makes a session safe to point at production (DESIGN section 4):
read-only by default, ``statement_timeout`` and ``lock_timeout``,
``search_path=pg_catalog`` so no user object can shadow a catalog function,
``application_name=pgradar``. It also owns the redaction of passwords, since
it is the only place that sees them, and it turns driver exceptions into the
agent's small exception tree so that callers never import psycopg.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import ClientCursor, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import RowFactory, RowMaker, class_row, dict_row, tuple_row

from pgradar.agent.collect.queries import Query, marked, resolve

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # rows are read into dataclasses (dataclass_row)

APPLICATION_NAME = "pgradar"
SESSION_SQL_MAJOR = 13  # agent/collect/sql/session: transaction commands, the same on every version

# libpq's connection keywords: a "NAME=" prefix that is one of these is part
# of a key/value DSN, not a target name.
CONNINFO_KEYWORDS = frozenset(
    (
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
        "require_auth",
    )
)


class DatabaseError(Exception):
    """Something went wrong talking to a server; the message is safe to show."""


class ConnectFailed(DatabaseError):
    """The server could not be reached or refused the session."""


class QueryFailed(DatabaseError):
    """A query failed; ``missing`` and ``denied`` tell why, for a clear fix."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def denied(self) -> bool:
        return self.sqlstate == "42501"

    @property
    def missing(self) -> bool:
        # undefined table/function/object, or an extension's library not loaded
        return self.sqlstate in {"42P01", "42883", "42704", "55000"}

    @property
    def timed_out(self) -> bool:
        return self.sqlstate == "57014"

    @property
    def connection_lost(self) -> bool:
        return self.sqlstate is None or self.sqlstate.startswith("08") or self.sqlstate == "57P01"


class BadDsn(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SessionSettings:
    connect_timeout_s: int = 5
    statement_timeout_ms: int = 10_000
    lock_timeout_ms: int = 1_000


def parse_dsn(dsn: str) -> dict[str, str]:
    """The DSN's parameters; raises BadDsn with a message free of the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise BadDsn(_mask_fragments(redact(str(exc).splitlines()[0], dsn))) from None
    port = str(params.get("port") or "5432")
    if not all(p.strip().isascii() and p.strip().isdigit() and 0 < int(p) < 65536 for p in port.split(",")):
        raise BadDsn("invalid port: expected a number from 1 to 65535")  # not echoed: may be a misplaced password
    return {k: str(v) for k, v in params.items() if v is not None}


def _mask_fragments(message: str) -> str:
    """libpq quotes the part of a DSN it choked on, which may be a password: never echo it."""
    if message.startswith('missing "=" after'):
        return 'a word without "=" (expected key=value pairs or a postgresql:// URI)'
    option = re.match(r'invalid connection option "([a-z_]{1,40})"$', message)
    if option:
        return message
    return message.split('"', 1)[0].rstrip(" :") or "malformed connection string"


def with_params(dsn: str, **params: str) -> str:
    return make_conninfo(dsn, **params)


_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, *secrets_from: str | None) -> str:
    """Remove passwords from a message: any DSN's, and the given DSNs' by value."""
    text = _URI_PASSWORD.sub(r"\1***\3", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    for dsn in secrets_from:
        if not dsn:
            continue
        try:
            password = conninfo_to_dict(dsn).get("password")
        except psycopg.ProgrammingError:
            continue
        if password:
            text = text.replace(str(password), "***")
    return text


def _error_message(exc: psycopg.Error, dsn: str) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None and diag.message_primary else None
    lines = str(exc).strip().splitlines()
    message = primary or (lines[0] if lines else type(exc).__name__)
    return redact(message, dsn)


def dataclass_row(cls: type[T]) -> RowFactory[T]:
    """psycopg's ``class_row``, positional when the columns are the dataclass's leading fields in order.

    ``class_row`` builds a dict per row to call the class with keywords,
    which on a large catalog's polls is a cost per row for nothing. The
    check is made once per query, on the column names; a query whose
    columns are in another order still works, by keyword.
    """
    by_keyword = class_row(cls)
    fields = [f.name for f in dataclasses.fields(cls)]

    def factory(cursor: Any) -> RowMaker[T]:
        names = [c.name for c in cursor.description or ()]
        if names and names == fields[: len(names)]:
            return lambda values: cls(*values)
        return by_keyword(cursor)

    return factory


class Session:
    """An autocommit, read-only connection to one database of one server.

    Every statement it sends ends with ``queries.MARKER`` (DESIGN 4), its
    EXPLAIN and PREPARE texts and transaction commands included, so
    pg_stat_statements tells the agent's own statements from the
    application's.
    """

    def __init__(self, conn: psycopg.Connection[Any], dsn: str) -> None:
        self._conn = conn
        self._dsn = dsn
        self._depth = 0  # nesting of rolled_back(): 0 outside a transaction

    @property
    def dbname(self) -> str:
        return str(self._conn.info.dbname)

    @property
    def user(self) -> str:
        return str(self._conn.info.user)

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed or self._conn.broken)

    def close(self) -> None:
        self._conn.close()

    def _compose(self, query: Query | str, identifiers: Mapping[str, str]) -> sql.SQL | sql.Composed:
        text = marked(query.text if isinstance(query, Query) else query)
        if identifiers:
            return sql.SQL(text).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})
        return sql.SQL(text)

    def _execute(
        self,
        query: Query | str,
        params: Sequence[Any] | Mapping[str, Any] | None,
        identifiers: Mapping[str, str],
        row_factory: Any,
        binary: bool = False,
    ) -> list[Any]:
        try:
            with self._conn.cursor(row_factory=row_factory, binary=binary) as cur:
                cur.execute(self._compose(query, identifiers), params)
                return cur.fetchall()
        except psycopg.Error as exc:
            where = f" ({query.source})" if isinstance(query, Query) else ""
            raise QueryFailed(_error_message(exc, self._dsn) + where, sqlstate=getattr(exc, "sqlstate", None)) from None

    def rows(
        self,
        query: Query,
        row_type: type[T],
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        binary: bool = False,
        **identifiers: str,
    ) -> list[T]:
        """Rows as instances of a dataclass whose fields are the query's columns (``binary``: see ``tuples``)."""
        return self._execute(query, params, identifiers, dataclass_row(row_type), binary)

    def tuples(
        self,
        query: Query,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        binary: bool = False,
        **identifiers: str,
    ) -> list[tuple[Any, ...]]:
        """Rows as plain tuples, in the query's column order: the cheapest form, for many narrow rows.

        ``binary`` asks for the values in binary: for thousands of rows of
        numbers, the server no longer writes each as text (a float's shortest
        form costs most) nor the agent parses it back. Only for columns of the
        built-in numeric, boolean and text types, which load as they do in text.
        """
        return self._execute(query, params, identifiers, tuple_row, binary)

    def dicts(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None, **identifiers: str
    ) -> list[dict[str, Any]]:
        return self._execute(query, params, identifiers, dict_row)

    def one(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None, **identifiers: str
    ) -> dict[str, Any]:
        rows = self.dicts(query, params, **identifiers)
        if len(rows) != 1:
            raise QueryFailed(f"{query.source} returned {len(rows)} rows, expected 1")
        return rows[0]

    def with_statement(
        self, query: Query, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None, **identifiers: str
    ) -> list[dict[str, Any]]:
        """Run ``query`` with a statement text in its ``{statement}`` slot (EXPLAIN, PREPARE).

        The text is a normalized statement from pg_stat_statements, put in as
        SQL, not as a value: only ever inside EXPLAIN or PREPARE, which plan
        it and never run it. Parameters are bound only when given, so a ``%``
        in the text is left alone.
        """
        parts: dict[str, sql.Composable] = {k: sql.Identifier(v) for k, v in identifiers.items()}
        composed = sql.SQL(marked(query.text)).format(statement=sql.SQL(statement), **parts)
        try:
            with self._conn.cursor(row_factory=dict_row) as cur:
                cur.execute(composed, params)
                return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise QueryFailed(
                _error_message(exc, self._dsn) + f" ({query.source})", sqlstate=getattr(exc, "sqlstate", None)
            ) from None

    def table(self, text: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """A custom query's column names and rows, in order (agent/runtime/custom_runner.py).

        The text is the user's, sent as SQL. It goes as a prepared statement,
        so a text holding several statements is refused whole by the server
        (no ``SELECT 1; SET ...`` runs in part) and a ``%`` in it is left alone.
        """
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql.SQL(text), prepare=True)
                names = tuple(c.name for c in cur.description or ())
                return names, cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise QueryFailed(_error_message(exc, self._dsn), sqlstate=getattr(exc, "sqlstate", None)) from None

    @contextmanager
    def rolled_back(self) -> Iterator[Session]:
        """A transaction (read-only, as every session is) that is always rolled back.

        SET LOCAL settings, hypothetical indexes' catalog lookups and whatever
        a planned statement touched end with it; an error inside leaves the
        session usable.
        """
        depth = self._depth
        savepoint = f"pgradar_{depth}"
        if depth == 0:
            self._command("begin")
        else:
            self._command("savepoint", name=savepoint)
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if depth == 0:
                self._command("rollback")
            else:
                self._command("rollback_to", name=savepoint)
                self._command("release", name=savepoint)

    def _command(self, command: str, /, **identifiers: str) -> None:
        """A transaction command of ``rolled_back``, sent as SQL with the marker (psycopg's own would not be).

        The driver's ``transaction()`` sends BEGIN, SAVEPOINT "_pg3_1" and
        RELEASE unmarked: with pg_stat_statements.track_utility they land
        among the application's statements.
        """
        try:
            with self._conn.cursor() as cur:
                cur.execute(self._compose(resolve("session", command, SESSION_SQL_MAJOR), identifiers))
        except psycopg.Error as exc:
            raise QueryFailed(
                _error_message(exc, self._dsn) + f" (session/{command})", sqlstate=getattr(exc, "sqlstate", None)
            ) from None


def connect(dsn: str, settings: SessionSettings, dbname: str | None = None) -> Session:
    """Open a hardened session; ``dbname`` replaces the DSN's database."""
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={settings.statement_timeout_ms}"
        f" -c lock_timeout={settings.lock_timeout_ms} -c search_path=pg_catalog"
    )
    # Keepalives and tcp_user_timeout end a session whose server vanished
    # mid-query (a dead host, a dropped route): statement_timeout cannot,
    # since it runs on the server.
    extra: dict[str, Any] = {
        "application_name": APPLICATION_NAME,
        "options": options,
        "connect_timeout": settings.connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": settings.statement_timeout_ms + 10_000,
    }
    if dbname is not None:
        extra["dbname"] = dbname
    try:
        conn = psycopg.connect(dsn, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise ConnectFailed(_error_message(exc, dsn)) from None
    return Session(conn, dsn)


# What the driver raises: for code that drives a server itself (the demo's set-up and workload).
DriverError = psycopg.Error


def writing_connection(dsn: str) -> psycopg.Connection[Any]:
    """A plain autocommit connection that may write, for the demo's set-up and workload.

    Never the agent's: the agent reads through ``connect``'s read-only,
    time-limited sessions. It lives here so that one module talks to the driver.
    """
    return psycopg.connect(dsn, autocommit=True)


def admin_command(text: str) -> str:
    """A SQL file's text as pgbouncer's admin console takes it: without comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


class BouncerSession(Session):
    """A session to pgbouncer's admin console: SHOW commands, no parameters, no comments."""

    def _compose(self, query: Query | str, identifiers: Mapping[str, str]) -> sql.SQL | sql.Composed:
        return sql.SQL(admin_command(query.text if isinstance(query, Query) else query))


def connect_bouncer(dsn: str, settings: SessionSettings) -> BouncerSession:
    """Open a session to pgbouncer's admin console (database ``pgbouncer`` unless the DSN names one).

    The console speaks only the simple query protocol (psycopg's ClientCursor,
    never prepared) and refuses startup parameters it does not know, so no
    ``options`` here: it has no read-only mode or timeouts to set anyway.
    """
    extra: dict[str, Any] = {"application_name": APPLICATION_NAME, "connect_timeout": settings.connect_timeout_s}
    try:
        if not conninfo_to_dict(dsn).get("dbname"):
            extra["dbname"] = "pgbouncer"
        conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None, cursor_factory=ClientCursor, **extra)
    except psycopg.Error as exc:
        raise ConnectFailed(_error_message(exc, dsn)) from None
    return BouncerSession(conn, dsn)
