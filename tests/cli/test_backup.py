"""Backups taken while annotators work hold every acknowledged answer, and restore cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from qistas.db.engine import Database
from qistas.db.models import Annotation
from tests.cli.test_cli import run
from tests.conftest import BACKEND, LiveServer
from tests.factories import Tenant, client_for, new_user

pytestmark = [pytest.mark.sqlite_only, pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's backup")]


def test_backup_while_eight_annotators_answer_then_restore(server: LiveServer, tenant: Tenant, db_url: str,
                                                           database: Database, tmp_path: Path) -> None:
    pid = tenant.project(redundancy={"min": 1, "max": 1})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(4000)])
    workers = [client_for(server.url, new_user(database, email=f"b{n}@crowd.test", role="annotator")[1])
               for n in range(8)]
    acknowledged: list[tuple[float, int]] = []  # (when the 201 came, annotation id)
    lock, stop = threading.Lock(), threading.Event()

    def annotate(client: httpx.Client) -> None:
        while not stop.is_set():
            taken = client.post(f"/projects/{pid}/assignments")
            if taken.status_code != 201:
                return
            done = client.post(f"/assignments/{taken.json()['id']}/submit", json={"answer": {"label": "positive"}})
            assert done.status_code == 201, done.text
            with lock:
                acknowledged.append((time.monotonic(), done.json()["id"]))

    threads = [threading.Thread(target=annotate, args=(c,)) for c in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) <= 50 and time.monotonic() < deadline:  # well under way, however loaded the machine
        time.sleep(0.05)
    began = time.monotonic()
    copy = tmp_path / "backup.db"
    made = run(["backup", str(copy)], tmp_path, db_url)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    for client in workers:
        client.close()
    assert made.exit_code == 0, made.output
    before = {answer for at, answer in acknowledged if at < began}
    assert len(before) > 50 and len(acknowledged) > len(before)  # answers kept coming during the backup

    restored_url = f"sqlite:///{tmp_path / 'restored' / 'qistas.db'}"
    done = run(["restore", str(copy), "--yes"], tmp_path, restored_url)
    assert done.exit_code == 0, done.output
    engine = create_engine(restored_url)
    try:
        with engine.connect() as conn:
            stored = set(conn.scalars(select(Annotation.id)))
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.scalar(select(func.count()).select_from(Annotation)) == len(stored)
    finally:
        engine.dispose()
    assert before <= stored  # every answer acknowledged before the backup began is in it


def test_backup_refuses_an_existing_file_and_postgres(tmp_path: Path, db_url: str) -> None:
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"")
    refused = run(["backup", str(taken)], tmp_path, db_url)
    assert refused.exit_code == 1 and "exists" in refused.output
    postgres = run(["backup", str(tmp_path / "x.db")], tmp_path, "postgresql://u@127.0.0.1/x")
    assert postgres.exit_code == 1 and "pg_dump" in postgres.output
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    wrong = run(["restore", str(not_a_backup), "--yes"], tmp_path, db_url)
    assert wrong.exit_code == 1 and "not a Qistas backup" in wrong.output
