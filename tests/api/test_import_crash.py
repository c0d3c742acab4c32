"""A server killed in the middle of an import (``kill -9``): the next server finishes it the
way the moment of the crash decides. Before the commit, nothing was imported; after it,
everything is."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from qistas.db.engine import Database
from qistas.db.models import StagedTask, Task, TaskImport
from qistas.db.types import utcnow
from qistas.domain import staged_imports
from tests.api.helpers import children_named, process_alive
from tests.api.test_engine_processes import wait_until_up
from tests.conftest import SECRET
from tests.factories import make_tenant
from tests.throwaway_postgres import free_port

ROWS = 60_000


@contextmanager
def server(db_url: str, home: Path, name: str, import_processes: int = 0,
           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``qistas serve``; by default it checks imports in its own threads, where the moment a
    kill lands is the moment the import stops."""
    env = {**os.environ, "QISTAS_DATABASE_URL": db_url, "QISTAS_HOME": str(home), "QISTAS_SECRET_KEY": SECRET,
           "QISTAS_WORKER_POLL_SECONDS": "0.1", "QISTAS_IMPORT_PROCESSES": str(import_processes)}
    port = free_port()
    with open(home / f"{name}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from qistas.cli import main; main()", "serve", "--port",
                                 str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, home / f"{name}.log")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def _state(database: Database) -> tuple[str | None, int]:
    with database.reader() as session:
        state = session.scalar(select(TaskImport.state).limit(1))
        staged = session.scalar(select(func.count()).select_from(StagedTask)) or 0
    return state, int(staged)


def _tasks(database: Database, project_id: int) -> int:
    with database.reader() as session:
        return int(session.scalar(select(func.count()).select_from(Task).where(Task.project_id == project_id)) or 0)


@pytest.mark.slow
@pytest.mark.parametrize(("kill_when", "expected"), [("staging", 0), ("committed", ROWS)])
def test_an_import_killed_mid_way_is_finished_by_the_next_server(
    db_url: str, database: Database, tmp_path: Path, kill_when: str, expected: int
) -> None:
    body = "\n".join(f'{{"data": {{"text": "row {n}"}}, "unique_id": "k{n}"}}' for n in range(ROWS)).encode()
    with server(db_url, tmp_path, "first") as (url, proc), make_tenant(database, url, "acme") as tenant:
        project_id = tenant.project()["id"]
        sent = threading.Thread(target=lambda: _send(tenant.owner, project_id, body), daemon=True)
        sent.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state, staged = _state(database)
            if state == kill_when and staged > 0:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        else:
            pytest.fail(f"the import never reached {kill_when}")
        proc.wait(timeout=20)
        sent.join(timeout=30)
    assert _state(database)[0] == kill_when  # left behind by the dead process
    left = _tasks(database, project_id)
    assert left == 0 if kill_when == "staging" else 0 <= left < ROWS
    tasks, unique = _recovered_by_the_next_server(db_url, database, tmp_path, project_id)
    assert tasks == unique == expected  # none twice


@pytest.mark.slow
def test_a_server_killed_during_an_import_in_its_import_process_leaves_all_or_nothing(
    db_url: str, database: Database, tmp_path: Path,
) -> None:
    """The import process ends with its server (within a second), and the next server's
    recovery finishes or undoes what it left: every row once, or none."""
    body = "\n".join(f'{{"data": {{"text": "row {n}"}}, "unique_id": "k{n}"}}' for n in range(ROWS)).encode()
    with server(db_url, tmp_path, "first", import_processes=1) as (url, proc), \
            make_tenant(database, url, "acme") as tenant:
        project_id = tenant.project()["id"]
        sent = threading.Thread(target=lambda: _send(tenant.owner, project_id, body), daemon=True)
        sent.start()
        deadline = time.monotonic() + 120
        while _state(database)[1] == 0:  # the import process is staging rows
            assert time.monotonic() < deadline, "the import never staged a row"
            time.sleep(0.005)
        (importer,) = children_named(proc.pid, "qistas-import")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 2
        while process_alive(importer):
            assert time.monotonic() < deadline, "the import process outlived its server"
            time.sleep(0.02)
        sent.join(timeout=30)
    tasks, unique = _recovered_by_the_next_server(db_url, database, tmp_path, project_id)
    assert tasks == unique and tasks in (0, ROWS)  # all or nothing, none twice


def _recovered_by_the_next_server(db_url: str, database: Database, tmp_path: Path,
                                  project_id: int) -> tuple[int, int]:
    """Time passes (the import's heartbeat stops moving), the next server's recovery finishes or
    undoes what was left: the project's tasks and distinct unique ids then."""
    with database.writer.begin() as session:
        session.execute(update(TaskImport).values(heartbeat_at=utcnow() - staged_imports.STALE_AFTER * 2))
    with server(db_url, tmp_path, "second"):
        deadline = time.monotonic() + 60
        while _state(database) != (None, 0):
            assert time.monotonic() < deadline, _state(database)
            time.sleep(0.1)
    with database.reader() as session:
        unique = session.scalar(select(func.count(func.distinct(Task.unique_id))).where(Task.project_id == project_id))
    return _tasks(database, project_id), int(unique or 0)


def _send(client: httpx.Client, project_id: int, body: bytes) -> None:
    with contextlib.suppress(httpx.TransportError):  # the server is killed under it
        client.post(f"/projects/{project_id}/tasks", content=body, headers={"content-type": "application/x-ndjson"},
                    timeout=120)
