"""Engines and sessions for SQLite and PostgreSQL.

SQLite gets foreign keys, WAL and a busy timeout on every connection. pysqlite's own
transaction handling is switched off so that we emit BEGIN ourselves: sessions made by
``writer`` start with ``BEGIN IMMEDIATE``, taking the write lock up front, so two requests
claiming work never both read "free" and then fight over the upgrade to a write lock.

Writers also queue on a lock of our own before ``BEGIN IMMEDIATE`` (a thread lock within
the process, ``flock`` on a file next to the database across processes). SQLite's busy
handler polls with sleeps of up to 100 ms, so under load a waiting writer sleeps long after
the lock is free; a blocking lock wakes the next writer the moment the last one finishes.
SQLite's own lock still guards every write; ours only orders the waiting.

``inline_writer`` sessions never wait: when another writer holds the lock, or one is already
waiting for it, their BEGIN raises ``WriterBusy`` before anything is done. The server uses
them to run short transactions on the event loop itself (see ``db.unit_of_work.write_now``).

``bulk_writer`` sessions are for work of many transactions in a row (an import written a
chunk at a time): before each, they let others go first. Released and taken straight back,
the lock went to the bulk writer nearly every time, and the annotation loop's writers, which
poll, waited for the whole import (32 annotators: a tenth of their pace during imports). A
bulk writer waits while another writer has wanted the lock within the last few
milliseconds, up to a bound, so it still advances under constant load.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from qistas import jsontext
from qistas.files import private_file

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_LOCK = "qistas.write_lock"  # key in a pooled connection's info: the lock it holds


class WriterBusy(Exception):
    """An ``inline_writer`` transaction found the write lock taken (or wanted): nothing was done."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be used right now (the server is
    down or dropped the connection, SQLite stayed locked), not that the statement was wrong."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> _WriterQueue:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash
        # may lose the last transactions, never corrupt the file.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    queue = _WriterQueue(engine.url.database)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        if options.get("sqlite_yield"):
            queue.yield_to_others()
        if options.get("sqlite_nowait"):
            if not queue.try_acquire(connection.connection.info):
                raise WriterBusy()
        elif mode == "IMMEDIATE":
            queue.acquire(connection.connection.info)
        # On the driver itself: this runs for every transaction, and SQLAlchemy's execution
        # path cost ten times what SQLite takes to begin one.
        statement = f"BEGIN {mode}"
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc

    # Returned to the pool: the transaction is over (committed or rolled back).
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        queue.release(record.info)

    return queue


# A bulk writer waits while another writer wanted the lock this recently, for at most this long.
YIELD_WINDOW_SECONDS = 0.03
YIELD_AT_MOST_SECONDS = 0.25


class _WriterQueue:
    """Writers of one SQLite file, one at a time, woken in turn (see the module docstring)."""

    def __init__(self, database: str | None) -> None:
        self._wanted_at = 0.0  # when a writer last found the lock taken (``time.monotonic``)
        self._thread_lock = threading.Lock()
        in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
        self._path = None if in_memory else f"{database}-writelock"
        # Threads blocked in acquire(): while any waits, try_acquire() does not jump the queue,
        # or a busy event loop could take the lock back between its requests indefinitely.
        self._waiting = 0
        self._counting = threading.Lock()  # guards _waiting (``+=`` is not atomic across threads)

    def acquire(self, info: dict[str, Any]) -> None:
        if _WRITE_LOCK in info:
            return  # this connection already holds it
        with self._counting:
            self._waiting += 1
        if self._thread_lock.locked():
            self._mark_wanted()
        try:
            # Bounded like SQLite's busy timeout, so a stuck writer fails instead of hanging.
            got = self._thread_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        finally:
            with self._counting:
                self._waiting -= 1
        if not got:
            return  # fall back to SQLite's busy handler, which raises "database is locked"
        info[_WRITE_LOCK] = self._lock_file(fcntl.LOCK_EX)

    def try_acquire(self, info: dict[str, Any]) -> bool:
        """Take the lock only if no one holds it or waits for it; never block."""
        if _WRITE_LOCK in info:
            return True
        if self._waiting or not self._thread_lock.acquire(blocking=False):
            self._mark_wanted()
            return False
        if self._path is None:
            info[_WRITE_LOCK] = None
            return True
        fd = self._lock_file(fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:  # another process writes
            self._thread_lock.release()
            self._mark_wanted(other_process=True)
            return False
        info[_WRITE_LOCK] = fd
        return True

    def yield_to_others(self) -> None:
        """Before a bulk writer's transaction: let writers that wanted the lock just now go
        first, in this process or (by the lock file's time) in another."""
        started = time.monotonic()
        while True:
            now = time.monotonic()
            if min(now - self._wanted_at, self._since_wanted_elsewhere()) >= YIELD_WINDOW_SECONDS \
                    or now - started >= YIELD_AT_MOST_SECONDS:
                return
            time.sleep(0.005)

    def _mark_wanted(self, *, other_process: bool = False, fd: int | None = None) -> None:
        """A writer found the lock taken. Within the process, a time in memory; when another
        process holds it, also the lock file's modification time, which that process's bulk
        writer reads (an import process writing beside the server yields to the server's
        writers as the server's own threads do)."""
        self._wanted_at = time.monotonic()
        if other_process and self._path is not None:
            with contextlib.suppress(OSError):
                os.utime(fd if fd is not None and os.utime in os.supports_fd else self._path)

    def _since_wanted_elsewhere(self) -> float:
        if self._path is None:
            return float("inf")
        try:
            return time.time() - os.stat(self._path).st_mtime
        except OSError:
            return float("inf")

    def _lock_file(self, operation: int) -> int | None:
        """The cross-process lock: an open descriptor holding ``flock``, or None."""
        fd = None
        try:
            if self._path is not None:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                if not operation & fcntl.LOCK_NB:
                    try:
                        fcntl.flock(fd, operation | fcntl.LOCK_NB)
                        return fd
                    except BlockingIOError:  # another process writes: say so, then wait
                        self._mark_wanted(other_process=True, fd=fd)
                fcntl.flock(fd, operation)  # only one thread per process waits here
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
        return fd

    def release(self, info: dict[str, Any]) -> None:
        if _WRITE_LOCK not in info:
            return
        fd = info.pop(_WRITE_LOCK)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
        self._thread_lock.release()


def make_engine(url: str, **kwargs: Any) -> Engine:
    return _make_engine(url, **kwargs)[0]


def _make_engine(url: str, **kwargs: Any) -> tuple[Engine, _WriterQueue | None]:
    # A failed statement's error message (and so a logged traceback) leaves out its bound
    # parameters: they hold task data, answers and token hashes, which logs never carry.
    kwargs.setdefault("hide_parameters", True)
    # Stored JSON read with msgspec (the same values as json.loads, several times faster): every
    # JSON column the ORM reads, and jsonb that psycopg decodes for raw reads (db/rawrows.py).
    kwargs.setdefault("json_deserializer", jsontext.loads)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:") \
                and Path(database).parent.is_dir():
            private_file(Path(database))  # 0600 before SQLite makes it 0644; -wal and -shm follow it
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        return engine, _configure_sqlite(engine)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine, None


# A PostgreSQL connection unused for this long is pinged before its next use: a pooled one at
# check-out, the event loop's kept one (``InlineTransactions``) before its next transaction.
IDLE_PING_SECONDS = 5.0
_IDLE_SINCE = "qistas.idle_since"  # key in a pooled connection's info: when it was checked in


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection at check-out only if it sat in the pool ``IDLE_PING_SECONDS``.

    SQLAlchemy's ``pool_pre_ping`` pings at every check-out: one round trip per request, a
    seventh of an answer's. A connection in use a moment ago is alive but for a database
    restart or a network cut in between; that rare case is caught where the statement fails
    (``unit_of_work.write`` and ``read`` run the transaction again, once, on a new connection;
    the failure has the pool's older connections replaced). One idle for seconds has had time
    to be cut (a proxy's or firewall's idle timeout, a restart during a quiet spell) and is
    checked first, as ``pool_pre_ping`` would, and replaced if it is dead."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is not None and time.monotonic() - since > IDLE_PING_SECONDS \
                and not _alive(engine.dialect, dbapi_connection):
            raise DisconnectionError("the pooled connection was closed while idle")


def _alive(dialect: Any, dbapi_connection: Any) -> bool:
    """Ping the connection (an empty statement); False if it is gone. Any other error is raised."""
    try:
        return bool(dialect.do_ping(dbapi_connection))
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_connection, None):
            return False
        raise


class InlineTransactions:
    """Transactions run on the event loop (SQLite), each on a connection its thread keeps:
    writes that never wait (``Database.inline_writer``) or reads (``Database.inline_reader``).

    For writes, ``begin()`` gives a session in a ``BEGIN IMMEDIATE`` transaction, committed at
    the end of the block (rolled back on an error), or raises ``WriterBusy`` before doing
    anything; for reads, a ``BEGIN DEFERRED`` one, which never waits. The server runs them
    on its event loop, one at a time, for the annotation loop's short requests; there, a
    session per request from the pool (check out, begin, commit, check in) cost more CPU than
    the request's own statements, and keeping the connection halves it. The write lock taken
    at BEGIN is given back right after the commit or rollback, which for pooled connections
    happens when they return to the pool.
    """

    def __init__(self, engine: Engine, queue: _WriterQueue | None, begin: str | None = None,
                 on_rerun: Callable[[str], None] | None = None) -> None:
        """``queue`` None: read-only transactions (``BEGIN DEFERRED``), which in WAL mode
        never wait for a writer and never keep one waiting (``Database.inline_reader``), or any
        transaction on PostgreSQL (``Database.inline_postgres``).

        ``begin`` (PostgreSQL): the statements that begin each transaction, sent as one
        message. The kept connection is in the driver's autocommit mode, so the driver sends no
        ``BEGIN`` of its own (a round trip, before the first statement): ``begin`` opens the
        transaction, with its settings in the same round trip, and commit and rollback end it.
        ``on_rerun``: told why (``unit_of_work.write_now``) each time a transaction begun here is
        rolled back to run again in a thread."""
        self._engine = engine.execution_options(sqlite_begin="IMMEDIATE", sqlite_nowait=True) \
            if queue is not None else engine
        self._queue = queue
        self._begin = begin
        self.on_rerun = on_rerun or _no_one
        # A PostgreSQL connection can die while kept (a restart, a network cut, an idle
        # timeout): one left unused for a while is pinged before its next transaction.
        self._idle_limit = None if is_sqlite(engine) else IDLE_PING_SECONDS
        self._local = threading.local()
        self._kept: list[Connection] = []  # every thread's connection, closed by ``close``
        self._kept_lock = threading.Lock()

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if self._idle_limit is not None:
            now = time.monotonic()
            if connection is not None and (_broken(connection) or (
                    now - self._local.used > self._idle_limit and not _alive(connection.dialect,
                                                                             connection.connection.dbapi_connection))):
                self._forget(connection, dead=True)
                connection = None
            self._local.used = now
        if connection is None or connection.closed or connection.invalidated:
            if connection is not None:
                self._forget(connection)
            connection = self._local.connection = self._engine.connect()
            if self._begin is not None:
                _driver(connection).autocommit = True
            with self._kept_lock:
                self._kept.append(connection)
        return connection

    def _forget(self, connection: Connection, *, dead: bool = False) -> None:
        with self._kept_lock:
            if connection in self._kept:
                self._kept.remove(connection)
        if (dead or _broken(connection)) and not connection.invalidated:
            connection.invalidate()  # not back to the pool: a dead connection is closed
        elif self._begin is not None and not connection.closed and not connection.invalidated:
            _driver(connection).autocommit = False  # back to the pool as it came
        connection.close()

    @contextmanager
    def begin(self, also: str | None = None) -> Iterator[Session]:
        """``also`` (PostgreSQL): more statements without parameters for this transaction's
        beginning (a ``SET LOCAL``), sent in the same message."""
        connection = self._connection()
        session = Session(bind=connection, expire_on_commit=False)
        try:
            session.connection()  # BEGIN: a busy lock refuses here, before any work
            if self._begin is not None:
                _send(connection, self._begin if also is None else f"{self._begin}; {also}")
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if self._queue is not None:
                self._queue.release(connection.connection.info)

    def close(self) -> None:
        with self._kept_lock:
            kept = list(self._kept)
        for connection in kept:
            self._forget(connection)


def _no_one(_reason: str) -> None:
    """Told nothing: an ``on_rerun`` for no one."""


def _send(connection: Connection, statements: str) -> None:
    """Statements without parameters, on the driver (one message: the simple query protocol)."""
    error = connection.dialect.loaded_dbapi.Error
    try:
        _driver(connection).execute(statements)
    except error as exc:
        raise DBAPIError.instance(statements, None, exc, error, dialect=connection.dialect) from exc


def _broken(connection: Connection) -> bool:
    """Whether the driver knows its connection is gone (psycopg's ``broken``: the server went away
    mid-statement)."""
    if connection.closed or connection.invalidated:
        return False
    driver = _driver(connection)
    return bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))


def _driver(connection: Connection) -> Any:
    """The driver's own connection under a SQLAlchemy one."""
    return connection.connection.driver_connection


@dataclass(frozen=True)
class Database:
    """An engine with its session factories: ``reader``, ``writer``, ``bulk_writer`` and, on
    SQLite, ``inline_writer``. ``inline_postgres``: on PostgreSQL, the annotation loop's short
    transactions run on the event loop, on the connection it keeps (``unit_of_work.write_now``;
    ``QISTAS_POSTGRES_INLINE_LOOP``; made by ``with_inline_postgres``)."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    bulk_writer: sessionmaker[Session]
    inline_writer: InlineTransactions | None = None
    inline_reader: InlineTransactions | None = None
    inline_postgres: InlineTransactions | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        engine, queue = _make_engine(url, **kwargs)
        write_bind: Engine = engine
        bulk_bind: Engine = engine
        inline_writer = inline_reader = None
        if queue is not None:
            write_bind = engine.execution_options(sqlite_begin="IMMEDIATE")
            bulk_bind = engine.execution_options(sqlite_begin="IMMEDIATE", sqlite_yield=True)
            inline_writer = InlineTransactions(engine, queue)
            inline_reader = InlineTransactions(engine, None)
        return cls(
            engine=engine,
            reader=sessionmaker(bind=engine, expire_on_commit=False),
            writer=sessionmaker(bind=write_bind, expire_on_commit=False),
            bulk_writer=sessionmaker(bind=bulk_bind, expire_on_commit=False),
            inline_writer=inline_writer,
            inline_reader=inline_reader,
        )

    def with_inline_postgres(self, begin: str, *, on_rerun: Callable[[str], None] | None = None) -> Database:
        """The same database, its annotation loop's transactions run on the event loop
        (PostgreSQL), each begun by ``begin``; ``on_rerun`` is told why one runs again in a thread."""
        return replace(self, inline_postgres=InlineTransactions(self.engine, None, begin=begin, on_rerun=on_rerun))

    def dispose(self) -> None:
        for inline in (self.inline_writer, self.inline_reader, self.inline_postgres):
            if inline is not None:
                inline.close()
        self.engine.dispose()
