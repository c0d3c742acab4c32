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
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_LOCK = "qistas.write_lock"  # key in a pooled connection's info: the lock it holds


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
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            queue.acquire(connection.connection.info)
        connection.exec_driver_sql(f"BEGIN {mode}")

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

    def acquire(self, info: dict[str, Any]) -> None:
        if _WRITE_LOCK in info:
            return  # this connection already holds it
        # Bounded like SQLite's busy timeout, so a stuck writer fails instead of hanging.
        if not self._thread_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            return  # fall back to SQLite's busy handler, which raises "database is locked"
        fd = None
        try:
            if self._path is not None:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)  # only one thread per process waits here
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
        info[_WRITE_LOCK] = fd

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
    """An engine with its two session factories: ``reader`` and ``writer``."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        engine = make_engine(url, **kwargs)
        write_bind = engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(engine) else engine
        return cls(
            engine=engine,
            reader=sessionmaker(bind=engine, expire_on_commit=False),
            writer=sessionmaker(bind=write_bind, expire_on_commit=False),
        )

    def dispose(self) -> None:
        self.engine.dispose()
