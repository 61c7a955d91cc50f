"""PostgreSQL connections for the system of record: one per process and thread
(made on first use, remade after a fork or a failure), a connection of its own
for each streaming read, and the one translation of psycopg errors: a refused
value into ``ValueRefused`` (a result, never retried), anything else into
``InfrastructureError`` (both name the operation and the SQLSTATE, never a value).
``rxfleet.stores.database`` builds its tables on ``Connections``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, LiteralString, Self, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import DictRow, dict_row

from rxfleet.errors import InfrastructureError, ValueRefused

Row = dict[str, Any]
Conn = psycopg.Connection[DictRow]
T = TypeVar("T")


#: Why a connection failed, from libpq's message (matched, never quoted: it may hold a
#: password of a malformed URL): (what the message says, what we say).
CONNECT_CAUSES: tuple[tuple[str, str], ...] = (
    ("connection refused", "connection refused (is PostgreSQL running there?)"),
    ("timeout expired", "connection timed out"),
    ("could not translate host name", "unknown host"),
    ("name or service not known", "unknown host"),
    ("no such file or directory", "no server on that socket"),
    ("password authentication failed", "password authentication failed"),
    ("no password supplied", "no password supplied"),
    ("role", "no such user (role)"),
    ("database", "no such database"),
    ("invalid dsn", "RXFLEET_DATABASE_URL is not a PostgreSQL URL"),
    ("invalid uri", "RXFLEET_DATABASE_URL is not a PostgreSQL URL"),
    ("invalid connection option", "RXFLEET_DATABASE_URL is not a PostgreSQL URL"),
    ('missing "="', "RXFLEET_DATABASE_URL is not a PostgreSQL URL"),
)


def connect_cause(exc: psycopg.Error, url: str) -> str | None:
    """The cause of a failed connection and where it went (host, port, database: never
    the user's password), or None when ``exc`` is not about connecting."""
    if exc.sqlstate is not None and not exc.sqlstate.startswith(("08", "28", "3D")):
        return None
    text = str(exc).lower()
    for needle, said in CONNECT_CAUSES:
        if needle in text and (needle not in ("role", "database") or "does not exist" in text):
            return said if said.startswith("RXFLEET_") else f"{said} at {where(url)}"
    return None


def where(url: str) -> str:
    """``host:port/database`` of a URL, without user or password."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError:
        return "RXFLEET_DATABASE_URL"
    return f"{host}:{port}/{parts.path.lstrip('/') or '(default database)'}"


class Connections:
    """Connections to the database at ``url`` (a ``postgresql://`` URL) and the query
    helpers every table shares."""

    def __init__(self, url: str, connect_timeout: float = 10.0, deadlock_retries: int = 3) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.deadlock_retries = deadlock_retries
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[int, Conn]] = []
        self._inherited: list[Conn] = []  # a parent's, after fork: never used, never closed

    def _connect(self, autocommit: bool = True) -> Conn:
        return psycopg.connect(
            self.url,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=max(1, int(self.connect_timeout)),
        )

    def _conn(self) -> Conn:
        """This thread's connection, made on first use (or after a fork or a failure)."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and not conn.broken:
            return conn
        if conn is not None and self._local.pid != os.getpid():
            self._inherited.append(conn)  # closing it would end the parent's session
        conn = self._connect()
        self._local.conn, self._local.pid, self._local.staging = conn, os.getpid(), False
        with self._lock:
            self._opened.append((os.getpid(), conn))
        return conn

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Translate psycopg errors into ValueRefused or InfrastructureError (no values
        in the message)."""
        try:
            yield
        except psycopg.Error as exc:
            if refuses_value(exc):
                raise ValueRefused(operation, exc.sqlstate or type(exc).__name__) from None
            reason = exc.sqlstate or type(exc).__name__
            cause = connect_cause(exc, self.url)
            raise InfrastructureError(
                f"database: {operation} failed ({reason})" + (f": {cause}" if cause else "")
            ) from None

    def close(self) -> None:
        """Close the connections this process opened (any thread)."""
        with self._lock:
            mine = [c for pid, c in self._opened if pid == os.getpid()]
            self._opened = [(pid, c) for pid, c in self._opened if pid != os.getpid()]
        for conn in mine:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _one(self, operation: str, query: LiteralString, params: Any = None) -> Row | None:
        with self._guard(operation):
            return self._conn().execute(query, params).fetchone()

    def _all(self, operation: str, query: LiteralString, params: Any = None) -> list[Row]:
        with self._guard(operation):
            return self._conn().execute(query, params).fetchall()

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(self.deadlock_retries):
            with contextlib.suppress(psycopg.errors.DeadlockDetected):
                return attempt()
        return attempt()

    def _stream(
        self, operation: str, query: LiteralString, params: Any, chunk: int
    ) -> Iterator[Row]:
        with (
            self._guard(operation),
            self._connect(autocommit=False) as conn,
            conn.cursor(name=f"rx_{operation}") as cursor,
        ):
            cursor.itersize = chunk
            cursor.execute(query, params)
            yield from cursor


#: The unique conflict: what ``ON CONFLICT DO NOTHING`` makes idempotent, not a bad value.
_UNIQUE_VIOLATION = "23505"
_INDEX_ROW_TOO_LARGE = "54000"


def refuses_value(exc: psycopg.Error) -> bool:
    """True when ``exc`` says the database refuses a value (the same write fails
    every time): SQLSTATE class 22 (data exception), class 23 (integrity) other
    than the unique conflict, 54000 (program limit: index row too large); or
    psycopg's own ``DataError`` without a SQLSTATE (it refuses a NUL in text
    before the server sees it)."""
    sqlstate = exc.sqlstate
    if not sqlstate:
        return isinstance(exc, psycopg.DataError)
    if sqlstate.startswith("23"):
        return sqlstate != _UNIQUE_VIOLATION
    return sqlstate.startswith("22") or sqlstate == _INDEX_ROW_TOO_LARGE
