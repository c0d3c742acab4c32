"""Export jobs: queued, run by the server's background worker, downloaded when done; a job
left by a crashed worker is taken over and never served half-written."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import ExportJob
from qistas.db.types import utcnow
from qistas.domain.results import ExportOptions
from tests.factories import Tenant, label_everything


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_poll_seconds": 0.05, "cursor_settle_seconds": 0})


def _wait(client: httpx.Client, job_id: int, status: str = "done", timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/exports/{job_id}").json()
        if job["status"] == status:
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"export {job_id} is {job['status']}, not {status}: {job}")


def _project(tenant: Tenant, n: int = 30) -> int:
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(n)])
    label_everything(tenant, pid, {"label": "positive"})
    tenant.add_tasks(pid, [{"data": {"text": "pending"}}])
    return pid


@pytest.mark.usefixtures("common_umask")
def test_a_job_runs_in_the_background_and_downloads(tenant: Tenant, settings: Settings) -> None:
    pid = _project(tenant)
    created = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "parquet", "completed": True})
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "queued" and created.json()["file"] is None
    job = _wait(tenant.owner, created.json()["id"])
    assert job["rows_done"] == job["rows_total"] == 30 and job["progress"] == 1.0
    assert job["cursor"] and job["file"] == f"/api/v1/exports/{job['id']}/file"
    download = tenant.owner.get(f"/exports/{job['id']}/file")
    assert download.status_code == 200 and len(download.content) == job["size_bytes"]
    table = pq.read_table(io.BytesIO(download.content)).to_pylist()
    assert sorted(r["unique_id"] for r in table) == sorted(f"u{i}" for i in range(30))
    # The file is in the store every server shares (here the media folder), nothing partial
    # is left in the server's scratch folder.
    assert list((settings.home / "exports").iterdir()) == []
    stored = settings.media_folder / "exports"
    files = [p.name for p in stored.iterdir()]
    assert files == [f"{job['id']}-1-project-{pid}-export-{job['id']}.parquet"]
    assert stat.S_IMODE(stored.stat().st_mode) == 0o700  # private: customer data
    assert stat.S_IMODE((stored / files[0]).stat().st_mode) == 0o600
    assert 'filename="project-' in download.headers["content-disposition"]
    listed = tenant.owner.get(f"/projects/{pid}/exports").json()
    assert [j["id"] for j in listed] == [job["id"]]

    # The cursor of a job continues where it ended.
    later = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl", "since": job["cursor"]}).json()
    assert _wait(tenant.owner, later["id"])["rows_total"] == 0
    assert tenant.owner.get(f"/exports/{later['id']}/file").content == b""


def test_a_crashed_job_is_taken_over_and_never_served_half_written(
    tenant: Tenant, database: Database, settings: Settings
) -> None:
    pid = _project(tenant, n=5)
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "csv"}).json()["id"]
    _wait(tenant.owner, job_id)
    # Another process took this job, wrote half a file and died (its lease is still running).
    with database.writer.begin() as session:
        job = ExportJob(project_id=pid, format="jsonl", options=ExportOptions().as_dict(), status="running",
                        attempts=1, rows_done=0, lease_until=utcnow() + timedelta(hours=1))
        session.add(job)
        session.flush()
        crashed = job.id
    (settings.home / "exports" / f".{crashed}-dead.partial").write_text('{"half": ')
    (settings.home / "exports" / f".{crashed}-dead.work" / "hf-x").mkdir(parents=True)  # an hf export's folder
    time.sleep(0.3)
    refused = tenant.owner.get(f"/exports/{crashed}/file")
    assert refused.status_code == 409 and refused.json()["error"]["details"] == {"status": "running"}
    with database.writer.begin() as session:
        job = session.get(ExportJob, crashed)
        assert job is not None
        job.lease_until = utcnow() - timedelta(seconds=1)  # its lease ran out: the worker is gone
    done = _wait(tenant.owner, crashed)
    rows = [json.loads(x) for x in tenant.owner.get(f"/exports/{crashed}/file").text.splitlines()]
    assert len(rows) == 6 and done["rows_done"] == 6
    assert not list((settings.home / "exports").glob(".*"))  # the dead attempt's half file and folder are gone


def test_a_job_that_keeps_crashing_fails(tenant: Tenant, database: Database) -> None:
    pid = _project(tenant, n=1)
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()["id"]
    _wait(tenant.owner, job_id)
    with database.writer.begin() as session:
        job = session.get(ExportJob, job_id)
        assert job is not None
        job.status, job.attempts, job.lease_until = "running", 3, utcnow() - timedelta(seconds=1)
    failed = _wait(tenant.owner, job_id, status="failed")
    assert "gave up" in failed["error"]
    assert tenant.owner.get(f"/exports/{job_id}/file").status_code == 409


def test_jobs_belong_to_their_tenant_and_validate(tenant: Tenant, rival: Tenant, tmp_path: Path) -> None:
    pid = _project(tenant, n=1)
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()["id"]
    _wait(tenant.owner, job_id)
    for path in (f"/exports/{job_id}", f"/exports/{job_id}/file", f"/projects/{pid}/exports"):
        answer = rival.owner.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    assert rival.owner.post(f"/projects/{pid}/exports", json={}).status_code == 404
    for body, field in (({"format": "coco"}, "format"), ({"format": "zip"}, "format"),
                        ({"since": "x"}, "since"), ({"min_confidence": 3}, "min_confidence"),
                        ({"batch": "missing"}, "batch")):
        answer = tenant.owner.post(f"/projects/{pid}/exports", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in json.dumps(answer.json()["error"]["details"])


def test_old_export_files_expire(tenant: Tenant, database: Database, settings: Settings) -> None:
    from qistas.workers.exporter import Exporter

    pid = _project(tenant, n=1)
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()["id"]
    job = _wait(tenant.owner, job_id)
    assert tenant.owner.get(f"/exports/{job_id}/file").status_code == 200
    exporter = Exporter(settings, database)
    assert exporter.purge(now=utcnow()) == 0
    assert exporter.purge(now=utcnow() + timedelta(hours=settings.export_keep_hours + 1)) == 1
    assert list((settings.media_folder / "exports").iterdir()) == []
    assert tenant.owner.get(f"/exports/{job_id}").json()["status"] == "expired"
    gone = tenant.owner.get(f"/exports/{job_id}/file")
    assert gone.status_code == 409 and gone.json()["error"]["details"] == {"status": "expired"}
    assert job["size_bytes"] > 0


def test_a_process_killed_in_an_hf_export_leaves_nothing_behind_for_long(
    database: Database, settings: Settings
) -> None:
    """A process killed while it streams an ``hf`` export (its rows written to a folder, the
    tar not yet sent) leaves that folder; the purge deletes it once nothing has written to it
    for a day, and leaves a live one alone."""
    from qistas.workers.exporter import ORPHAN_AGE, Exporter

    folder = settings.home / "exports"
    script = (
        "import os, signal, sys; from pathlib import Path; from qistas.domain import exportformats\n"
        "tables = lambda: iter([])\n"
        "stream = exportformats.hf(tables, Path(sys.argv[1]), 'project-1')\n"
        "next(stream)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    left = [p.name for p in folder.iterdir()]
    assert len(left) == 1 and left[0].startswith("hf-")
    (folder / ".7-live.work").mkdir()  # a job running right now
    exporter = Exporter(settings, database)
    exporter.purge(now=utcnow())
    assert len(list(folder.iterdir())) == 2  # young: perhaps still streaming
    dead = folder / left[0]
    then = time.time() - (ORPHAN_AGE + timedelta(minutes=1)).total_seconds()
    for path in [dead, *dead.iterdir()]:
        os.utime(path, (then, then))
    exporter.purge(now=utcnow())
    assert [p.name for p in folder.iterdir()] == [".7-live.work"]


def test_one_tenants_many_jobs_do_not_hold_back_anothers(tenant: Tenant, rival: Tenant, database: Database) -> None:
    """Ten large jobs of one tenant, then one small job of another: on a server with one export
    worker, the small one is the next to start once it is queued, not the eleventh. (Big jobs
    the worker took before it was queued may finish first, however many the machine's pace
    allowed.)"""
    big = tenant.project()["id"]
    tenant.add_tasks(big, [{"data": {"text": f"row {i} " * 20}} for i in range(3000)])
    small = rival.project()["id"]
    rival.add_tasks(small, [{"data": {"text": "one"}}])
    queued = [tenant.owner.post(f"/projects/{big}/exports", json={"format": "jsonl"}).json()["id"]
              for _ in range(10)]
    # Until the worker has taken one, neither organization has started a job, and the oldest goes
    # first: queue the small one once the first big one is taken (running or already done).
    deadline = time.monotonic() + 20
    while tenant.owner.get(f"/exports/{queued[0]}").json()["status"] == "queued":
        assert time.monotonic() < deadline, "the export worker took no job"
        time.sleep(0.01)
    single = rival.owner.post(f"/projects/{small}/exports", json={"format": "jsonl"}).json()["id"]
    # Its row is stamped before its transaction commits; the worker can only see it once the
    # answer has come back, so that is when "queued" starts.
    visible = utcnow()
    for job_id in queued:
        _wait(tenant.owner, job_id, timeout=120)
    _wait(rival.owner, single)
    with database.reader() as session:
        jobs = {job_id: session.get(ExportJob, job_id) for job_id in [*queued, single]}
    mine = jobs[single]
    assert mine is not None and mine.started_at is not None and mine.finished_at is not None
    overtaking = [job_id for job_id in queued
                  if jobs[job_id].started_at >= visible and jobs[job_id].finished_at < mine.finished_at]
    assert overtaking == []
    started_first = [job_id for job_id in queued if jobs[job_id].started_at < visible]
    assert len(started_first) < len(queued)  # the test saw the queue, not jobs already done


def test_files_no_job_needs_are_purged_from_the_store(tenant: Tenant, database: Database, settings: Settings) -> None:
    """A process that died between putting its file into the store and recording it, or an
    attempt that had lost its job, leaves a file no job names: the purge deletes it, and
    leaves alone the done job's file and the one the running attempt may be putting there."""
    from qistas.workers.exporter import Exporter

    pid = _project(tenant, n=2)
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()["id"]
    _wait(tenant.owner, job_id)
    with database.writer.begin() as session:
        running = ExportJob(project_id=pid, format="jsonl", options=ExportOptions().as_dict(), status="running",
                            attempts=2, rows_done=0, lease_until=utcnow() + timedelta(hours=1))
        session.add(running)
        session.flush()
        running_id = running.id
    stored = settings.media_folder / "exports"
    names = {
        "kept, done": f"{job_id}-1-project-{pid}-export-{job_id}.jsonl",
        "kept, being put": f"{running_id}-2-project-{pid}-export-{running_id}.jsonl",
        "lost its job": f"{running_id}-1-project-{pid}-export-{running_id}.jsonl",
        "another attempt of a done job": f"{job_id}-2-project-{pid}-export-{job_id}.jsonl",
        "no such job": f"{running_id + 50}-1-project-{pid}-export-{running_id + 50}.jsonl",
    }
    for name in list(names.values())[1:]:
        (stored / name).write_text("{}\n")
    assert {p.name for p in stored.iterdir()} == set(names.values())
    Exporter(settings, database).purge(now=utcnow())
    assert {p.name for p in stored.iterdir()} == {names["kept, done"], names["kept, being put"]}
    assert tenant.owner.get(f"/exports/{job_id}/file").status_code == 200


def test_a_file_written_before_the_store_is_served_by_the_server_that_has_it(
    tenant: Tenant, database: Database, settings: Settings
) -> None:
    """Jobs finished by an earlier version have their file under QISTAS_HOME/exports and no
    key: the server that has it serves it; another answers 404 saying where it is, never 500."""
    pid = _project(tenant, n=1)
    with database.writer.begin() as session:
        old = ExportJob(project_id=pid, format="jsonl", options=ExportOptions().as_dict(), status="done",
                        attempts=1, rows_done=1, file_name=f"project-{pid}-export-old.jsonl", size_bytes=3,
                        finished_at=utcnow())
        session.add(old)
        session.flush()
        old_id = old.id
    missing = tenant.owner.get(f"/exports/{old_id}/file")
    assert missing.status_code == 404 and "another server" in missing.json()["error"]["message"]
    (settings.home / "exports").mkdir(exist_ok=True)
    (settings.home / "exports" / f"project-{pid}-export-old.jsonl").write_text("{}\n")
    assert tenant.owner.get(f"/exports/{old_id}/file").text == "{}\n"


def test_a_slow_upload_keeps_its_job(tenant: Tenant, database: Database, settings: Settings) -> None:
    """Putting a large file into the bucket may take longer than the job's lease: the lease is
    renewed meanwhile, so the server's own export worker (polling every 50 ms) does not take
    the job over, and the attempt that wrote the file records it."""
    from qistas.domain.mediastore import LocalStore
    from qistas.workers.exporter import Exporter

    short = settings.model_copy(update={"job_lease_seconds": 2})

    class SlowStore(LocalStore):  # the media folder, reached over a slow link
        def put_file(self, key: str, path: Path, content_type: str) -> None:
            time.sleep(3 * short.job_lease_seconds)
            super().put_file(key, path, content_type)

    pid = _project(tenant, n=3)
    with database.writer.begin() as session:
        job = ExportJob(project_id=pid, format="jsonl", options=ExportOptions().as_dict(), status="running",
                        attempts=1, rows_done=0, lease_until=utcnow() + timedelta(seconds=2))
        session.add(job)
        session.flush()
        job_id = job.id
    Exporter(short, database, SlowStore(settings.media_folder)).run(job_id, 1)
    with database.reader() as session:
        done = session.get(ExportJob, job_id)
        assert done is not None and (done.status, done.attempts) == ("done", 1)
        assert done.file_key == f"exports/{job_id}-1-project-{pid}-export-{job_id}.jsonl"
    assert len(tenant.owner.get(f"/exports/{job_id}/file").text.splitlines()) == 4
