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
them to run short transactions on the event loop itself (see ``api.deps.write_now``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_LOCK = "qistas.write_lock"  # key in a pooled connection's info: the lock it holds


class WriterBusy(Exception):
    """An ``inline_writer`` transaction found the write lock taken (or wanted): nothing was done."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
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


class _WriterQueue:
    """Writers of one SQLite file, one at a time, woken in turn (see the module docstring)."""

    def __init__(self, database: str | None) -> None:
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
            return False
        if self._path is None:
            info[_WRITE_LOCK] = None
            return True
        fd = self._lock_file(fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:  # another process writes
            self._thread_lock.release()
            return False
        info[_WRITE_LOCK] = fd
        return True

    def _lock_file(self, operation: int) -> int | None:
        """The cross-process lock: an open descriptor holding ``flock``, or None."""
        fd = None
        try:
            if self._path is not None:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
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
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


@dataclass(frozen=True)
class Database:
    """An engine with its session factories: ``reader``, ``writer`` and, on SQLite, ``inline_writer``."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    inline_writer: sessionmaker[Session] | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        engine = make_engine(url, **kwargs)
        write_bind: Engine = engine
        inline_writer = None
        if is_sqlite(engine):
            write_bind = engine.execution_options(sqlite_begin="IMMEDIATE")
            inline_writer = sessionmaker(bind=write_bind.execution_options(sqlite_nowait=True),
                                         expire_on_commit=False)
        return cls(
            engine=engine,
            reader=sessionmaker(bind=engine, expire_on_commit=False),
            writer=sessionmaker(bind=write_bind, expire_on_commit=False),
            inline_writer=inline_writer,
        )

    def dispose(self) -> None:
        self.engine.dispose()
