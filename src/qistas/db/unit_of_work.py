"""The unit of work: one transaction around a piece of work, committed or rolled back whole.

The API's routes, the web pages and the background workers all run their work through
``write`` (``write_now`` for the annotation loop's short transactions) or ``read``: domain
functions only flush, and the transaction is begun and ended here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar, get_args

import anyio.to_thread
from sqlalchemy import URL, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from qistas.config import SynchronousCommit
from qistas.db.dialect import (
    database_on_this_machine,
    is_disconnect,
    is_lock_timeout,
    is_retryable,
    is_statement_timeout,
)
from qistas.db.engine import Database, WriterBusy, is_sqlite

T = TypeVar("T")
RETRIES = 5
# How long a loop request polls a busy SQLite write lock before queueing in the thread pool.
INLINE_PATIENCE_SECONDS = 10.0


def write(db: Database, work: Callable[[Session], T], *, bulk: bool = False,
          synchronous_commit: SynchronousCommit | None = None) -> T:
    """Run ``work`` in one write transaction: commit on success, roll back on any error.

    A deadlock or serialization failure (PostgreSQL) runs the whole transaction again; so does,
    once, a connection found gone (the driver says so: SQLAlchemy invalidates it and the pool's
    connections from before) before the commit was sent, when nothing was written: a pooled
    connection is pinged only after sitting idle (``db.engine``), so one cut by a database
    restart a moment after its last use fails at its first statement instead. A connection
    lost during the commit is not retried: whether it committed is unknown.
    ``bulk``: one of many transactions in a row (see ``Database.bulk_writer``); on SQLite it
    lets the writers that want the lock now go first. ``synchronous_commit`` (PostgreSQL):
    what the commit waits for, PostgreSQL's setting of that name set in the transaction before
    ``work`` (which may undo it: ``commit_waits``).
    """
    sessions = db.bulk_writer if bulk else db.writer
    reconnected = False
    for attempt in range(RETRIES):
        committing = False
        try:
            with sessions.begin() as session:
                if synchronous_commit is not None and not is_sqlite(db.engine):
                    _commit_waits_for(session, synchronous_commit)
                result = work(session)
                committing = True
            return result
        except DBAPIError as exc:
            if exc.connection_invalidated and not committing and not reconnected:
                reconnected = True  # the pool has replaced its connections from before the cut
                continue
            if not is_retryable(exc) or attempt == RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


async def write_now(db: Database, work: Callable[[Session], T], *,
                    synchronous_commit: SynchronousCommit | None = None) -> T:
    """``write`` for the short transactions of the annotation loop, on the event loop if it can.

    On SQLite the transaction runs right here, on the event loop, once no other writer holds
    or awaits the write lock: it cannot wait on a lock then, and SQLite answers in
    microseconds. Run in a worker thread instead, the same transaction costs about twice the
    CPU, because the thread and the event loop hand the GIL back and forth around every SQLite
    call. While the lock is taken (an import, a background job, another process), the request
    waits here without blocking the loop, trying again after a pause that doubles up to 20 ms.
    It does not queue in the thread pool: requests arriving behind it would find that queue
    and follow it, and the loop would stay on the slow path long after the writer left
    (measured: a background writer holding the lock 20 ms a second took 32 annotators from
    285 to 166 annotations/s that way). On PostgreSQL, where every statement is a network
    round trip and row locks may wait, it runs in the thread pool like any other transaction,
    unless ``db.inline_postgres`` (below). ``synchronous_commit``: see ``write``; on the event
    loop it is set in the message that begins the transaction (no round trip of its own).
    """
    if db.inline_postgres is not None:
        committing = False
        also = None if synchronous_commit is None else _SET_LOCAL[synchronous_commit]
        try:
            with db.inline_postgres.begin(also) as session:  # begun with INLINE_BEGIN
                if also is not None:
                    session.info[_WAITS_FOR] = synchronous_commit
                result = work(session)
                committing = True
            return result
        except DBAPIError as exc:
            reason = _rerun_reason(exc, committing=committing)
            if reason is None:
                raise
            db.inline_postgres.on_rerun(reason)
            # It waited on a row lock too long for the event loop, or one of its statements ran
            # too long for it (or it met a deadlock): it was rolled back whole; run it again in
            # a thread, where waiting holds up no one. Or the kept connection was found dead
            # before the commit was sent (nothing written): the thread's connection comes from
            # the pool, checked at check-out.
    if db.inline_writer is not None:
        deadline = time.monotonic() + INLINE_PATIENCE_SECONDS
        pause = 0.0005
        while True:
            try:
                with db.inline_writer.begin() as session:
                    return work(session)
            except WriterBusy:
                if time.monotonic() >= deadline:
                    break  # a writer that long: queue for the lock in a thread like everyone else
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.02)
    return await write_in_thread(db, work, synchronous_commit=synchronous_commit)


# ``synchronous_commit`` for a transaction whose loss in a crash of the database costs nothing
# that cannot be done again (a lease handed out, extended or given back: the annotator takes
# again). ``off``: the commit returns once its record is in PostgreSQL's WAL buffers, without
# waiting for the disk; the WAL writer flushes it within ``wal_writer_delay`` (200 ms), and any
# later commit that waits flushes it with its own. A database that crashes before then comes
# back without it, whole: PostgreSQL replays transactions, not statements (docs/scaling.md 3.3).
_SET_LOCAL: dict[str, str] = {value: f"SET LOCAL synchronous_commit = {value}" for value in get_args(SynchronousCommit)}
_WAITS_FOR = "qistas.synchronous_commit"


def _commit_waits_for(session: Session, value: SynchronousCommit) -> None:
    session.execute(text(_SET_LOCAL[value]))
    session.info[_WAITS_FOR] = value


def commit_waits(session: Session) -> None:
    """The transaction writes more than a lease after all (an exam's result): its commit waits
    as the database's commits do, whatever ``synchronous_commit`` it was begun with. One round
    trip, only in such a transaction."""
    if session.info.pop(_WAITS_FOR, None) is not None:
        session.execute(text("SET LOCAL synchronous_commit TO DEFAULT"))


# PostgreSQL with ``inline_postgres``: the transaction runs on the event loop, which waits with
# it on every round trip (a fraction of a millisecond with the database on the same machine or
# network) and on any row lock it meets. A row lock held longer than the lock timeout (a bulk
# change of the project's tasks, another submit's transaction stuck in its process) ends the
# wait with an error, and so does a statement that runs past the statement timeout (the
# database stalled on its disk or starved of CPU: the loop's statements take well under a
# millisecond); the transaction is run again in a thread. So one statement holds the process's
# other requests up for 100 ms at most, where the database answers at all. Measured: a fifth to
# a third less server CPU per answer than the thread pool (docs/scaling.md, section 3.9).
INLINE_LOCK_TIMEOUT_MS = 10
INLINE_STATEMENT_TIMEOUT_MS = 100
INLINE_BEGIN = (f"BEGIN; SET LOCAL lock_timeout = '{INLINE_LOCK_TIMEOUT_MS}ms'; "
                f"SET LOCAL statement_timeout = '{INLINE_STATEMENT_TIMEOUT_MS}ms'")


def _rerun_reason(exc: DBAPIError, *, committing: bool) -> str | None:
    """Why an inline transaction that failed with ``exc`` runs again in a thread (the label of
    ``qistas_inline_transactions_rerun_total``), or None: it does not. A connection lost or a
    statement canceled while ``committing`` is not run again: whether it committed is unknown."""
    if is_lock_timeout(exc):
        return "lock"
    if is_retryable(exc):
        return "conflict"  # a deadlock or serialization failure: rolled back whole
    if committing:
        return None
    if is_statement_timeout(exc):
        return "statement"
    if is_disconnect(exc):
        return "connection"
    return None


def postgres_loop_inline(choice: str, url: URL, *, processes: int, cores: int) -> bool:
    """Whether ``QISTAS_POSTGRES_INLINE_LOOP`` (``choice``: ``auto``, ``on`` or ``off``) runs the
    loop of the PostgreSQL database at ``url`` on the event loop of each of ``processes`` server
    processes on a machine of ``cores``. ``auto`` does for a database on this machine, where a
    round trip takes tens of microseconds, served by at least as many processes as there are
    cores: then the cores are what is short, and the event loop spends less of them per answer;
    while a process waits on the database (each round trip, each commit's flush) another
    process runs. With fewer processes, a process in the thread pool goes on with other requests
    while its threads wait, and answers more (measured: docs/scaling.md, section 3.9)."""
    return choice == "on" or (choice == "auto" and processes >= cores and database_on_this_machine(url))


async def read_now(db: Database, work: Callable[[Session], T]) -> T:
    """``read`` for a short read of the annotation loop's pace: on SQLite right here, on the
    event loop (a read in WAL mode never waits for a writer), else in the thread pool."""
    if db.inline_reader is not None:
        with db.inline_reader.begin() as session:
            return work(session)
    return await anyio.to_thread.run_sync(partial(read, db, work))


async def write_in_thread(db: Database, work: Callable[[Session], T], *,
                          synchronous_commit: SynchronousCommit | None = None) -> T:
    """``write`` in the thread pool the web framework runs its blocking work in (Starlette's
    ``run_in_threadpool``): for a transaction too long to run on the event loop."""
    return await anyio.to_thread.run_sync(partial(write, db, work, synchronous_commit=synchronous_commit))


def read(db: Database, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one read-only transaction; once more on a new connection if the first
    was found gone (see ``write``)."""
    try:
        with db.reader() as session:
            return work(session)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with db.reader() as session:
        return work(session)
