"""Qualification exams (docs/workforce.md#exams): a project of gold tasks, its settings and attempts.

The exam's organization (owners, members; admins) sets it up and reads every attempt, with the
annotators as pseudonyms; an annotator who may work on the project starts attempts and reads
their own. The questions themselves go through the annotation loop (``routes/work.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, After, AppSettings, Credentials, Db, Id, Limit, actor_in
from qistas.api.schemas.exams import AttemptPage, AttemptRead, ExamPut, ExamRead
from qistas.db.enums import Role
from qistas.db.models import ExamAttempt, Project, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import exams, projects
from qistas.domain.security import pseudonym
from qistas.policies import ensure_annotator_access, ensure_customer_access, ensure_project_visible

router = APIRouter(tags=["exams"])


def exam_read(session: Session, actor: User, project: Project) -> ExamRead:
    settings = exams.exam_of(project)
    staff = actor.role != Role.ANNOTATOR
    return ExamRead(id=project.id, name=project.name if staff else project.work_name, **settings.view(),
                    gold_tasks=exams.gold_tasks(session, project_id=project.id) if staff else None)


def attempt_read(attempt: ExamAttempt, annotator: str | None = None) -> AttemptRead:
    finished = attempt.status != exams.OPEN
    return AttemptRead(id=attempt.id, exam=attempt.project_id, number=attempt.number, status=attempt.status,
                       questions=attempt.questions, served=attempt.n_served, answered=attempt.n_answered,
                       score=attempt.score if finished else None,
                       passed=attempt.status == exams.PASSED if finished else None, pass_mark=attempt.pass_mark,
                       started_at=attempt.started_at, finished_at=attempt.finished_at, annotator=annotator)


@router.put("/projects/{project_id}/exam", response_model=ExamRead)
def put_exam(project_id: Id, body: ExamPut, actor: Actor, db: Db) -> ExamRead:
    """Make the project an exam, or change its settings (attempts begun keep theirs)."""
    raw = body.model_dump()

    def work(session: Session) -> ExamRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        exams.set_exam(session, project=project, actor=actor, raw=raw)
        return exam_read(session, actor, project)

    return write(db, work)


@router.get("/projects/{project_id}/exam", response_model=ExamRead)
def get_exam(project_id: Id, actor: Actor, db: Db) -> ExamRead:
    def work(session: Session) -> ExamRead:
        return exam_read(session, actor, ensure_project_visible(actor, session.get(Project, project_id)))

    return read(db, work)


@router.get("/exams", response_model=list[ExamRead])
def list_exams(actor: Actor, db: Db) -> list[ExamRead]:
    """The exams you may see: an annotator's are those open to them, an organization's its own."""
    def work(session: Session) -> list[ExamRead]:
        return [exam_read(session, actor, p) for p in projects.list_projects(session, actor=actor) if p.exam]

    return read(db, work)


@router.post("/projects/{project_id}/exam/attempts", status_code=201, response_model=AttemptRead,
             responses={200: {"description": "your attempt already open"}})
def start_attempt(project_id: Id, request: Credentials, db: Db) -> Response:
    """Begin an attempt (an annotator who may work on the project); the open one if there is."""
    def work(session: Session) -> Response:
        actor = actor_in(session, request, loop=True)  # a token of scope "annotate" may
        project = ensure_annotator_access(actor, session.get(Project, project_id))
        attempt, created = exams.start_attempt(session, project=project, annotator=actor, now=utcnow())
        body = attempt_read(attempt).model_dump_json().encode()
        return Response(body, status_code=201 if created else 200, media_type="application/json")

    return write(db, work)


@router.get("/projects/{project_id}/exam/attempts", response_model=AttemptPage)
def list_attempts(project_id: Id, actor: Actor, db: Db, settings: AppSettings, limit: Limit,
                  after: After = None) -> AttemptPage:
    """An annotator's own attempts; to the exam's organization, everyone's (pseudonymous): a page
    at a time, oldest first."""
    def work(session: Session) -> AttemptPage:
        project = ensure_project_visible(actor, session.get(Project, project_id))
        exams.exam_of(project)
        if actor.role == Role.ANNOTATOR:
            page = exams.attempts_at(session, project_id=project.id, after=after, limit=limit, annotator_id=actor.id)
            items = [attempt_read(a) for a in page]
        else:
            project = ensure_customer_access(actor, project)
            secret = settings.secret_key or ""
            page = exams.attempts_at(session, project_id=project.id, after=after, limit=limit)
            items = [attempt_read(a, pseudonym(secret, project.id, a.annotator_id)) for a in page]
        return AttemptPage(items=items, next=page[-1].id if len(page) == limit else None)

    return read(db, work)
