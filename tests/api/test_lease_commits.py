"""``QISTAS_LEASE_SYNCHRONOUS_COMMIT``: on PostgreSQL, the loop's transactions that only hand
out, extend or give back a lease commit with the ``synchronous_commit`` it names; a submit, and a
take or skip that ends an exam, commit as the database's commits do. The setting lasts for its
transaction only (``SET LOCAL``), on the event loop's kept connection and on pooled ones."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.unit_of_work import INLINE_BEGIN, commit_waits, write_now
from tests.api.helpers import submit, take
from tests.api.test_exams import GOLD, exam_project, put_exam, start
from tests.conftest import BACKEND, SECRET, LiveServer
from tests.factories import Tenant, make_tenant

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="synchronous_commit is PostgreSQL's")


def test_a_bad_value_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="lease_synchronous_commit"):
        Settings(home=tmp_path, lease_synchronous_commit="sometimes")  # type: ignore[arg-type]
    assert Settings(home=tmp_path).lease_synchronous_commit is None
    spelled = {"false": "off", "No": "off", "0": "off", "true": "on", "remote_write": "remote_write", " ": None}
    for word, meant in spelled.items():  # PostgreSQL's own spellings; empty is unset
        assert Settings(home=tmp_path, lease_synchronous_commit=word).lease_synchronous_commit == meant, word


def _shown(session: Session) -> str:
    return str(session.execute(text("SHOW synchronous_commit")).scalar_one())


def _waits_anyway(session: Session) -> str:
    commit_waits(session)
    return _shown(session)


@pytest.mark.parametrize("path", ["event loop", "thread pool"])
def test_the_value_lasts_for_its_transaction(database: Database, path: str) -> None:
    db = database.with_inline_postgres(INLINE_BEGIN) if path == "event loop" else database

    async def in_turn() -> list[str]:
        return [await write_now(db, _shown),
                await write_now(db, _shown, synchronous_commit="off"),
                await write_now(db, _shown),  # the same kept connection on the event loop
                await write_now(db, _waits_anyway, synchronous_commit="off"),
                await write_now(db, _shown, synchronous_commit="local")]

    try:
        own, lease, after, waited, local = asyncio.run(in_turn())
    finally:
        if db.inline_postgres is not None:
            db.inline_postgres.close()
    assert own == after == waited != "off"
    assert (lease, local) == ("off", "local")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, postgres_inline_loop="on",
                    lease_synchronous_commit="off")


class LoopCommits:
    """What each commit on the server's event loop (the loop's transactions, with the inline
    loop on) was set to wait for, read on its connection just before it commits."""

    def __init__(self, database: Database, server: LiveServer) -> None:
        self.seen: list[str] = []
        self._database, self._loop = database, server.thread.ident

    def __enter__(self) -> LoopCommits:
        event.listen(self._database.engine, "commit", self._on_commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._database.engine, "commit", self._on_commit)

    def _on_commit(self, connection: Connection) -> None:
        if threading.get_ident() == self._loop:
            shown = connection.connection.driver_connection.execute("SHOW synchronous_commit").fetchone()
            self.seen.append(shown[0])

    def since(self, mark: int) -> list[str]:
        return self.seen[mark:]


@pytest.fixture
def commits(server: LiveServer, database: Database) -> Iterator[LoopCommits]:
    assert server.app.state.db.inline_postgres is not None
    with LoopCommits(database, server) as seen:
        yield seen


@pytest.fixture
def lease_tenant(server: LiveServer, database: Database) -> Iterator[Tenant]:
    with make_tenant(database, server.url, "acme") as found:
        yield found


def _own_value(database: Database) -> str:
    with database.reader() as session:
        return _shown(session)


def test_takes_renewals_and_skips_do_not_wait_answers_do(lease_tenant: Tenant, commits: LoopCommits,
                                                         database: Database) -> None:
    own = _own_value(database)
    assert own != "off"
    pid = lease_tenant.project(redundancy={"min": 1, "max": 1})["id"]
    lease_tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(2)])
    worker = lease_tenant.annotators[0]

    def step(call: Any) -> list[str]:
        mark = len(commits.seen)
        call()
        return commits.since(mark)

    lease = take(worker, pid)
    assert step(lambda: worker.post(f"/assignments/{lease['id']}/renew").raise_for_status()) == ["off"]
    assert step(lambda: worker.post(f"/assignments/{lease['id']}/skip").raise_for_status()) == ["off"]
    assert step(lambda: lease.update(take(worker, pid))) == ["off"]
    assert step(lambda: submit(worker, lease["id"], {"label": "positive"})) == [own]
    stats = lease_tenant.owner.get(f"/projects/{pid}/stats").json()
    assert stats["annotations"] == 1, stats


def test_the_skip_or_take_that_ends_an_exam_waits(lease_tenant: Tenant, commits: LoopCommits,
                                                  database: Database) -> None:
    """An exam ends with its last answer (a submit), its last question skipped, or, when that
    question's lease ran out, with the next take: the result is more than a lease."""
    own = _own_value(database)
    pid = exam_project(lease_tenant, "Entry exam")
    assert put_exam(lease_tenant.owner, pid).status_code == 200
    skipper, sleeper = lease_tenant.annotators[:2]
    last: dict[str, Any] = {}
    for worker in (skipper, sleeper):
        start(worker, pid)
        for question in range(4):
            mark = len(commits.seen)
            last[worker.headers["Authorization"]] = lease = take(worker, pid)
            assert commits.since(mark) == ["off"]  # a question handed out: a lease
            if question < 3:
                submit(worker, lease["id"], {"label": GOLD})
    mark = len(commits.seen)
    assert skipper.post(f"/assignments/{last[skipper.headers['Authorization']]['id']}/skip").status_code == 204
    assert commits.since(mark) == [own]
    with database.writer.begin() as session:  # the last question's lease runs out
        session.execute(text("UPDATE assignments SET expires_at = created_at WHERE id = :id"),
                        {"id": last[sleeper.headers["Authorization"]]["id"]})
    mark = len(commits.seen)
    assert sleeper.post(f"/projects/{pid}/assignments").status_code == 204
    assert commits.since(mark) == [own]
    attempts = lease_tenant.owner.get(f"/projects/{pid}/exam/attempts").json()["items"]
    assert sorted((a["status"], a["score"]) for a in attempts) == [("passed", 75.0)] * 2, attempts
