"""PostgreSQL connections for the system of record: one per process and thread
(made on first use, remade after a fork or a failure), a connection of its own
for each streaming read, and the one translation of psycopg errors: a refused
value into ``ValueRefused`` (a result, never retried), anything else into
``InfrastructureError`` (both name the operation and the SQLSTATE, never a value).
``rxfleet.stores.database`` builds its tables on ``Connections``.

The database going away (restarted, killed, failed over, read-only) is an outage,
as Redis's is: the connection that saw it is dropped (a read-only one too:
``25006``, and every connection is opened with ``target_session_attrs=read-write``,
so a standby or a read-only server is never kept), and a statement that is safe to
repeat is tried again on a new one for up to ``outage`` seconds. ``notice`` is told
once that the database is away and once that it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, LiteralString, Self, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

from rxfleet.errors import DatabaseAway, InfrastructureError, ValueRefused

Row = dict[str, Any]
#: pg_advisory_xact_lock key held while migrating or granting ("rxfleet" in ASCII).
MIGRATION_LOCK = 0x7278666C656574
Conn = psycopg.Connection[DictRow]
T = TypeVar("T")
Notice = Callable[[str], None]
log = logging.getLogger("rxfleet.database")


#: Why a connection failed, from libpq's message (matched, never quoted: it may hold a
#: password of a malformed URL): (what the message says, what we say).
CONNECT_CAUSES: tuple[tuple[str, str], ...] = (
    ("too many clients", "no free connection slot (max_connections)"),
    ("remaining connection slots", "no free connection slot (max_connections)"),
    ("starting up", "the server is starting up"),
    ("shutting down", "the server is shutting down"),
    ("recovery mode", "the server is recovering from a crash"),
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
    return _server_said(str(exc))


def _server_said(text: str) -> str | None:
    """The server's own FATAL line (it never holds the URL's password), cut short."""
    found = re.search(r"FATAL:\s+([^\n]{1,120})", text)
    return f"the server said: {found.group(1).strip()}" if found else None


def where(url: str) -> str:
    """``host:port/database`` of a URL (a Unix socket's directory when ``host=`` names
    one), without user or password."""
    try:
        parts = urlsplit(url)
        query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        host = unquote(query.get("host", "")) or parts.hostname or "localhost"
        port = query.get("port") or parts.port or 5432
    except ValueError:
        return "RXFLEET_DATABASE_URL"
    return f"{host}:{port}/{parts.path.lstrip('/') or '(default database)'}"


class Connections:
    """Connections to the database at ``url`` (a ``postgresql://`` URL) and the query
    helpers every table shares."""

    def __init__(
        self,
        url: str,
        connect_timeout: float = 10.0,
        deadlock_retries: int = 3,
        outage: float = 0.0,
        notice: Notice | None = None,
    ) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.deadlock_retries = deadlock_retries
        self.outage = outage  # seconds a statement safe to repeat waits for the database
        self.notice = notice or log.warning
        self._away: str | None = None  # what the last failure said, while the database is away
        self._reached = False  # a connection was ever made: a failure now is an outage
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[int, Conn]] = []
        self._inherited: list[Conn] = []  # a parent's, after fork: never used, never closed

    def _connect(self, autocommit: bool = True) -> Conn:
        return psycopg.connect(
            read_write(self.url),
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
        self._reached = True
        self._local.conn, self._local.pid, self._local.staging = conn, os.getpid(), False
        with self._lock:
            self._opened.append((os.getpid(), conn))
        return conn

    def _drop(self) -> None:
        """Forget this thread's connection (closed if it is this process's own)."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        if self._local.pid == os.getpid():
            with self._lock:
                self._opened = [(p, c) for p, c in self._opened if c is not conn]
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Translate psycopg errors into ValueRefused, DatabaseAway (the connection is
        dropped) or InfrastructureError (no values in the message)."""
        try:
            yield
        except psycopg.Error as exc:
            reason = exc.sqlstate or type(exc).__name__
            if refuses_value(exc):
                raise ValueRefused(operation, reason) from None
            cause = connect_cause(exc, self.url)
            if is_away(exc) and (self._reached or busy(exc)):  # else a wrong URL: not an outage
                self._drop()
                self._gone(cause or reason)
                raise DatabaseAway(f"database: {operation} failed ({cause or reason})") from None
            raise InfrastructureError(
                f"database: {operation} failed ({reason})" + (f": {cause}" if cause else "")
            ) from None
        self._back()

    def _gone(self, reason: str) -> None:
        if self._away is None:
            self._away = reason
            self.notice(f"the database is away ({reason}); reconnecting")

    def _back(self) -> None:
        if self._away is not None:
            self._away = None
            self.notice("the database is back")

    def _call(self, operation: str, work: Callable[[Conn], T], *, repeat: bool = True) -> T:
        """``work`` on this thread's connection; while the database is away, again on a
        new one for up to ``outage`` seconds when ``repeat`` (safe to run twice)."""
        patience = Patience(self.outage if repeat else 0.0)
        while True:
            try:
                with self._guard(operation):
                    return work(self._conn())
            except DatabaseAway:
                if not patience.wait():
                    raise

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
        return self._call(operation, lambda conn: conn.execute(query, params).fetchone())

    def _all(self, operation: str, query: LiteralString, params: Any = None) -> list[Row]:
        return self._call(operation, lambda conn: conn.execute(query, params).fetchall())

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(self.deadlock_retries):
            with contextlib.suppress(psycopg.errors.DeadlockDetected):
                return attempt()
        return attempt()

    def _stream(
        self,
        operation: str,
        query: LiteralString,
        params: Any,
        chunk: int,
        after: Callable[[Row], Any] | None = None,
    ) -> Iterator[Row]:
        """The rows of ``query``, streamed on a connection of their own. Cut by an
        outage, the stream is opened again (for up to ``outage`` seconds): from the
        start while nothing was yielded, else with the parameters ``after(last row)``
        gives (a query that resumes past it); without ``after`` it fails."""
        patience, last = Patience(self.outage), None
        while True:
            try:
                for row in self._stream_once(operation, query, params, chunk):
                    last = row
                    yield row
                return
            except DatabaseAway:
                if (last is not None and after is None) or not patience.wait():
                    raise
            if last is not None and after is not None:
                params = after(last)

    def _stream_once(
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


def read_write(url: str) -> str:
    """``url`` asking for a session that takes writes (libpq's ``target_session_attrs``,
    unless the URL says otherwise): a standby or a read-only server is refused on connect."""
    info = conninfo_to_dict(url)
    info.setdefault("target_session_attrs", "read-write")
    return make_conninfo("", **info)


class Patience:
    """How long to wait for the database: ``wait`` sleeps (0.1 s, doubling to 2 s) and
    says True until ``seconds`` have passed since its first call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None
        self.pause = 0.1

    def wait(self) -> bool:
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        if now + self.pause - self.since > self.seconds:
            return False
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, 2.0)
        return True


#: SQLSTATEs that say the server went away or cannot take a write here: the operator
#: or a crash ended the session (57P01-57P03), a read-only transaction (25006; a standby
#: or ``default_transaction_read_only``), and every connection exception (class 08).
_AWAY = frozenset({"57P01", "57P02", "57P03", "25006"})


#: What a server that is there but cannot take this connection yet says: busy or
#: restarting. A process that never reached it waits for it as for an outage.
_BUSY = ("too many clients", "remaining connection slots", "starting up", "shutting down",
         "recovery mode", "not yet accepting connections")  # fmt: skip


def busy(exc: psycopg.Error) -> bool:
    """True when ``exc`` says the server is there but full or restarting."""
    text = str(exc).lower()
    return isinstance(exc, psycopg.OperationalError) and any(n in text for n in _BUSY)


def is_away(exc: psycopg.Error) -> bool:
    """True when ``exc`` says the database is away (not that it refuses this statement):
    an ``_AWAY`` SQLSTATE or class 08, or an ``OperationalError`` without a SQLSTATE
    (refused, reset, a session found read-only on connecting)."""
    sqlstate = exc.sqlstate
    if not sqlstate:
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return sqlstate in _AWAY or sqlstate.startswith("08")


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
