"""The annotator's loop: take a task, submit or skip it, keep the lease alive.

These routes are the hottest of the server, so they are ``async def`` and run their one
transaction through ``write_now`` (on the event loop when SQLite's write lock is free, else in
one trip to the thread pool), building the JSON of the answer there too. A plain ``def`` route
costs two trips (FastAPI validates a returned model in the pool as well), and every trip is a
hand-over of the GIL between threads. The response models stay declared for the OpenAPI
document; the bytes sent are those models' own JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from qistas.api.deps import Credentials, Id, actor_in, ensure_credentials
from qistas.api.metrics import Metrics
from qistas.api.schemas.tasks import AssignmentRead, PrefillRead, SubmitCreate, SubmittedRead, TaskWorkView
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import commit_waits, write_in_thread, write_now
from qistas.domain import assignments, audit, exams, media
from qistas.domain.annotations import submit as store_answer
from qistas.domain.assignments import Lease, WorkTask, load_project
from qistas.policies import ensure_annotator_access

router = APIRouter(tags=["work"])

# A submitted answer up to this size is validated and aggregated on the event loop; a larger
# one (hundreds of boxes or spans, a long text) in the thread pool: aggregation grows faster
# than the answer (box clustering with the square of the boxes), and /healthz and every
# other annotator wait while the loop is busy. Answers have their own bounds
# (``MAX_ANSWER_BYTES`` and each type's element limits).
INLINE_ANSWER_BYTES = 4096


def loop_context(request: Request) -> tuple[Database, Settings]:
    """What the loop's routes need from the app, read directly: each FastAPI dependency costs
    a resolution per request, a measurable share of these short ones."""
    ensure_credentials(request)
    return request.app.state.db, request.app.state.settings


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def events_of(settings: Settings, actor: User) -> audit.LoopEvents:
    """The audit events of the annotator's loop, recorded by the domain functions, the annotator
    under their pseudonym in the project."""
    return audit.LoopEvents(actor, settings.secret_key or "")


def json_response(model: BaseModel, status_code: int, exclude: set[str] | None = None) -> Response:
    return Response(model.model_dump_json(exclude=exclude).encode(), status_code=status_code,
                    media_type="application/json")


def lease_response(read: AssignmentRead, status_code: int) -> Response:
    """A lease; ``prefill`` only when there is one: a take without it is the same as ever."""
    return json_response(read, status_code, None if read.prefill is not None else {"prefill"})


def assignment_read(assignment: Lease, task: WorkTask, prefill: dict[str, Any] | None = None, *,
                    settings: Settings) -> AssignmentRead:
    # Stored media become URLs signed for this lease (domain/media.py): they stop with it.
    expires = media.url_expiry(settings, lease_expires=assignment.expires_at, now=utcnow())
    data = media.present(task.data, secret=settings.secret_key or "", scope=f"a{assignment.id}", expires=expires)
    return AssignmentRead(id=assignment.id, project_id=assignment.project_id,
                          task=TaskWorkView(id=task.id, data=data), expires_at=assignment.expires_at,
                          prefill=PrefillRead(**prefill) if prefill is not None else None)


@router.post("/projects/{project_id}/assignments", status_code=201, response_model=AssignmentRead,
             responses={204: {"description": "nothing is left for this annotator"}})
async def take(project_id: Id, request: Request) -> Response:
    db, settings = loop_context(request)

    def work(session: Session) -> Response:
        actor = actor_in(session, request, loop=True)
        project = ensure_annotator_access(actor, load_project(session, project_id))
        events = events_of(settings, actor)
        if project.exam:  # an exam's questions, within the annotator's open attempt
            claimed, finished = exams.take_question(session, project=project, annotator=actor, now=utcnow(),
                                                    lease_seconds=settings.lease_seconds)
            if finished is not None:
                commit_waits(session)  # a result is more than a lease
                exams.record_result(session, events, project=project, attempt=finished)
            if claimed is not None:
                assignments.record_take(session, events, project=project, lease=claimed[0])
        else:  # the lease handed out is recorded by the claim
            claimed = assignments.claim(session, project=project, annotator=actor, now=utcnow(),
                                        lease_seconds=settings.lease_seconds, events=events)
        if claimed is None:
            return Response(status_code=204)
        lease, task = claimed
        prefill = assignments.prefill(session, project=project, task_id=task.id)
        return lease_response(assignment_read(lease, task, prefill, settings=settings), 201)

    response = await write_now(db, work, synchronous_commit=settings.lease_synchronous_commit)
    if response.status_code == 201:  # counted once committed
        metrics_of(request).taken.inc()
    return response


@router.post("/assignments/{assignment_id}/submit", status_code=201, response_model=SubmittedRead)
async def submit(assignment_id: Id, body: SubmitCreate, request: Credentials) -> Response:
    # Credentials as a dependency: a missing token answers 401 before the body is checked.
    db, settings = loop_context(request)

    def work(session: Session) -> Response:
        actor = actor_in(session, request, loop=True)
        done = store_answer(session, assignment_id=assignment_id, annotator=actor,
                            answer=body.answer, seconds=body.seconds, now=utcnow(),
                            idle_seconds=settings.idle_seconds, events=events_of(settings, actor))
        stored = SubmittedRead(**done.annotation._asdict(), feedback=done.feedback)
        # 200 for a repeat: the annotation stored the first time, nothing new.
        return json_response(stored, 201 if done.created else 200)

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= INLINE_ANSWER_BYTES:
        response = await write_now(db, work)
    else:
        response = await write_in_thread(db, work)
    if response.status_code == 201:  # a repeat (200) stored nothing new
        metrics_of(request).submitted.inc()
    return response


@router.post("/assignments/{assignment_id}/skip", status_code=204)
async def skip(assignment_id: Id, request: Request) -> Response:
    db, settings = loop_context(request)

    def work(session: Session) -> Response:
        annotator = actor_in(session, request, loop=True)
        lease = assignments.skip(session, assignment_id=assignment_id, annotator=annotator, now=utcnow())
        project = load_project(session, lease.project_id) if lease is not None else None
        if lease is not None and project is not None:
            events = events_of(settings, annotator)
            if project.exam:  # a question skipped counts as answered wrong
                finished = exams.question_ended(session, project=project, annotator_id=annotator.id, now=utcnow())
                if finished is not None:
                    commit_waits(session)
                    exams.record_result(session, events, project=project, attempt=finished)
            events.record(session, project=project, action="task.skip", object_type="task", object_id=lease.task_id,
                          details={"assignment": lease.id})
        return Response(status_code=204)

    response = await write_now(db, work, synchronous_commit=settings.lease_synchronous_commit)
    metrics_of(request).skipped.inc()
    return response


@router.post("/assignments/{assignment_id}/renew", status_code=200, response_model=AssignmentRead)
async def renew(assignment_id: Id, request: Request) -> Response:
    """Extend the lease while the annotator is still working (the browser calls this)."""
    db, settings = loop_context(request)

    def work(session: Session) -> Response:
        actor = actor_in(session, request, loop=True)
        assignment = assignments.renew(session, assignment_id=assignment_id, annotator=actor, now=utcnow(),
                                       lease_seconds=settings.lease_seconds, idle_seconds=settings.idle_seconds)
        project = load_project(session, assignment.project_id)
        assert project is not None
        events_of(settings, actor).record(session, project=project, action="task.renew", object_type="task",
                                          object_id=assignment.task_id, details={"assignment": assignment.id})
        prefill = assignments.prefill(session, project=project, task_id=assignment.task_id)
        task = assignments.work_task(session, assignment.task_id)
        return lease_response(assignment_read(assignment, task, prefill, settings=settings), 200)

    return await write_now(db, work, synchronous_commit=settings.lease_synchronous_commit)
