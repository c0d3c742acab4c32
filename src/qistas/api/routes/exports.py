"""Exports: streamed (``GET .../export``) and as background jobs (``POST .../exports``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, AppSettings, Db, Id, Limit
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.exports import ExportCreate, ExportRead
from qistas.config import Settings
from qistas.db.models import ExportJob, Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import audit, exportformats, exportjobs, exportsql, quotas, results
from qistas.domain.mediastore import MediaStore
from qistas.domain.security import pseudonyms
from qistas.domain.tasktypes import parse_spec
from qistas.errors import Conflict, NotFound
from qistas.policies import ensure_customer_access
from qistas.workers.exporter import export_dir, readers

router = APIRouter(tags=["exports"])
API = "/api/v1"


def settled_before(settings: Settings) -> datetime:
    return utcnow() - timedelta(seconds=settings.cursor_settle_seconds)


def export_read(job: ExportJob) -> ExportRead:
    progress = None
    if job.rows_total:
        progress = min(job.rows_done / job.rows_total, 1.0)
    elif job.status == "done":
        progress = 1.0
    return ExportRead(
        id=job.id, project_id=job.project_id, format=job.format, options=job.options, status=job.status,
        rows_done=job.rows_done, rows_total=job.rows_total, progress=progress, size_bytes=job.size_bytes,
        cursor=job.cursor, error=job.error, created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, file=f"{API}/exports/{job.id}/file" if job.status == "done" else None,
    )


@router.get("/projects/{project_id}/export")
def export(
    project_id: Id, actor: Actor, db: Db, settings: AppSettings,
    format: Annotated[str, Query(description=", ".join(exportformats.formats()))] = "jsonl",
    completed: Annotated[bool, Query(description="only completed tasks")] = False,
    min_confidence: Annotated[float | None, Query(ge=0, le=1, description="only results this confident")] = None,
    batch: Annotated[str | None, Query(description="only this batch (by name)")] = None,
    since: Annotated[str | None, Query(description="only results completed after this cursor")] = None,
) -> StreamingResponse:
    """Stream an export. The ``Qistas-Cursor`` header is the ``since`` of the next export."""
    options = results.ExportOptions(completed=completed, min_confidence=min_confidence, batch=batch, since=since)

    def authorise(session: Session) -> tuple[Project, Any, results.Selection]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        spec = parse_spec(project.task_spec)
        checked = exportformats.check_format(format, spec, options.validate())
        selection = results.select_export(session, project=project, options=checked,
                                          settled_before=settled_before(settings))
        audit.record(session, actor=actor, action="export", object_type="project", object_id=project.id,
                     org_id=project.org_id, details={"format": format, **checked.as_dict()})
        return project, spec, selection

    project, spec, selection = write(db, authorise)
    body = _stream(db, settings, project, spec, selection, format)
    filename = f"project-{project.id}.{exportformats.extension(format, spec)}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Qistas-Total": str(selection.total)}
    if selection.cursor is not None:
        headers["Qistas-Cursor"] = selection.cursor
    return StreamingResponse(body, media_type=exportformats.media_type(format, spec), headers=headers)


def _stream(db: Db, settings: Settings, project: Project, spec: Any, selection: results.Selection,
            fmt: str) -> Iterator[bytes]:
    secret = settings.secret_key or ""
    # Its own read session, held only while the response streams.
    with db.reader() as session:
        pseudonym = pseudonyms(secret, project.id)

        def records() -> Iterator[dict[str, Any]]:
            return results.iter_export_records(session, selection=selection, pseudonym=pseudonym)

        yield from exportformats.render(fmt, records, spec=spec, workdir=export_dir(settings),
                                        name=f"project-{project.id}",
                                        prebuilt=exportsql.prebuilt(session, selection=selection, pseudonym=pseudonym,
                                                                    readers=readers(settings)))


@router.post("/projects/{project_id}/exports", status_code=202, response_model=ExportRead, dependencies=[IDEMPOTENT])
def create_export(project_id: Id, body: ExportCreate, actor: Actor, db: Db, settings: AppSettings) -> ExportRead:
    """Queue an export job; follow it at ``GET /exports/{id}``, download from its ``file``."""
    options = results.ExportOptions(completed=body.completed, min_confidence=body.min_confidence,
                                    batch=body.batch, since=body.since)

    def work(session: Session) -> ExportRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        quotas.ensure_export_room(session, org_id=project.org_id, limit=settings.max_export_bytes_per_org)
        job = exportjobs.create_job(session, project=project, actor=actor, fmt=body.format, options=options)
        audit.record(session, actor=actor, action="export.create", object_type="export", object_id=job.id,
                     org_id=project.org_id, details={"format": body.format, **job.options})
        return export_read(job)

    return write(db, work)


@router.get("/projects/{project_id}/exports", response_model=list[ExportRead])
def list_exports(project_id: Id, actor: Actor, db: Db, limit: Limit) -> list[ExportRead]:
    def work(session: Session) -> list[ExportRead]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        audit.record(session, actor=actor, action="exports.read", object_type="project", object_id=project.id,
                     org_id=project.org_id)
        return [export_read(j) for j in exportjobs.list_jobs(session, project=project, limit=limit)]

    return write(db, work)


@router.get("/exports/{job_id}", response_model=ExportRead)
def get_export(job_id: Id, actor: Actor, db: Db) -> ExportRead:
    def work(session: Session) -> ExportRead:
        job, project = exportjobs.get_job(session, job_id=job_id, actor=actor)
        audit.record(session, actor=actor, action="export.read", object_type="export", object_id=job.id,
                     org_id=project.org_id)
        return export_read(job)

    return write(db, work)


@router.get("/exports/{job_id}/file", response_class=Response,
            responses={200: {"description": "the export file", "content": {"application/octet-stream": {}}}})
def download(job_id: Id, request: Request, actor: Actor, db: Db, settings: AppSettings) -> Response:
    """The file of a finished export job, from the store every server shares."""
    def work(session: Session) -> tuple[ExportJob, str]:
        job, project = exportjobs.get_job(session, job_id=job_id, actor=actor)
        if job.status != "done" or job.file_name is None:
            raise Conflict(f"the export is {job.status}; download it once it is done",
                           details={"status": job.status})
        audit.record(session, actor=actor, action="export.download", object_type="export", object_id=job.id,
                     org_id=project.org_id)
        return job, exportformats.media_type(job.format, parse_spec(project.task_spec))

    job, media = write(db, work)
    assert job.file_name is not None
    if job.file_key is None:  # written under QISTAS_HOME/exports before export files moved to the store
        legacy = export_dir(settings) / job.file_name
        if not legacy.is_file():
            raise NotFound("this export's file was written by an earlier version on another server; "
                           "download it there, or export again")
        return FileResponse(legacy, media_type=media, filename=job.file_name)
    store: MediaStore = request.app.state.media_store
    path = store.local_path(job.file_key)
    if path is not None:
        return FileResponse(path, media_type=media, filename=job.file_name)
    if not store.exists(job.file_key):
        raise NotFound("this export's file is missing from the store; export again")
    headers = {"Content-Disposition": f'attachment; filename="{job.file_name}"'}
    if job.size_bytes is not None:
        headers["Content-Length"] = str(job.size_bytes)
    return StreamingResponse(store.iter_bytes(job.file_key), media_type=media, headers=headers)
