"""``QISTAS_POSTGRES_INLINE_LOOP``: on PostgreSQL, the loop's transactions run on the server's
event loop (by default with the database on this machine); one that meets a row lock held
longer than a few milliseconds, or whose statement runs long, is rolled back and run again in
a thread, and the process goes on answering meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text

from qistas.api.app import app_from_environment, create_app
from qistas.config import Settings
from qistas.db.dialect import database_on_this_machine
from qistas.db.engine import Database
from qistas.db.unit_of_work import INLINE_BEGIN, write_now
from qistas.serving import CONNECTIONS_FILE, SERVE_WORKERS, usable_cores
from tests.api.helpers import scrape, submit, take, value
from tests.conftest import BACKEND, SECRET, LiveServer
from tests.factories import Tenant, make_tenant

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the setting is PostgreSQL's")
RERUN = "qistas_inline_transactions_rerun_total"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, postgres_inline_loop="on")


@pytest.fixture
def inline_tenant(server: LiveServer, database: Database) -> Iterator[Tenant]:
    with make_tenant(database, server.url, "acme") as found:
        yield found


def test_the_loop_runs_on_the_event_loop(server: LiveServer, inline_tenant: Tenant, database: Database) -> None:
    assert server.app.state.db.inline_postgres is not None
    inline = database.with_inline_postgres(INLINE_BEGIN)

    async def on_the_loop() -> tuple[int, int]:
        return threading.get_ident(), await write_now(inline, lambda _session: threading.get_ident())

    try:
        loop_thread, work_thread = asyncio.run(on_the_loop())
    finally:
        assert inline.inline_postgres is not None
        inline.inline_postgres.close()
    assert work_thread == loop_thread
    pid = inline_tenant.project(redundancy={"min": 2, "max": 2})["id"]
    inline_tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(3)])
    for worker in inline_tenant.annotators[:2]:
        for _ in range(3):
            submit(worker, take(worker, pid)["id"], {"label": "positive"})
    stats = inline_tenant.owner.get(f"/projects/{pid}/stats").json()
    assert stats["tasks"]["completed"] == 3 and stats["annotations"] == 6, stats


def test_a_long_row_lock_is_waited_for_in_a_thread(server: LiveServer, inline_tenant: Tenant,
                                                   database: Database) -> None:
    """The submit meets its task's row locked for 1 s: it is answered once the lock goes, and
    the server answers other requests meanwhile (on the event loop, it would not)."""
    pid = inline_tenant.project(redundancy={"min": 1, "max": 1})["id"]
    inline_tenant.add_tasks(pid, [{"data": {"text": "held"}}])
    worker = inline_tenant.annotators[0]
    lease = take(worker, pid)
    locked = threading.Event()

    def hold() -> None:
        with database.writer.begin() as session:
            session.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": lease["task"]["id"]})
            locked.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    before = scrape(server.url)
    # 0.15 s: the submit is waiting on the row by now
    status, seconds = _submit_while_probing(server, worker, lease, after=0.15, held="a transaction waiting on a lock")
    holder.join()
    assert status == 201
    assert seconds >= 0.7  # it did wait for the lock
    after = scrape(server.url)
    assert value(after, RERUN, reason="lock") - value(before, RERUN, reason="lock") == 1


def test_a_long_statement_is_run_again_in_a_thread(server: LiveServer, inline_tenant: Tenant,
                                                  database: Database) -> None:
    """The submit's INSERT takes 1.5 s (the database stalled): canceled at the statement timeout,
    it is run again in a thread and answered once, and the server answers other requests
    meanwhile (held on the event loop, it would not)."""
    pid = inline_tenant.project(redundancy={"min": 1, "max": 1})["id"]
    inline_tenant.add_tasks(pid, [{"data": {"text": "slow"}}])
    worker = inline_tenant.annotators[0]
    lease = take(worker, pid)
    with database.writer.begin() as session:
        session.execute(text("CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$"))
        session.execute(text("CREATE TRIGGER stall BEFORE INSERT ON annotations FOR EACH ROW EXECUTE FUNCTION stall()"))
    before = scrape(server.url)
    # 0.4 s: past the statement timeout, the submit runs in a thread by now
    status, seconds = _submit_while_probing(server, worker, lease, after=0.4, held="a long statement")
    assert status == 201
    assert seconds >= 1.5  # the statement did run whole, in the thread
    after = scrape(server.url)
    assert value(after, RERUN, reason="statement") - value(before, RERUN, reason="statement") == 1
    assert value(after, RERUN, reason="lock") == value(before, RERUN, reason="lock")
    stats = inline_tenant.owner.get(f"/projects/{pid}/stats").json()
    assert stats["annotations"] == 1 and stats["tasks"]["completed"] == 1, stats


def _submit_while_probing(server: LiveServer, worker: httpx.Client, lease: dict[str, Any], *, after: float,
                          held: str) -> tuple[int, float]:
    """Submit the lease in a thread; ``after`` seconds into it, ``/healthz`` must answer within
    half a second (the event loop is not ``held`` by the submit). The submit's status and time."""
    answered: dict[str, float] = {}

    def answer() -> None:
        began = time.monotonic()
        answered["status"] = worker.post(f"/assignments/{lease['id']}/submit",
                                         json={"answer": {"label": "positive"}}).status_code
        answered["seconds"] = time.monotonic() - began

    submitting = threading.Thread(target=answer)
    submitting.start()
    time.sleep(after)
    with httpx.Client(base_url=server.url) as probe:
        began = time.monotonic()
        assert probe.get("/healthz").status_code == 200
        assert time.monotonic() - began < 0.5, f"the event loop was held by {held}"
    submitting.join()
    return int(answered["status"]), answered["seconds"]


@pytest.mark.parametrize(("choice", "processes", "inline"), [
    ("auto", "cores", True), ("auto", "fewer", False), ("off", "cores", False), ("on", "fewer", True),
])
def test_auto_runs_the_loop_inline_for_the_database_on_this_machine(db_url: str, tmp_path: Path, database: Database,
                                                                   choice: str, processes: str, inline: bool) -> None:
    """``auto``: the loop on the event loop where the database is on this machine and the server
    runs as many processes as the machine has cores; with fewer, in the thread pool."""
    if not database_on_this_machine(make_url(db_url)):
        pytest.skip("the tests' database is on another machine (make test starts its own on this one)")
    if processes == "fewer" and usable_cores() == 1:
        pytest.skip("one core: one process is as many as the cores")
    count = usable_cores() if processes == "cores" else usable_cores() - 1
    app = create_app(Settings(home=tmp_path, database_url=db_url, secret_key=SECRET,
                              postgres_inline_loop=choice), database, processes=count)  # type: ignore[arg-type]
    assert (app.state.db.inline_postgres is not None) == inline


def test_a_worker_of_qistas_serve_counts_its_processes(db_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker processes of ``qistas serve --workers N`` build the app with N processes (read
    from what ``qistas serve`` sets for them): as many as the cores, the loop is inline."""
    if not database_on_this_machine(make_url(db_url)):
        pytest.skip("the tests' database is on another machine (make test starts its own on this one)")
    monkeypatch.setenv("QISTAS_HOME", str(tmp_path))
    monkeypatch.setenv("QISTAS_DATABASE_URL", db_url)
    monkeypatch.setenv("QISTAS_SECRET_KEY", SECRET)
    monkeypatch.delenv("QISTAS_POSTGRES_INLINE_LOOP", raising=False)
    monkeypatch.delenv(CONNECTIONS_FILE, raising=False)
    for processes, inline in ((usable_cores(), True), (None, usable_cores() == 1)):
        if processes is None:
            monkeypatch.delenv(SERVE_WORKERS, raising=False)  # one process: ``qistas serve`` unset
        else:
            monkeypatch.setenv(SERVE_WORKERS, str(processes))
        app = app_from_environment()
        try:
            assert (app.state.db.inline_postgres is not None) == inline
        finally:
            app.state.db.dispose()


def test_the_loop_keeps_one_connection_and_replaces_it_when_it_dies(server: LiveServer, inline_tenant: Tenant,
                                                                     database: Database) -> None:
    """The loop's transactions run on one connection the event loop keeps; killed between two
    requests (a database restart, a proxy's idle cut), the next request is answered all the
    same, on a new connection, and stores its answer once."""
    pid = inline_tenant.project(redundancy={"min": 1, "max": 1})["id"]
    inline_tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(4)])
    worker = inline_tenant.annotators[0]
    submit(worker, take(worker, pid)["id"], {"label": "positive"})
    kept = server.app.state.db.inline_postgres
    assert kept is not None and len(kept._kept) == 1
    connection = kept._kept[0]
    for _ in range(2):  # more requests, the same connection
        submit(worker, take(worker, pid)["id"], {"label": "positive"})
    assert kept._kept == [connection]
    with database.engine.connect() as admin:  # every other backend of the database goes, the kept one with them
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    before = value(scrape(server.url), RERUN, reason="connection")
    lease = take(worker, pid)  # finds the kept connection dead, and runs in a thread
    response = worker.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "negative"}})
    assert response.status_code == 201, response.text
    assert value(scrape(server.url), RERUN, reason="connection") - before == 1
    assert len(kept._kept) == 1 and kept._kept[0] is not connection
    stats = inline_tenant.owner.get(f"/projects/{pid}/stats").json()
    assert stats["annotations"] == 4 and stats["tasks"]["completed"] == 4, stats
