"""SQLite's inline writer: it never waits, never jumps the queue, and its requests still get served.

The annotation loop's routes run their transaction on the event loop when the write lock is
free (``db.unit_of_work.write_now``). These tests hold the lock from elsewhere (another thread, or
another ``Database`` on the same file, as a second server process would) and check that the
inline writer refuses before doing anything, and that a request arriving then waits without
blocking the event loop and completes once the lock is free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from qistas.db.engine import Database, WriterBusy, _WriterQueue
from qistas.db.models import Organization
from tests.conftest import LiveServer
from tests.factories import Tenant

pytestmark = pytest.mark.sqlite_only


@contextmanager
def write_lock_held(database: Database) -> Iterator[None]:
    """Hold the write lock in another thread until the block ends."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with database.writer.begin() as session:
            session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is ours from here
            taken.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        done.set()
        holder.join(10)


def add_org(database: Database, slug: str) -> None:
    assert database.inline_writer is not None
    with database.inline_writer.begin() as session:
        session.add(Organization(name=slug, slug=slug))


def org_count(database: Database) -> int:
    with database.reader() as session:
        return session.scalar(select(func.count()).select_from(Organization)) or 0


def test_the_inline_writer_refuses_while_another_thread_writes_and_changes_nothing(database: Database) -> None:
    before = org_count(database)
    with write_lock_held(database), pytest.raises(WriterBusy):
        add_org(database, "refused")
    assert org_count(database) == before
    add_org(database, "accepted")  # the lock is free again, and was not leaked by the refusal
    assert org_count(database) == before + 1


def test_the_inline_writer_refuses_while_another_process_writes(db_url: str, database: Database) -> None:
    other = Database.from_url(db_url)  # its own queue: only the file lock is shared, as between processes
    try:
        with write_lock_held(other), pytest.raises(WriterBusy):
            add_org(database, "refused")
        add_org(database, "accepted")
    finally:
        other.dispose()


def writes_from_another_thread_within(database: Database, seconds: float) -> bool:
    """Whether a plain writer in another thread gets the write lock within ``seconds``."""
    done = threading.Event()

    def write() -> None:
        with database.writer.begin() as session:
            session.execute(text("SELECT 1"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done.wait(seconds)


def test_the_inline_writer_keeps_its_connection_and_lets_go_of_the_lock_after_each_transaction(
    database: Database,
) -> None:
    assert database.inline_writer is not None
    seen = set()
    for n in range(3):
        with database.inline_writer.begin() as session:
            seen.add(id(session.connection().connection.driver_connection))
            session.add(Organization(name=f"kept{n}", slug=f"kept{n}"))
        assert writes_from_another_thread_within(database, 5)  # committed, and the lock is free
    assert len(seen) == 1
    before = org_count(database)
    with pytest.raises(RuntimeError), database.inline_writer.begin() as session:
        session.add(Organization(name="lost", slug="lost"))
        session.flush()
        raise RuntimeError("the request failed half-way")
    assert org_count(database) == before  # rolled back
    assert writes_from_another_thread_within(database, 5)  # and the lock was given back


def test_the_inline_writer_does_not_jump_ahead_of_a_waiting_thread(database: Database) -> None:
    """The moment a writer lets go, a thread already waiting goes first, not an inline write."""
    order: list[str] = []
    waiter_blocked = threading.Event()

    def wait_then_write() -> None:
        waiter_blocked.set()
        with database.writer.begin() as session:
            session.execute(text("SELECT 1"))
            order.append("waiting thread")

    with database.writer.begin() as session:
        session.execute(text("SELECT 1"))
        waiter = threading.Thread(target=wait_then_write)
        waiter.start()
        assert waiter_blocked.wait(10)
        time.sleep(0.2)  # the waiter is now blocked on the lock
    # Released just now, and this thread still runs: the lock is free but someone waits for it.
    try:
        add_org(database, "early")
        order.append("inline")
    except WriterBusy:
        order.append("inline refused")
    waiter.join(10)
    assert order[0] != "inline", order
    assert "waiting thread" in order


def test_a_take_arriving_while_the_lock_is_held_waits_and_succeeds(
    server: LiveServer, database: Database, tenant: Tenant
) -> None:
    project = tenant.project()
    tenant.add_tasks(project["id"], [{"data": {"text": "one"}}, {"data": {"text": "two"}}])
    worker = tenant.annotators[0]
    answers: list[httpx.Response] = []
    with write_lock_held(database):
        asking = threading.Thread(target=lambda: answers.append(worker.post(f"/projects/{project['id']}/assignments")))
        asking.start()
        time.sleep(0.3)
        assert answers == []  # waiting for the lock, without holding up the event loop
        # The event loop is not blocked meanwhile: a read is answered at once.
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    asking.join(10)
    assert answers[0].status_code == 201, answers[0].text
    submitted = worker.post(f"/assignments/{answers[0].json()['id']}/submit", json={"answer": {"label": "positive"}})
    assert submitted.status_code == 201, submitted.text


def test_a_free_lock_with_a_thread_waiting_for_it_is_not_taken_inline(tmp_path: Path) -> None:
    """The window the test above can only hope to hit, set up directly."""
    queue = _WriterQueue(str(tmp_path / "queue.db"))
    queue._waiting = 1  # a thread was woken by the last release and is about to take the lock
    info: dict[str, object] = {}
    assert not queue.try_acquire(info) and info == {}
    queue._waiting = 0
    assert queue.try_acquire(info)
    queue.release(info)
    assert info == {}


def test_a_bulk_writer_yields_to_a_writer_of_another_process(db_url: str, database: Database) -> None:
    """An import process's chunks (``bulk_writer``) let the server's writers go first, as the
    server's own threads do: a writer that finds the lock held by another process marks the
    lock file, and the other process's bulk writer waits while the mark is fresh."""
    importer = Database.from_url(db_url)  # its own queue: only the file lock is shared, as between processes
    try:
        with importer.bulk_writer.begin() as session:  # its connection made, as in a running import
            session.execute(text("SELECT 1"))
        time.sleep(0.1)  # the lock file, made just now, is older than the window
        with write_lock_held(importer), pytest.raises(WriterBusy):
            add_org(database, "refused")  # the server's writer found the lock held by the importer
        # The importer's next chunk finds the mark fresh and waits for it to be a window old.
        started = time.monotonic()
        with importer.bulk_writer.begin() as session:
            session.execute(text("SELECT 1"))
        assert time.monotonic() - started >= 0.02
        # With no writer waiting since, a chunk starts at once.
        time.sleep(0.1)
        started = time.monotonic()
        with importer.bulk_writer.begin() as session:
            session.execute(text("SELECT 1"))
        assert time.monotonic() - started < 0.015
    finally:
        importer.dispose()
