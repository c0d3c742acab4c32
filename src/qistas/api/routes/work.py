"""The annotator's loop: take a task, submit or skip it, keep the lease alive."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from qistas.api.deps import AppSettings, Credentials, Db, Id, actor_in, write
from qistas.api.schemas.tasks import AssignmentRead, SubmitCreate, SubmittedRead, TaskWorkView
from qistas.db.models import Assignment, Project, Task
from qistas.db.types import utcnow
from qistas.domain import assignments
from qistas.domain.annotations import submit as store_answer
from qistas.policies import ensure_annotator_access

router = APIRouter(tags=["work"])


def assignment_read(assignment: Assignment, task: Task) -> AssignmentRead:
    return AssignmentRead(id=assignment.id, project_id=assignment.project_id,
                          task=TaskWorkView(id=task.id, data=task.data), expires_at=assignment.expires_at)


@router.post("/projects/{project_id}/assignments", status_code=201, response_model=AssignmentRead,
             responses={204: {"description": "nothing is left for this annotator"}})
def take(project_id: Id, request: Credentials, db: Db, settings: AppSettings) -> AssignmentRead | Response:
    def work(session: Session) -> AssignmentRead | None:
        actor = actor_in(session, request)
        project = ensure_annotator_access(actor, session.get(Project, project_id))
        claimed = assignments.claim(session, project=project, annotator=actor, now=utcnow(),
                                    lease_seconds=settings.lease_seconds)
        return assignment_read(*claimed) if claimed else None

    result = write(db, work)
    return result if result is not None else Response(status_code=204)


@router.post("/assignments/{assignment_id}/submit", status_code=201, response_model=SubmittedRead)
def submit(assignment_id: Id, body: SubmitCreate, request: Credentials, db: Db, response: Response) -> SubmittedRead:
    def work(session: Session) -> tuple[SubmittedRead, bool]:
        done = store_answer(session, assignment_id=assignment_id, annotator=actor_in(session, request),
                                  answer=body.answer, seconds=body.seconds, now=utcnow())
        a = done.annotation
        return SubmittedRead(id=a.id, assignment_id=a.assignment_id, task_id=a.task_id, answer=a.answer,
                             seconds=a.seconds, created_at=a.created_at, feedback=done.feedback), done.created

    read, created = write(db, work)
    if not created:
        response.status_code = 200  # a repeat: the annotation stored the first time
    return read


@router.post("/assignments/{assignment_id}/skip", status_code=204)
def skip(assignment_id: Id, request: Credentials, db: Db) -> Response:
    write(db, lambda session: assignments.skip(session, assignment_id=assignment_id,
                                               annotator=actor_in(session, request), now=utcnow()))
    return Response(status_code=204)


@router.post("/assignments/{assignment_id}/renew", response_model=AssignmentRead)
def renew(assignment_id: Id, request: Credentials, db: Db, settings: AppSettings) -> AssignmentRead:
    """Extend the lease while the annotator is still working (the browser calls this)."""

    def work(session: Session) -> AssignmentRead:
        actor = actor_in(session, request)
        assignment = assignments.renew(session, assignment_id=assignment_id, annotator=actor, now=utcnow(),
                                       lease_seconds=settings.lease_seconds)
        task = session.get(Task, assignment.task_id)
        assert task is not None
        return assignment_read(assignment, task)

    return write(db, work)
