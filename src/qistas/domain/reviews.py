"""The review stage and the customer's audit: people checking the crowd's results.

A settled task that the project's review policy holds (``domain.review_policy``) waits in
status ``review`` with its aggregated answer. A reviewer takes it on a lease, like an
annotator takes a task, and then:

- **accepts** it: the aggregated answer is delivered;
- **corrects** it: their answer, validated by the task type, is delivered instead (method
  ``review``, review status ``corrected``);
- **rejects** one answer with a reason: that answer stops counting, the annotator can read
  why, and the task goes back to the queue for exactly one more annotation (then the policy
  decides again; a task sent back is always reviewed again).

Each verdict is evidence about the annotators whose answers were judged
(``gold.record_review``). The customer may then audit a delivered task: accept it, or reject
it with a reason, which reopens it for one more annotation or straight for review
(``review.reopen``) and is announced as ``task.audit_rejected``.

Invariants, and what keeps each one:

1. Two reviewers never hold one task: a claim sets ``tasks.review_until`` with an UPDATE
   guarded by ``review_until`` being free, on a row the claim has locked (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
2. One review per task, stage and round: the review row is locked at submit; a repeat returns
   the stored review; and a unique index on submitted (task, stage, round) backs it up.
3. A stale lease (expired, or its task moved on: canceled, another round) answers 409 and
   changes nothing.
4. A rejection gives back exactly one slot: the rejected answer leaves ``n_annotations`` and
   ``n_claimed`` in the same UPDATE that reopens the task.
5. One audit per task and round: the caller locks the task row (``audit_task``), so of two
   audits at once the second finds the first's and answers 409; the unique index backs it up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from qistas.db.dialect import locks_claimed_rows
from qistas.db.enums import (
    AuditStatus,
    BatchStatus,
    LeaseStatus,
    ReviewAction,
    ReviewStage,
    ReviewStatus,
    TaskStatus,
)
from qistas.db.models import Annotation, Assignment, Batch, Project, Review, Task, User, WorkerStats
from qistas.db.queries import assignments as assignment_queries
from qistas.db.queries import reviews as queries
from qistas.domain import gold as gold_rules
from qistas.domain import model_annotators, outbox
from qistas.domain.jsonsafe import check_storable
from qistas.domain.projects import complete_batch_if_done
from qistas.domain.quality import agreement
from qistas.domain.review_policy import ReviewPolicy, holds, parse_policy
from qistas.domain.tasktypes import Spec, parse_spec, validate_answer
from qistas.errors import Conflict, Invalid, NotFound

MAX_REASON = 2000
METHOD = "review"  # the method of a result a reviewer corrected


# --- which settled tasks wait for review ---------------------------------------------------


def holds_for_review(session: Session, *, task: Task, project: Project, spec: Spec, answers: Sequence[Any],
                     response: Any, confidence: float | None, needs_review: bool) -> bool:
    """Whether a task whose answers are all in waits for a reviewer rather than being delivered.

    "Disagreement" is the aggregator's ``needs_review`` or any answer that does not match the
    result within the type's tolerance.
    """
    if not project.review_policy:
        return False  # the common case, without parsing anything
    policy = parse_policy(project.review_policy)
    if not policy.active:
        return False
    if task.review_status == ReviewStatus.REJECTED or task.audit_status == AuditStatus.REJECTED:
        return True  # sent back by a reviewer or the customer: checked again
    counted = queries.COUNTED.all(session, task_id=task.id)
    if any(answer.fraud_status == gold_rules.PROBATION for answer in counted):
        return True  # an annotator on probation for fraud (domain.fraud): every answer is checked
    disagree = policy.disagreement and (needs_review or agreement(spec, answers, response) < 1)
    return holds(policy, task_id=task.id, confidence=confidence, needs_review=disagree,
                 on_probation=_on_probation(session, counted=counted, project_id=project.id, policy=policy))


def _on_probation(session: Session, *, counted: Sequence[Any], project_id: int, policy: ReviewPolicy) -> bool:
    """Whether one of the task's counted answers is among its annotator's first ``probation``
    answers in the project. Each check reads at most ``probation`` entries of the
    (project, annotator, id) index: it counts the earlier answers only up to the limit."""
    if policy.probation <= 0:
        return False
    for answer in counted:
        earlier = queries.EARLIER.first(session, project_id=project_id, annotator_id=answer.annotator_id,
                                        annotation_id=answer.id, limit=policy.probation)
        if earlier is None or earlier.n < policy.probation:
            return True
    return False


# --- reviewers: take, then accept / correct / reject ---------------------------------------


@dataclass(frozen=True)
class ReviewLease:
    review: Review
    task: Task
    answers: list[Any]  # the counted annotations: (id, annotator_id, answer)

    def judged(self, spec: Spec) -> list[tuple[Any, bool]]:
        """Each counted answer, and whether it matches the aggregated one within the type's tolerance."""
        result = self.task.response
        return [(row, result is not None and gold_rules.matches(spec, row.answer, result)) for row in self.answers]


def claim(session: Session, *, project: Project, reviewer: User, now: datetime,
          lease_seconds: int) -> ReviewLease | None:
    """Lease the next task waiting for review to the reviewer, or None when none waits.

    A reviewer holding a live review lease in the project gets it back. Never a task the
    reviewer annotated: nobody checks their own work.
    """
    locked = locks_claimed_rows(session)
    if locked:  # one reviewer's claims in a project queue, as an annotator's do
        assignment_queries.CLAIMER_LOCK.first(session, annotator_key=_int4(reviewer.id),
                                              project_key=_int4(-project.id))
    held = session.scalar(
        select(Review).where(Review.project_id == project.id, Review.reviewer_id == reviewer.id,
                             Review.stage == ReviewStage.REVIEW, Review.status == LeaseStatus.ACTIVE,
                             Review.expires_at > now).limit(1)
    )
    if held is not None:
        task = session.get(Task, held.task_id)
        assert task is not None
        if task.status == TaskStatus.REVIEW and task.review_round == held.round:
            return ReviewLease(held, task, counted_answers(session, task_id=task.id))
        held.status, held.ended_at = LeaseStatus.EXPIRED, now
    seen = select(Assignment.id).where(Assignment.task_id == Task.id, Assignment.annotator_id == reviewer.id).exists()
    free = or_(Task.review_until.is_(None), Task.review_until <= now)
    query = (select(Task).where(Task.project_id == project.id, Task.status == TaskStatus.REVIEW, free, ~seen)
             .order_by(Task.id).limit(1))
    if locked:
        query = query.with_for_update(skip_locked=True)
    task = session.scalar(query)
    if task is None:
        return None
    expires_at = now + timedelta(seconds=lease_seconds)
    taken = session.execute(
        update(Task).where(Task.id == task.id, Task.status == TaskStatus.REVIEW, free)
        .values(review_until=expires_at).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if taken != 1:  # pragma: no cover - the row lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) prevents it
        return None
    task.review_until = expires_at
    # A lease that ran out on this task ends now: its reviewer's submit answers 409.
    session.execute(update(Review).where(Review.task_id == task.id, Review.stage == ReviewStage.REVIEW,
                                         Review.status == LeaseStatus.ACTIVE)
                    .values(status=LeaseStatus.EXPIRED, ended_at=now).execution_options(synchronize_session=False))
    review = Review(task_id=task.id, project_id=project.id, reviewer_id=reviewer.id, stage=ReviewStage.REVIEW,
                    round=task.review_round, status=LeaseStatus.ACTIVE, created_at=now, expires_at=expires_at)
    session.add(review)
    session.flush()
    return ReviewLease(review, task, counted_answers(session, task_id=task.id))


def release_all(session: Session, *, reviewer_id: int, now: datetime) -> int:
    """End a reviewer's live review leases (a deactivated account): their tasks wait for the
    next reviewer at once instead of until the leases run out. Returns how many."""
    held = list(session.scalars(select(Review).where(
        Review.reviewer_id == reviewer_id, Review.stage == ReviewStage.REVIEW, Review.status == LeaseStatus.ACTIVE,
        Review.expires_at > now).with_for_update()))
    for review in held:
        review.status, review.ended_at = LeaseStatus.RELEASED, now
        # the task's review_until is this lease's: a reviewer is leased only a task nobody holds
        session.execute(update(Task).where(Task.id == review.task_id, Task.review_round == review.round)
                        .values(review_until=None).execution_options(synchronize_session=False))
    session.flush()
    return len(held)


def _int4(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def counted_answers(session: Session, *, task_id: int) -> list[Any]:
    """The task's answers that count (none rejected), in the order they came."""
    return list(session.execute(
        select(Annotation.id, Annotation.annotator_id, Annotation.answer)
        .where(Annotation.task_id == task_id, Annotation.rejected_at.is_(None)).order_by(Annotation.id)
    ).all())


@dataclass(frozen=True)
class Reviewed:
    review: Review
    task: Task
    created: bool  # False when this repeated an earlier submit


def submit(
    session: Session, *, review_id: int, reviewer: User, action: str, answer: Any = None,
    reason: str | None = None, annotation_id: int | None = None, now: datetime,
) -> Reviewed:
    """Store the reviewer's verdict on their lease and apply it to the task."""
    review, task = _own_locked(session, review_id=review_id, reviewer=reviewer)
    if review.status == LeaseStatus.SUBMITTED:
        return Reviewed(review, task, created=False)
    _ensure_live(review, task, now)
    project = session.get(Project, task.project_id)
    assert project is not None
    spec = parse_spec(project.task_spec)
    answers = counted_answers(session, task_id=task.id)
    if action == ReviewAction.ACCEPT:
        _deliver(session, task=task, project=project, status=ReviewStatus.ACCEPTED, now=now)
    elif action == ReviewAction.CORRECT:
        if answer is None:
            raise Invalid("a correction needs the answer", details={"field": "answer"})
        normalised = validate_answer(spec, task.data, answer)
        check_storable(normalised, "answer")
        review.answer = normalised
        task.response, task.confidence, task.method, task.details = normalised, 1.0, METHOD, None
        task.needs_review = False
        _deliver(session, task=task, project=project, status=ReviewStatus.CORRECTED, now=now)
    elif action == ReviewAction.REJECT:
        review.reason = _reason(reason)
        rejected = _which(answers, annotation_id)
        review.annotation_id = rejected.id
        _send_back(session, task=task, annotation_id=rejected.id, reason=review.reason, now=now,
                   by_model=model_annotators.is_model(session, rejected.annotator_id))
        gold_rules.record_review(session, project=project, annotator_id=rejected.annotator_id, correct=False)
    else:
        raise Invalid("action must be accept, correct or reject", details={"field": "action"})
    if action != ReviewAction.REJECT:
        for row in answers:  # each answer judged against the delivered one
            gold_rules.record_review(session, project=project, annotator_id=row.annotator_id,
                                     correct=gold_rules.matches(spec, row.answer, task.response))
    review.status, review.action, review.ended_at = LeaseStatus.SUBMITTED, action, now
    session.flush()
    return Reviewed(review, task, created=True)


def renew(session: Session, *, review_id: int, reviewer: User, now: datetime, lease_seconds: int) -> Review:
    """Extend a live review lease while the reviewer is still at it."""
    review, task = _own_locked(session, review_id=review_id, reviewer=reviewer)
    _ensure_live(review, task, now)
    review.expires_at = task.review_until = now + timedelta(seconds=lease_seconds)
    session.flush()
    return review


def _own_locked(session: Session, *, review_id: int, reviewer: User) -> tuple[Review, Task]:
    """The reviewer's own review lease and its task, both locked (in that order); anyone
    else's is 404."""
    review = session.get(Review, review_id, with_for_update=True)
    if review is None or review.reviewer_id != reviewer.id or review.stage != ReviewStage.REVIEW:
        raise NotFound("review not found")
    task = session.get(Task, review.task_id, with_for_update=True)
    assert task is not None
    return review, task


def _ensure_live(review: Review, task: Task, now: datetime) -> None:
    if review.status != LeaseStatus.ACTIVE or review.expires_at is None or review.expires_at <= now:
        state = LeaseStatus.EXPIRED if review.status == LeaseStatus.ACTIVE else review.status
        raise Conflict(f"this review lease is no longer valid ({state}); take a new review")
    if task.status != TaskStatus.REVIEW or task.review_round != review.round:
        raise Conflict(f"this task no longer waits for this review (it is {task.status}); take a new review")


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise Invalid("a rejection needs a reason the annotator can learn from", details={"field": "reason"})
    if len(text) > MAX_REASON:
        raise Invalid(f"reason is longer than {MAX_REASON} characters", details={"field": "reason"})
    return text


def _which(answers: list[Any], annotation_id: int | None) -> Any:
    if annotation_id is None:
        if len(answers) == 1:
            return answers[0]
        raise Invalid("say which answer to reject (annotation)", details={"field": "annotation"})
    for row in answers:
        if row.id == annotation_id:
            return row
    raise Invalid("annotation is not an answer of this task that still counts", details={"field": "annotation"})


def _deliver(session: Session, *, task: Task, project: Project, status: str, now: datetime) -> None:
    task.status, task.review_status, task.completed_at, task.review_until = TaskStatus.COMPLETED, status, now, None
    session.flush()
    outbox.enqueue(session, event="task.completed", task=task)
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            complete_batch_if_done(session, batch=batch)


def _send_back(session: Session, *, task: Task, annotation_id: int, reason: str, now: datetime,
               by_model: bool = False) -> None:
    """The answer stops counting; the task waits for exactly one more person's annotation (a
    model's answer held no person's slot: one more is asked for)."""
    session.execute(update(Annotation).where(Annotation.id == annotation_id)
                    .values(rejected_at=now, rejection_reason=reason).execution_options(synchronize_session=False))
    if by_model:
        task.required += 1
    else:
        task.n_annotations -= 1
        task.n_claimed -= 1
    task.status, task.review_status = TaskStatus.PENDING, ReviewStatus.REJECTED
    task.review_round += 1
    task.review_until = task.response = task.confidence = task.method = task.details = task.completed_at = None
    task.needs_review = False
    session.flush()


# --- the customer's audit ----------------------------------------------------------------


def audit_task(session: Session, *, task: Task, project: Project, actor: User, accepted: bool,
               reason: str | None, now: datetime) -> Review:
    """The customer's verdict on a delivered task; a rejection reopens it (``review.reopen``).

    ``task`` must be loaded locked (``with_for_update``): two audits at once then run one after
    the other."""
    if not isinstance(accepted, bool):
        raise Invalid("accepted must be true or false", details={"field": "accepted"})
    if task.status != TaskStatus.COMPLETED:
        raise Conflict(f"only a delivered (completed) task can be audited; this one is {task.status}",
                       details={"field": "task"})
    if not auditable(task, history(session, task_id=task.id)):
        raise Conflict("this task was already audited; a rejection reopens it for another round",
                       details={"field": "task"})
    audit = Review(task_id=task.id, project_id=project.id, reviewer_id=actor.id, stage=ReviewStage.AUDIT,
                   round=task.review_round, status=LeaseStatus.SUBMITTED,
                   action=ReviewAction.ACCEPT if accepted else ReviewAction.REJECT,
                   reason=None if accepted else _reason(reason), created_at=now, ended_at=now)
    session.add(audit)
    spec = parse_spec(project.task_spec)
    if accepted:
        task.audit_status = AuditStatus.ACCEPTED
        session.flush()
        return audit
    task.audit_status = AuditStatus.REJECTED
    reviewed = session.scalar(select(Review.id).where(Review.task_id == task.id, Review.stage == ReviewStage.REVIEW,
                                                      Review.round == task.review_round,
                                                      Review.status == LeaseStatus.SUBMITTED))
    if reviewed is None:  # a reviewed task's answers were judged once already: the audit scores the reviewer
        for row in counted_answers(session, task_id=task.id):  # the answers behind the rejected result
            if gold_rules.matches(spec, row.answer, task.response):
                gold_rules.record_review(session, project=project, annotator_id=row.annotator_id, correct=False)
    session.flush()
    outbox.enqueue(session, event="task.audit_rejected", task=task,
                   audit={"reason": audit.reason, "at": now.isoformat()})
    _reopen(session, task=task, policy=parse_policy(project.review_policy))
    return audit


def recheck(session: Session, *, task: Task) -> None:
    """Send a delivered task back to review (from the list of likely label errors): it waits in
    status ``review`` for a reviewer, in a new round, whatever the project's review policy."""
    if task.status != TaskStatus.COMPLETED:
        raise Conflict(f"only a delivered (completed) task can be sent to review; this one is {task.status}",
                       details={"field": "task"})
    if task.is_gold:
        raise Conflict("a gold task's answer is known: it is not sent to review", details={"field": "task"})
    _reopen(session, task=task, policy=ReviewPolicy(reopen="review"))


def _reopen(session: Session, *, task: Task, policy: ReviewPolicy) -> None:
    task.review_round += 1
    task.completed_at = task.review_until = None
    if policy.reopen == "review":
        task.status, task.review_status = TaskStatus.REVIEW, ReviewStatus.PENDING
    else:
        task.status = TaskStatus.PENDING
        task.required += 1  # one more annotation; its n_claimed slot is free
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None and batch.status == BatchStatus.COMPLETED:
            batch.status = BatchStatus.IN_PROGRESS  # a reopened task is served again
    session.flush()


# --- what annotators, customers and the console read -------------------------------------


def review_of(task: Task) -> dict[str, str]:
    """The ``review`` field of a result."""
    return {"status": task.review_status, "audit": task.audit_status}


def rejections(session: Session, *, project_id: int, annotator_id: int, limit: int) -> list[Any]:
    """An annotator's own answers that were sent back, newest first, with the reason and the
    task's data (which they saw when they answered)."""
    return list(session.execute(
        select(Annotation.id, Annotation.task_id, Annotation.answer, Annotation.rejection_reason,
               Annotation.rejected_at, Task.data)
        .join(Task, Task.id == Annotation.task_id)
        .where(Annotation.project_id == project_id, Annotation.annotator_id == annotator_id,
               Annotation.rejected_at.is_not(None), Annotation.excluded_at.is_(None))
        .order_by(Annotation.rejected_at.desc(), Annotation.id.desc()).limit(limit)
    ).all())


def waiting(session: Session, *, project_ids: Sequence[int], reviewer_id: int) -> dict[int, int]:
    """Per project, the tasks waiting for review that this reviewer may take (not their own)."""
    if not project_ids:
        return {}
    seen = select(Assignment.id).where(Assignment.task_id == Task.id, Assignment.annotator_id == reviewer_id).exists()
    rows = session.execute(
        select(Task.project_id, func.count()).where(Task.project_id.in_(project_ids),
                                                    Task.status == TaskStatus.REVIEW, ~seen)
        .group_by(Task.project_id)
    )
    return {project_id: n for project_id, n in rows}


def history(session: Session, *, task_id: int) -> list[Review]:
    """The verdicts given on a task, reviewers' and the customer's, oldest first."""
    return list(session.scalars(select(Review).where(Review.task_id == task_id,
                                                     Review.status == LeaseStatus.SUBMITTED)
                                .order_by(Review.ended_at, Review.id)))


def auditable(task: Task, verdicts: Sequence[Review]) -> bool:
    """Whether the customer may audit the task now: delivered, and not audited in this round."""
    return task.status == TaskStatus.COMPLETED and not any(
        v.stage == ReviewStage.AUDIT and v.round == task.review_round for v in verdicts)


def report(session: Session, *, project: Project, name: Callable[[int], str]) -> dict[str, Any]:
    """The review section of a project's quality report: the queue, verdicts, each annotator's
    pass rate, each reviewer's agreement with the customer's audit, corrections per day."""
    waiting = session.scalar(select(func.count()).select_from(Task).where(
        Task.project_id == project.id, Task.status == TaskStatus.REVIEW)) or 0
    verdicts: dict[str, dict[str, int]] = {ReviewStage.REVIEW: {}, ReviewStage.AUDIT: {}}
    for stage, action, n in session.execute(
        select(Review.stage, Review.action, func.count()).where(
            Review.project_id == project.id, Review.status == LeaseStatus.SUBMITTED)
        .group_by(Review.stage, Review.action)
    ):
        verdicts[stage][action or ""] = n
    annotators = [
        {"annotator": name(row.annotator_id), "reviewed": row.n_reviewed,
         "pass_rate": round(1 - row.n_rejected / row.n_reviewed, 4)}
        for row in session.execute(select(WorkerStats.annotator_id, WorkerStats.n_reviewed, WorkerStats.n_rejected)
                                   .where(WorkerStats.project_id == project.id, WorkerStats.n_reviewed > 0)
                                   .order_by(WorkerStats.n_reviewed.desc()).limit(200))
    ]
    return {
        "waiting": waiting,
        "reviews": verdicts[ReviewStage.REVIEW],
        "audits": verdicts[ReviewStage.AUDIT],
        "annotators": annotators,
        "reviewers": _reviewer_agreement(session, project_id=project.id, name=name),
        "corrections_by_day": _corrections_by_day(session, project_id=project.id),
    }


def _reviewer_agreement(session: Session, *, project_id: int, name: Callable[[int], str]) -> list[dict[str, Any]]:
    """Each reviewer scored by the senior verdict: of the tasks they passed (accepted or
    corrected) that the customer then audited, the share the customer accepted."""
    reviewed = Review.__table__.alias("reviewed")
    audited = Review.__table__.alias("audited")
    rows = session.execute(
        select(reviewed.c.reviewer_id, func.count(), func.count(audited.c.id),
               func.sum(case((audited.c.action == ReviewAction.ACCEPT, 1), else_=0)))
        .select_from(reviewed.outerjoin(audited, and_(
            audited.c.task_id == reviewed.c.task_id, audited.c.round == reviewed.c.round,
            audited.c.stage == ReviewStage.AUDIT, audited.c.status == LeaseStatus.SUBMITTED)))
        .where(reviewed.c.project_id == project_id, reviewed.c.stage == ReviewStage.REVIEW,
               reviewed.c.status == LeaseStatus.SUBMITTED,
               reviewed.c.action.in_([ReviewAction.ACCEPT, ReviewAction.CORRECT]))
        .group_by(reviewed.c.reviewer_id).order_by(func.count().desc()).limit(200)
    )
    return [{"reviewer": name(reviewer_id), "reviews": n, "audited": n_audited,
             "audit_agreement": round((agreed or 0) / n_audited, 4) if n_audited else None}
            for reviewer_id, n, n_audited, agreed in rows]


def _corrections_by_day(session: Session, *, project_id: int) -> list[dict[str, Any]]:
    day = func.date(Review.ended_at)
    rows = session.execute(
        select(day, func.count()).where(Review.project_id == project_id, Review.stage == ReviewStage.REVIEW,
                                        Review.action == ReviewAction.CORRECT,
                                        Review.status == LeaseStatus.SUBMITTED)
        .group_by(day).order_by(day.desc()).limit(90)
    )
    return [{"day": str(d), "corrections": n} for d, n in rows]

