"""Runs export jobs: claim one, write its file in this server's scratch folder
(QISTAS_HOME/exports), put it into the store when whole, record it done.

The store is the one media files live in (``domain.mediastore``): the folder every server
shares, or the bucket, so any server serves the download (``exportjobs`` has the keys).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial as partial_call
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import ExportJob, Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import exportformats, exportjobs, exportsql, results
from qistas.domain.mediastore import MediaStore, store_for
from qistas.domain.security import pseudonyms
from qistas.domain.tasktypes import parse_spec
from qistas.files import open_private, private_folder

PURGE_EVERY = timedelta(minutes=10)
PROGRESS_EVERY = 1.0  # seconds between progress writes (they also renew the lease)
# Work files of a process that died mid-export (a streamed `hf` export's folder, an attempt's
# partial file) untouched this long are deleted by the purge. Live ones are written to
# continuously, and a job's own leftovers go as soon as the job is run again.
ORPHAN_AGE = timedelta(hours=24)

log = logging.getLogger("qistas.workers")


class Abandoned(Exception):
    """Another worker took the job over; this attempt stops without touching it."""


@dataclass(frozen=True)
class Written:
    name: str
    path: Path
    media_type: str
    size: int
    cursor: str | None


def export_dir(settings: Settings) -> Path:
    """This server's scratch folder for exports being written (and, before export files moved
    to the store, the finished files)."""
    return settings.home / "exports"


def readers(settings: Settings) -> exportsql.Readers:
    """How many database connections read one large export, and where their ranges wait."""
    return exportsql.Readers(count=settings.export_readers, spool_dir=private_folder(export_dir(settings)))


class Exporter:
    def __init__(self, settings: Settings, db: Database, store: MediaStore | None = None) -> None:
        self.settings = settings
        self.db = db
        self.store = store if store is not None else store_for(settings)
        self._owns_store = store is None
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        # Set when the server shuts down: a running job stops at its next chunk and keeps its
        # lease, which runs out, so a live process (or this one restarted) takes it over.
        self.stopping = threading.Event()
        self._next_purge: datetime | None = None

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def purge(self, *, now: datetime) -> int:
        """Delete the files of jobs finished more than ``export_keep_hours`` ago; mark them expired."""
        cutoff = now - timedelta(hours=self.settings.export_keep_hours)

        def work(session: Session) -> list[tuple[str | None, str]]:
            old = session.scalars(select(ExportJob).where(ExportJob.status == "done", ExportJob.finished_at < cutoff))
            files = []
            for job in old:
                if job.file_name:
                    files.append((job.file_key, job.file_name))
                job.status, job.file_name, job.file_key = "expired", None, None
            return files

        files = write(self.db, work)
        for key, name in files:
            if key is not None:
                self.store.delete(key)
            else:  # written here before export files moved to the store
                (export_dir(self.settings) / name).unlink(missing_ok=True)
        self._remove_orphans(now=now)
        self._remove_orphaned_files()
        return len(files)

    def _remove_orphaned_files(self) -> None:
        keys = list(self.store.keys(exportjobs.EXPORTS))
        if keys:
            for key in read(self.db, lambda session: exportjobs.orphaned(session, keys=keys)):
                self.store.delete(key)

    def _remove_orphans(self, *, now: datetime) -> None:
        folder = export_dir(self.settings)
        if not folder.is_dir():
            return
        oldest = (now - ORPHAN_AGE).timestamp()
        for entry in folder.iterdir():
            if entry.name.startswith((".", "hf-")) and _last_written(entry) < oldest:
                _remove(entry)

    def step(self) -> bool:
        now = utcnow()
        if self._next_purge is None or now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            self.purge(now=now)
        with self.db.reader() as session:
            waiting = session.scalar(select(ExportJob.id).where(or_(
                ExportJob.status == "queued", (ExportJob.status == "running") & (ExportJob.lease_until < now),
            )).limit(1))
        if waiting is None:
            return False
        claimed = write(self.db, lambda session: self._claim(session))
        if claimed is None:
            return False
        self.run(*claimed)
        return True

    def _claim(self, session: Session) -> tuple[int, int] | None:
        job = exportjobs.claim_job(session, now=utcnow(), lease=self.lease)
        if job is None or job.status != "running":
            return None
        return job.id, job.attempts

    def run(self, job_id: int, attempt: int) -> None:
        folder = private_folder(export_dir(self.settings))
        for left in folder.glob(f".{job_id}-*"):
            _remove(left)  # an earlier attempt's, whose process died: this one owns the job now
        attempt_name = f".{job_id}-{secrets.token_hex(6)}"
        partial, workdir = folder / f"{attempt_name}.partial", folder / f"{attempt_name}.work"
        try:
            written = self._write(job_id, attempt, partial, workdir)
            key = exportjobs.file_key(job_id, attempt, written.name)
            self._put(job_id, attempt, key, written)
        except Abandoned:
            partial.unlink(missing_ok=True)
            return
        except Exception as exc:
            partial.unlink(missing_ok=True)
            write(self.db, partial_call(self._fail, job_id=job_id, attempt=attempt, exc=exc))
            raise
        finally:
            _remove(workdir)
        if not write(self.db, lambda session: self._finish(session, job_id, attempt, key, written)):
            self.store.delete(key)  # another attempt took the job over meanwhile: its file counts

    def _put(self, job_id: int, attempt: int, key: str, written: Written) -> None:
        """Put the file into the store (whole, or not at all), renewing the job's lease while a
        large file uploads so no other process takes the job over meanwhile."""
        uploaded = threading.Event()

        def renew() -> None:
            while not uploaded.wait(PROGRESS_EVERY):
                try:
                    write(self.db, lambda session: self._renew(session, job_id, attempt))
                except Abandoned:
                    return  # its file is deleted once the upload ends: the job is another's
                except Exception:  # the database is away: the lease may run out; _finish will tell
                    log.warning("export %s: lease renewal failed", job_id, exc_info=True)

        renewer = threading.Thread(target=renew, name=f"qistas-export-{job_id}-put", daemon=True)
        renewer.start()
        try:
            self.store.put_file(key, written.path, written.media_type)
        finally:
            uploaded.set()
            renewer.join()

    def _renew(self, session: Session, job_id: int, attempt: int) -> None:
        job = exportjobs.still_mine(session, job_id=job_id, attempt=attempt)
        if job is None:
            raise Abandoned
        job.lease_until = utcnow() + self.lease

    def _write(self, job_id: int, attempt: int, partial: Path, workdir: Path) -> Written:
        with self.db.reader() as session:
            job = session.get(ExportJob, job_id)
            project = session.get(Project, job.project_id) if job else None
            assert job is not None and project is not None
            spec = parse_spec(project.task_spec)
            options = results.ExportOptions(**job.options)
            settled = utcnow() - timedelta(seconds=self.settings.cursor_settle_seconds)
            selection = results.select_export(session, project=project, options=options, settled_before=settled)
            write(self.db, lambda s: self._progress(s, job_id, attempt, 0, selection.total))
            last = time.monotonic()

            def progress(done: int) -> None:
                nonlocal last
                if self.stopping.is_set():
                    raise Abandoned
                if time.monotonic() - last >= PROGRESS_EVERY:
                    write(self.db, lambda s: self._progress(s, job_id, attempt, done, selection.total))
                    last = time.monotonic()

            secret, project_id = self.settings.secret_key or "", project.id

            pseudonym = pseudonyms(secret, project_id)

            def records() -> Iterator[dict[str, Any]]:
                return results.iter_export_records(session, selection=selection, progress=progress,
                                                   pseudonym=pseudonym)

            ext = exportformats.extension(job.format, spec)
            name = f"project-{project.id}-export-{job_id}.{ext}"
            prebuilt = exportsql.prebuilt(session, selection=selection, pseudonym=pseudonym, progress=progress,
                                          readers=readers(self.settings))
            body = exportformats.render(job.format, records, spec=spec,
                                        workdir=workdir, name=f"project-{project.id}", prebuilt=prebuilt)
            with os.fdopen(open_private(partial), "wb") as handle:
                for chunk in body:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            media_type = exportformats.media_type(job.format, spec)
        return Written(name=name, path=partial, media_type=media_type, size=partial.stat().st_size,
                       cursor=selection.cursor)

    def _progress(self, session: Session, job_id: int, attempt: int, done: int, total: int) -> None:
        job = exportjobs.still_mine(session, job_id=job_id, attempt=attempt)
        if job is None:
            raise Abandoned
        job.rows_done = done
        job.rows_total = total
        job.lease_until = utcnow() + self.lease

    def _finish(self, session: Session, job_id: int, attempt: int, key: str, written: Written) -> bool:
        job = exportjobs.still_mine(session, job_id=job_id, attempt=attempt)
        if job is None:
            return False
        job.status = "done"
        job.file_name = written.name
        job.file_key = key
        job.size_bytes = written.size
        job.cursor = written.cursor
        job.rows_done = job.rows_total or job.rows_done
        job.finished_at = utcnow()
        job.lease_until = None
        return True

    def _fail(self, session: Session, *, job_id: int, attempt: int, exc: Exception) -> None:
        job = exportjobs.still_mine(session, job_id=job_id, attempt=attempt)
        if job is None:
            return
        job.status = "failed"
        job.error = f"{type(exc).__name__}: {exc}"[:500]
        job.finished_at = utcnow()


def _last_written(entry: Path) -> float:
    """When ``entry`` (or, for a folder, a file in it) was last written."""
    try:
        times = [entry.stat().st_mtime]
        if entry.is_dir():
            times.extend(child.stat().st_mtime for child in entry.iterdir())
    except FileNotFoundError:  # removed meanwhile by its own process
        return float("inf")
    return max(times)


def _remove(entry: Path) -> None:
    if entry.is_dir():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
