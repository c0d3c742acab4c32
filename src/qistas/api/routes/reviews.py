"""The review stage (reviewers take and judge tasks) and the customer's audit of delivered tasks."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, AppSettings, Db, Id, Limit
from qistas.api.routes.tasks import task_read
from qistas.api.schemas.reviews import (
    AuditCreate,
    RejectionRead,
    ReviewCreate,
    ReviewedAnswer,
    ReviewLeaseRead,
    ReviewRead,
)
from qistas.api.schemas.tasks import TaskRead, TaskWorkView
from qistas.db.models import Project, Review, Task, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, media, reviews
from qistas.domain.security import pseudonym, pseudonyms
from qistas.domain.tasktypes import parse_spec
from qistas.errors import NotFound
from qistas.policies import ensure_annotator_access, ensure_customer_access_to, ensure_reviewer_access

router = APIRouter(tags=["review"])


def _record(session: Session, secret: str, *, actor: User, action: str, task_id: int, project: Project,
            details: dict[str, int | str]) -> None:
    audit.record(session, actor=actor, action=action, object_type="task", object_id=task_id, org_id=project.org_id,
                 details=details, pseudonym=pseudonyms(secret, project.id))


def review_read(review: Review) -> ReviewRead:
    return ReviewRead(id=review.id, task_id=review.task_id, stage=review.stage, action=review.action or "",
                      answer=review.answer, reason=review.reason, annotation=review.annotation_id,
                      created_at=review.created_at, ended_at=review.ended_at, expires_at=review.expires_at)


@router.post("/projects/{project_id}/reviews", status_code=201, response_model=ReviewLeaseRead,
             responses={204: {"description": "no task waits for this reviewer"}})
def take_review(project_id: Id, actor: Actor, db: Db, settings: AppSettings) -> ReviewLeaseRead | Response:
    """Take the next task waiting for review (or the one this reviewer already holds)."""
    secret = settings.secret_key or ""

    def work(session: Session) -> ReviewLeaseRead | Response:
        project = ensure_reviewer_access(actor, session.get(Project, project_id))
        lease = reviews.claim(session, project=project, reviewer=actor, now=utcnow(),
                              lease_seconds=settings.lease_seconds)
        if lease is None:
            return Response(status_code=204)
        task = lease.task
        judged = lease.judged(parse_spec(project.task_spec))
        # The answer carries the task's data and its answers: a read of customer data.
        _record(session, secret, actor=actor, action="review.take", task_id=task.id, project=project,
                details={"review": lease.review.id})
        assert lease.review.expires_at is not None
        expires = media.url_expiry(settings, lease_expires=lease.review.expires_at, now=utcnow())
        data = media.present(task.data, secret=secret, scope=f"r{lease.review.id}", expires=expires)
        return ReviewLeaseRead(
            id=lease.review.id, project_id=project.id, task=TaskWorkView(id=task.id, data=data),
            answers=[ReviewedAnswer(id=row.id, annotator=pseudonym(secret, project.id, row.annotator_id),
                                    answer=row.answer, agrees=agrees) for row, agrees in judged],
            response=task.response, confidence=task.confidence, expires_at=lease.review.expires_at,
        )

    return write(db, work)


@router.post("/reviews/{review_id}", status_code=201, response_model=ReviewRead,
             responses={200: {"description": "a repeat: the review stored the first time"}})
def submit_review(review_id: Id, body: ReviewCreate, actor: Actor, db: Db, settings: AppSettings,
                  response: Response) -> ReviewRead:
    """Accept the aggregated answer, correct it, or reject one answer with a reason."""
    secret = settings.secret_key or ""

    def work(session: Session) -> ReviewRead:
        done = reviews.submit(session, review_id=review_id, reviewer=actor, action=body.action, answer=body.answer,
                              reason=body.reason, annotation_id=body.annotation, now=utcnow())
        if done.created:
            project = session.get(Project, done.task.project_id)
            assert project is not None
            _record(session, secret, actor=actor, action=f"review.{body.action}", task_id=done.task.id,
                    project=project, details={"review": done.review.id})
        else:
            response.status_code = 200
        return review_read(done.review)

    return write(db, work)


@router.post("/reviews/{review_id}/renew", response_model=ReviewRead)
def renew_review(review_id: Id, actor: Actor, db: Db, settings: AppSettings) -> ReviewRead:
    """Extend the review lease while the reviewer is still at it (the browser calls this)."""

    def work(session: Session) -> ReviewRead:
        return review_read(reviews.renew(session, review_id=review_id, reviewer=actor, now=utcnow(),
                                         lease_seconds=settings.lease_seconds))

    return write(db, work)


@router.post("/tasks/{task_id}/audit", status_code=201, response_model=TaskRead)
def audit_task(task_id: Id, body: AuditCreate, actor: Actor, db: Db) -> TaskRead:
    """The customer accepts a delivered task, or rejects it with a reason (it reopens)."""

    def work(session: Session) -> TaskRead:
        # Locked: of two audits of one task at once, the second waits and then finds it audited.
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise NotFound("task not found")
        project = ensure_customer_access_to(actor, session.get(Project, task.project_id), what="task")
        verdict = reviews.audit_task(session, task=task, project=project, actor=actor, accepted=body.accepted,
                                     reason=body.reason, now=utcnow())
        audit.record(session, actor=actor, action="task.audit", object_type="task", object_id=task.id,
                     org_id=project.org_id, details={"accepted": body.accepted, "review": verdict.id})
        return task_read(task)

    return write(db, work)


@router.post("/tasks/{task_id}/recheck", response_model=TaskRead)
def recheck_task(task_id: Id, actor: Actor, db: Db) -> TaskRead:
    """Send a delivered task (one of the likely label errors, say) to review, in a new round."""

    def work(session: Session) -> TaskRead:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("task not found")
        project = ensure_customer_access_to(actor, session.get(Project, task.project_id), what="task")
        reviews.recheck(session, task=task)
        audit.record(session, actor=actor, action="task.recheck", object_type="task", object_id=task.id,
                     org_id=project.org_id, details={"round": task.review_round})
        return task_read(task)

    return write(db, work)


@router.get("/projects/{project_id}/rejections", response_model=list[RejectionRead])
def my_rejections(project_id: Id, actor: Actor, db: Db, limit: Limit) -> list[RejectionRead]:
    """An annotator's own answers in the project that were sent back, newest first, and why."""

    def work(session: Session) -> list[RejectionRead]:
        project = ensure_annotator_access(actor, session.get(Project, project_id))
        rows = reviews.rejections(session, project_id=project.id, annotator_id=actor.id, limit=limit)
        return [RejectionRead(annotation=r.id, task_id=r.task_id, answer=r.answer, reason=r.rejection_reason,
                              rejected_at=r.rejected_at) for r in rows]

    return read(db, work)
