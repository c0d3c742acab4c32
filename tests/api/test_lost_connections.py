"""PostgreSQL connections cut under the server (a database restart, a proxy's or firewall's
idle timeout): pooled connections are pinged only after sitting idle, and a transaction that
finds its connection gone before its commit runs again, once, on a new one. Requests are
answered all the same and nothing is stored twice; a connection in steady use costs no ping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from qistas.config import Settings
from qistas.db import engine as engine_module
from qistas.db.engine import Database
from qistas.db.unit_of_work import read, write
from tests.api.helpers import submit, take
from tests.conftest import BACKEND, SECRET, LiveServer
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="an SQLite file has no connection to lose")


def cut_every_connection(database: Database) -> None:
    """Every backend of the database ends, as in a restart (asked on a connection of its own)."""
    admin = create_engine(database.engine.url, poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The server's loop in its thread pool whatever the environment says."""
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, postgres_inline_loop="off")


@pytest.fixture
def pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pings the engine sends (each an empty statement, a round trip)."""
    sent: list[int] = []
    dialect = database.engine.dialect
    ping: Callable[[Any], bool] = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    yield sent


def test_a_connection_in_use_is_not_pinged_and_a_cut_one_is_retried(database: Database,
                                                                        pings: list[int]) -> None:
    runs: list[int] = []

    def insert(session: Any) -> int:
        runs.append(1)
        return int(session.execute(text("INSERT INTO organizations (name, slug, created_at) "
                                        "VALUES ('o', :slug, now()) RETURNING id"),
                                   {"slug": f"cut-{len(runs)}-{count(session)}"}).scalar_one())

    def count(session: Any) -> int:
        return int(session.execute(text("SELECT count(*) FROM organizations WHERE slug LIKE 'cut-%'")).scalar_one())

    write(database, insert)
    assert read(database, count) == 1
    assert pings == []  # checked out twice, a moment apart: no ping
    cut_every_connection(database)
    runs.clear()
    write(database, insert)  # its connection was cut: it fails at the first statement, runs again
    assert len(runs) == 2
    cut_every_connection(database)
    assert read(database, count) == 2  # a read likewise
    assert pings == []


def test_a_connection_idle_for_a_while_is_pinged_and_replaced_if_cut(database: Database, pings: list[int],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
    with database.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    cut_every_connection(database)
    with database.engine.connect() as connection:  # no retry here: the check-out's ping found it dead
        assert connection.execute(text("SELECT 2")).scalar_one() == 2
    assert len(pings) >= 1


def test_without_the_retry_the_cut_connection_fails(database: Database, pings: list[int]) -> None:
    """What the retry saves: the same cut, a transaction run on the pool directly, fails."""
    with database.writer.begin() as session:
        session.execute(text("SELECT 1"))
    cut_every_connection(database)
    with pytest.raises(DBAPIError) as failed, database.writer.begin() as session:
        session.execute(text("SELECT 1"))
    assert failed.value.connection_invalidated


def test_the_loop_goes_on_through_a_cut(server: LiveServer, tenant: Tenant, database: Database) -> None:
    """Through the server's thread pool (the path for a database on another machine, pinned by
    `settings` above): every backend is cut between a take and its submit; the submit is
    answered and its answer stored once, and the loop goes on."""
    assert server.app.state.db.inline_postgres is None
    pid = tenant.project(redundancy={"min": 1, "max": 1})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(3)])
    worker = tenant.annotators[0]
    submit(worker, take(worker, pid)["id"], {"label": "positive"})
    lease = take(worker, pid)
    cut_every_connection(database)
    response = worker.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "negative"}})
    assert response.status_code == 201, response.text
    cut_every_connection(database)
    submit(worker, take(worker, pid)["id"], {"label": "positive"})
    stats = tenant.owner.get(f"/projects/{pid}/stats").json()
    assert stats["annotations"] == 3 and stats["tasks"]["completed"] == 3, stats
