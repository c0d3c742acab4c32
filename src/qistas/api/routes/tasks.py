"""Importing, reading and exporting tasks and results."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from functools import partial
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from qistas.api.deps import Actor, After, AppSettings, Db, Id, Limit
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.import_processes import ImportProcesses
from qistas.api.schemas.tasks import (
    AnnotationImportRead,
    AnnotationRead,
    ImportRead,
    ResultPage,
    ResultRead,
    ReviewState,
    TaskPage,
    TaskRead,
)
from qistas.db.dialect import refresh_statistics
from qistas.db.engine import Database
from qistas.db.enums import Role
from qistas.db.models import Annotation, Assignment, Project, Task, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import (
    annotation_imports,
    audit,
    destinations,
    imports,
    media,
    projects,
    quotas,
    results,
    reviews,
    staged_imports,
)
from qistas.domain.mediafiles import MediaInfo
from qistas.domain.mediaimports import MediaResolver, Sources, ZipSources
from qistas.domain.mediastore import MediaStore
from qistas.domain.model_annotators import model_names
from qistas.domain.results import source_of
from qistas.domain.security import pseudonyms
from qistas.domain.tasktypes import type_of
from qistas.errors import Invalid, NotFound, Unsupported
from qistas.import_process import FileImport
from qistas.policies import ensure_customer_access, ensure_customer_access_to

router = APIRouter(tags=["tasks"])
SPOOL_IN_MEMORY = 1 << 20
MAX_MEDIA_FILES = 10_000  # of one multipart import; more travel in a zip
MEDIA_FORMATS = {
    "application/json": "json",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/jsonlines": "jsonl",
    "application/x-jsonlines": "jsonl",
    "text/csv": "csv",
}
def _upload_body(description: str, text_types: tuple[str, ...]) -> dict[str, Any]:
    """The OpenAPI request body of an import: a JSON list, text formats, or a multipart file."""
    content: dict[str, Any] = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}
    content.update({media: {"schema": {"type": "string"}} for media in text_types})
    content["multipart/form-data"] = {
        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
    }
    return {"requestBody": {"required": True, "description": description, "content": content}}


IMPORT_BODY = _upload_body("A JSON list of tasks, a JSONL or CSV body, a zip of a tasks file and its media "
                           "(application/zip), or a multipart upload (field `file`, format from `format` or the file "
                           "name; `media` fields: the files the rows name, see docs/media.md).",
                           ("application/x-ndjson", "text/csv", "application/zip"))
ANNOTATIONS_BODY = _upload_body("A JSON list of `{\"task\": unique_id, \"annotator\": external id, \"answer\": {...}, "
                                "\"seconds\"?}`, a JSONL body, or a multipart upload (field `file`).",
                                ("application/x-ndjson",))


def _format_of_name(name: str | None) -> str | None:
    if not name:
        return None
    lowered = name.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".json", "json"), (".zip", "zip")):
        if lowered.endswith(ext):
            return fmt
    return None


async def _spooled_body(request: Request, *, media: bool = False) -> tuple[IO[bytes], str | None, Any, Sources]:
    """The upload as a file (in memory up to 1 MB, then on disk), its format if known, the
    form to close, and the media files that came with it (``media``: a task import, whose
    multipart upload may add ``media`` files, or whose file may be a zip)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=MAX_MEDIA_FILES + 1 if media else 1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            await form.close()  # other fields may hold files: close them, the caller never sees the form
            raise Invalid("the upload needs a file field named 'file'", details={"field": "file"})
        fmt = form.get("format")
        fmt = (fmt if isinstance(fmt, str) else None) or _format_of_name(upload.filename)
        try:
            sources = _form_media(form) if media else Sources()
        except BaseException:
            await form.close()
            raise
        return upload.file, fmt, form, sources
    if media and content_type in ("application/zip", "application/x-zip-compressed"):
        return await _spool(request), "zip", None, Sources()
    if content_type not in MEDIA_FORMATS:
        raise Unsupported(
            "send JSON, JSONL (application/x-ndjson), CSV (text/csv) or a multipart upload",
            details={"content_type": content_type or None},
        )
    return await _spool(request), MEDIA_FORMATS[content_type], None, Sources()


async def _spool(request: Request) -> IO[bytes]:
    """The body: in memory up to ``SPOOL_IN_MEMORY``, then in a named temporary file (0600,
    deleted when closed) that an import process can open by its name."""
    spool: IO[bytes] = io.BytesIO()
    try:
        async for chunk in request.stream():
            if isinstance(spool, io.BytesIO) and spool.tell() + len(chunk) > SPOOL_IN_MEMORY:
                on_disk = tempfile.NamedTemporaryFile(prefix="qistas-upload-")  # noqa: SIM115 - closed by caller
                on_disk.write(spool.getbuffer())
                spool = on_disk
            spool.write(chunk)
    except BaseException:
        # Over the limit or the client went away: the caller never gets the spool to close.
        spool.close()
        raise
    spool.seek(0)
    return spool


@contextmanager
def _named(stream: IO[bytes]) -> Iterator[str]:
    """The path of a body ``_spool`` made: its file on disk, or one written for a body it
    kept in memory (``QISTAS_IMPORT_PROCESS_MIN_BYTES`` below ``SPOOL_IN_MEMORY``)."""
    if isinstance(stream, io.BytesIO):
        with tempfile.NamedTemporaryFile(prefix="qistas-upload-") as on_disk:
            on_disk.write(stream.getbuffer())
            on_disk.flush()
            yield on_disk.name
    else:
        yield stream.name


def _size(stream: IO[bytes]) -> int:
    return len(stream.getbuffer()) if isinstance(stream, io.BytesIO) else os.fstat(stream.fileno()).st_size


def _form_media(form: Any) -> Sources:
    """The ``media`` files of a multipart import, by file name (which may hold a relative path)."""
    files: dict[str, IO[bytes]] = {}
    for item in form.getlist("media"):
        if not isinstance(item, UploadFile) or not item.filename:
            raise Invalid("each 'media' field must be a file with a name", details={"field": "media"})
        if item.filename in files:
            raise Invalid(f"{item.filename}: sent twice", details={"field": "media", "file": item.filename})
        files[item.filename] = item.file
    return Sources(files)


async def _ensure_may_upload(db: Database, actor: User, project_id: int, *, task_quota: int = 0) -> int:
    """Refuse an upload its sender may not make before a byte of it is received; the
    project's organization.

    A short read transaction: someone without access to the project (another tenant's staff,
    an annotator), an archived project, or an organization with no room left under
    ``task_quota``, is answered at once, and nothing of the body is read or spooled. The write that follows checks the
    access again, in its own transaction.
    """
    def check(session: Session) -> int:
        project = projects.ensure_writable(ensure_customer_access(actor, session.get(Project, project_id)))
        quotas.ensure_task_room(session, org_id=project.org_id, adding=0, limit=task_quota)
        return project.org_id

    return await run_in_threadpool(read, db, check)


@asynccontextmanager
async def _upload(request: Request, format: str | None, formats: tuple[str, ...],
                  hint: str, *, media: bool = False,
                  zip_ratio: float = 100.0) -> AsyncIterator[tuple[IO[bytes], str, Sources, bool]]:
    """The received upload, its format, its media files and whether it is the request's
    body itself (not a multipart form or a zip); all closed afterwards.

    The whole body is received before any transaction opens: a client that disconnects
    mid-upload never reaches the database. Callers check the sender's access first
    (``_ensure_may_upload``). With ``media``, a zip (``?format=zip``, a ``.zip`` file or an
    ``application/zip`` body) holds the tasks file and its media.
    """
    stream, detected, form, sources = await _spooled_body(request, media=media)
    try:
        fmt = format or detected
        if media and fmt == "zip":
            sources = ZipSources(stream, max_ratio=zip_ratio)
            fmt = sources.tasks_format()
            tasks_stream = sources.open_tasks()
            try:
                yield tasks_stream, fmt, sources, False
            finally:
                tasks_stream.close()
            return
        if fmt not in formats:
            raise Invalid(hint, details={"field": "format"})
        yield stream, fmt, sources, form is None
    finally:
        sources.close()
        stream.close()
        if form is not None:
            await form.close()


@router.post("/projects/{project_id}/tasks", status_code=201, response_model=ImportRead,
             response_model_exclude_defaults=True, openapi_extra=IMPORT_BODY, dependencies=[IDEMPOTENT])
async def import_tasks(
    project_id: Id, request: Request, actor: Actor, db: Db, settings: AppSettings,
    format: Annotated[str | None, Query(description="json, jsonl, csv or zip; overrides the media type")] = None,
) -> ImportRead:
    org_id = await _ensure_may_upload(db, actor, project_id, task_quota=settings.max_task_bytes_per_org)
    async with _upload(request, format, imports.FORMATS, "say the format: ?format=json|jsonl|csv|zip", media=True,
                       zip_ratio=settings.media_zip_max_ratio) as (stream, fmt, sources, is_body):

        def plan_of(session: Session) -> tuple[imports.ImportPlan, tuple[str, ...], dict[str, Any]]:
            project = projects.ensure_writable(ensure_customer_access(actor, session.get(Project, project_id)))
            plan = imports.plan_import(session, project=project)
            return plan, type_of(plan.spec).media_fields(plan.spec), project.media

        plan, fields, policy = await run_in_threadpool(read, db, plan_of)
        processes: ImportProcesses = request.app.state.import_processes
        if is_body and not fields and processes.takes(_size(stream)):
            # A large body: checked and written by an import process (qistas.import_process)
            url = db.engine.url.render_as_string(hide_password=False)
            with _named(stream) as path:
                moved = await processes.import_file(FileImport(settings=settings, database_url=url, path=path,
                                                               format=fmt, plan=plan, org_id=org_id,
                                                               actor_id=actor.id))
            done = ImportRead(created=moved.created, duplicates=moved.duplicates, media=0)
            await run_in_threadpool(refresh_statistics, db.engine, "tasks", rows_added=done.created)
            return done
        resolver = MediaResolver(store=media_store(request), sources=sources, fields=fields,
                                 limits=media.limits_for(settings, policy))
        try:
            # Parsed and validated with no transaction open: other writers go on meanwhile.
            checked = await run_in_threadpool(
                partial(imports.check_rows, plan, imports.iter_rows(stream, fmt), max_errors=settings.max_import_errors,
                        check_url=destinations.callback_checker(settings),
                        resolve_media=resolver.resolve if resolver.active else None))
            with checked:
                await run_in_threadpool(read, db, partial(quotas.ensure_task_room, org_id=org_id,
                                                          adding=checked.data_bytes,
                                                          limit=settings.max_task_bytes_per_org))
                # The files go into the store once every row passed; the rows that make them
                # readable are written with the tasks, in the commit below.
                await run_in_threadpool(resolver.store_all)
                result = await _write_import(db, actor, project_id, checked, resolver.infos, org_id=org_id)
        finally:
            resolver.close()
        done = ImportRead(created=result.created, duplicates=result.duplicates, media=resolver.n_files)
    await run_in_threadpool(refresh_statistics, db.engine, "tasks", rows_added=done.created)
    return done


@router.post("/projects/{project_id}/annotations", status_code=201, response_model=AnnotationImportRead,
             openapi_extra=ANNOTATIONS_BODY, dependencies=[IDEMPOTENT])
async def import_annotations(
    project_id: Id, request: Request, actor: Actor, db: Db, settings: AppSettings,
    format: Annotated[str | None, Query(description="json or jsonl; overrides the media type")] = None,
) -> AnnotationImportRead:
    """Answers made elsewhere: every one validated by the task type, all or nothing."""
    hint = "send the annotations as JSON or JSONL (?format=json or ?format=jsonl)"
    await _ensure_may_upload(db, actor, project_id)
    async with _upload(request, format, ("json", "jsonl"), hint) as (stream, fmt, _, _body):

        def work(session: Session) -> AnnotationImportRead:
            project = projects.ensure_writable(ensure_customer_access(actor, session.get(Project, project_id)))
            stream.seek(0)
            created = annotation_imports.import_annotations(
                session, project=project, rows=imports.iter_rows(stream, fmt), now=utcnow(),
                max_errors=settings.max_import_errors)
            audit.record(session, actor=actor, action="annotations.import", object_type="project",
                         object_id=project.id, org_id=project.org_id, details={"created": created})
            return AnnotationImportRead(created=created)

        return await run_in_threadpool(write, db, work)


async def _write_import(db: Database, actor: User, project_id: int, checked: imports.CheckedRows,
                        infos: Callable[[], Iterable[MediaInfo]], *, org_id: int) -> imports.ImportResult:
    """Written in short transactions (see domain/staged_imports.py): other tenants' writes go
    on between them, and a crash never leaves half an import."""
    def still_allowed(session: Session) -> None:
        projects.ensure_writable(ensure_customer_access(actor, session.get(Project, project_id)))
        media.record(session, org_id=org_id, infos=infos())

    return await run_in_threadpool(partial(staged_imports.write_checked, db, project_id=project_id, actor_id=actor.id,
                                           checked=checked, before_commit=still_allowed))


def media_store(request: Request) -> MediaStore:
    store: MediaStore = request.app.state.media_store
    return store


def task_read(task: Task, annotations: list[AnnotationRead] | None = None) -> TaskRead:
    return TaskRead(
        id=task.id, project_id=task.project_id, batch_id=task.batch_id, unique_id=task.unique_id,
        data=task.data, metadata=task.meta, gold=task.gold, status=task.status, required=task.required,
        n_annotations=task.n_annotations, response=task.response, confidence=task.confidence,
        method=task.method, below_target=task.below_target, needs_review=task.needs_review,
        details=task.details, created_at=task.created_at,
        completed_at=task.completed_at, review=ReviewState(**reviews.review_of(task)), predictions=task.predictions,
        annotations=annotations,
    )


@router.get("/projects/{project_id}/tasks", response_model=TaskPage)
def list_tasks(
    project_id: Id, actor: Actor, db: Db, limit: Limit,
    status: str | None = None, after: After = None,
    unique_id: Annotated[str | None, Query(min_length=1, max_length=255,
                                           description="only the task with this unique_id (exact)")] = None,
) -> TaskPage:
    def work(session: Session) -> TaskPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        page = results.task_page(session, project_id=project.id, status=status, after=after, limit=limit,
                                 unique_id=unique_id)
        audit.record(session, actor=actor, action="tasks.read", object_type="project",
                     object_id=project.id, org_id=project.org_id, details={"count": len(page)})
        return TaskPage(items=[task_read(t) for t in page], next=page[-1].id if len(page) == limit else None)

    return write(db, work)


@router.get("/tasks/{task_id}", response_model=TaskRead | dict[str, Any])
def get_task(task_id: Id, actor: Actor, db: Db, settings: AppSettings) -> Any:
    def work(session: Session) -> Any:
        task = session.get(Task, task_id)
        project = session.get(Project, task.project_id) if task else None
        if task is None or project is None:
            raise NotFound("task not found")
        if actor.role == Role.ANNOTATOR:
            return _annotator_task(session, actor, task, project=project, secret=settings.secret_key or "")
        ensure_customer_access_to(actor, project, what="task")
        name = pseudonyms(settings.secret_key or "", project.id)
        models = model_names(session, org_id=project.org_id)
        annotations = [
            AnnotationRead(id=a.id, task_id=a.task_id, annotator=name(a.annotator_id), answer=a.answer,
                           seconds=a.seconds, created_at=a.created_at, **source_of(a.annotator_id, models))
            for a in session.scalars(select(Annotation).where(Annotation.task_id == task.id).order_by(Annotation.id))
        ]
        audit.record(session, actor=actor, action="task.read", object_type="task", object_id=task.id,
                     org_id=project.org_id)
        return task_read(task, annotations)

    return write(db, work)


@router.post("/tasks/{task_id}/cancel", response_model=TaskRead)
def cancel_task(task_id: Id, actor: Actor, db: Db) -> TaskRead:
    """Cancel a task not yet completed: it is served no more, and leases on it end."""

    def work(session: Session) -> TaskRead:
        task = session.get(Task, task_id)
        project = session.get(Project, task.project_id) if task else None
        if task is None:
            raise NotFound("task not found")
        project = ensure_customer_access_to(actor, project, what="task")
        return task_read(projects.cancel_task(session, task=task, project=project, actor=actor, now=utcnow()))

    return write(db, work)


def _annotator_task(session: Session, actor: User, task: Task, *, project: Project, secret: str) -> dict[str, Any]:
    """Annotators may read a task they hold or held a lease on: its id and data only."""
    held = session.scalar(
        select(Assignment.id).where(Assignment.task_id == task.id, Assignment.annotator_id == actor.id)
    )
    if held is None:
        raise NotFound("task not found")
    audit.record(session, actor=actor, action="task.read", object_type="task", object_id=task.id,
                 org_id=project.org_id, pseudonym=pseudonyms(secret, project.id))
    return {"id": task.id, "data": task.data}


def result_read(task: Task) -> ResultRead:
    return ResultRead(task_id=task.id, unique_id=task.unique_id, response=task.response,
                      confidence=task.confidence, method=task.method, needs_review=task.needs_review,
                      details=task.details, review=ReviewState(**reviews.review_of(task)))


@router.get("/projects/{project_id}/results", response_model=ResultPage)
def list_results(
    project_id: Id, actor: Actor, db: Db, limit: Limit, settings: AppSettings, after: After = None,
    since: Annotated[str | None, Query(description="a cursor: results completed after it, in completion "
                                       "order; `next` is then a cursor too")] = None,
) -> ResultPage:
    def work(session: Session) -> ResultPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        if since is not None:
            settled = utcnow() - timedelta(seconds=settings.cursor_settle_seconds)
            page, cursor = results.results_since(session, project_id=project.id, since=since, limit=limit,
                                                 settled_before=settled)
            audit.record(session, actor=actor, action="results.read", object_type="project",
                         object_id=project.id, org_id=project.org_id, details={"count": len(page)})
            return ResultPage(items=[result_read(t) for t in page], next=cursor)
        page = results.results_page(session, project_id=project.id, after=after, limit=limit)
        audit.record(session, actor=actor, action="results.read", object_type="project",
                     object_id=project.id, org_id=project.org_id, details={"count": len(page)})
        return ResultPage(items=[result_read(t) for t in page], next=page[-1].id if len(page) == limit else None)

    return write(db, work)
