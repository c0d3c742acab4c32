"""Submitting an answer: validate, store once, and complete the task when it has enough.

Invariant 4: a repeated submit of the same lease returns the stored annotation and stores
nothing new (the assignment row is locked, and a unique constraint on assignment_id backs it
up). Invariant 5: a lease that expired, was skipped or belongs to someone else answers 409
(or 404) and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from qistas.db.dialect import locks_claimed_rows
from qistas.db.enums import LeaseStatus, ReviewStatus, TaskStatus
from qistas.db.models import Batch, ExamAttempt, Project, Task, User
from qistas.db.queries import annotations as queries
from qistas.db.queries import gold as gold_queries
from qistas.db.queries.annotations import StoredAnswer
from qistas.domain import audit, exams, model_annotators, outbox, pay, predictions, quality, reviews
from qistas.domain import gold as gold_rules
from qistas.domain.aggregation import decide
from qistas.domain.jsonsafe import check_storable
from qistas.domain.projects import complete_batch_if_done
from qistas.domain.tasktypes import parse_spec, validate_answer
from qistas.errors import Conflict, Invalid, NotFound

MAX_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Submitted:
    annotation: StoredAnswer
    created: bool  # False when this was a repeat of an earlier submit
    feedback: dict[str, Any] | None = None  # on gold tasks of training projects only
    attempt: ExamAttempt | None = None  # an exam's attempt this answer finished


def submit(
    session: Session,
    *,
    assignment_id: int,
    annotator: User,
    answer: Any,
    seconds: float | None,
    now: datetime,
    idle_seconds: int = pay.IDLE_SECONDS,
    events: audit.LoopEvents | None = None,
) -> Submitted:
    """Store the answer once. ``seconds`` is the client's own report, kept as given; the time
    that pays is the server's (``domain.pay``: the lease's active time, idle stretches capped at
    ``idle_seconds``), written with the answer's earning in the same INSERT. ``events``: a new
    answer is recorded in the audit log (``annotation.create``), after the result of the exam
    attempt it finishes, if any (a repeat records nothing)."""
    # Lock order everywhere: assignment, then task (both by this one statement).
    found = queries.SUBMITTING.first(session, assignment_id=assignment_id)
    if found is None or found.lease.annotator_id != annotator.id:
        raise NotFound("assignment not found")
    assignment, task, project = found
    if assignment.status == LeaseStatus.SUBMITTED:
        stored = queries.STORED.first(session, assignment_id=assignment.id)
        assert stored is not None
        return Submitted(stored, created=False)
    if assignment.status != LeaseStatus.ACTIVE or assignment.expires_at <= now:
        state = LeaseStatus.EXPIRED if assignment.status == LeaseStatus.ACTIVE else assignment.status
        raise Conflict(f"this lease is no longer valid ({state}); take a new task")
    if seconds is not None and not 0 <= seconds <= MAX_SECONDS:
        raise Invalid(f"seconds must be between 0 and {MAX_SECONDS}", details={"field": "seconds"})
    if task.status != TaskStatus.PENDING:
        raise Conflict(f"this task is {task.status}; take a new task")
    spec = parse_spec(project.task_spec)
    # The type's bounds first (element counts, then each element), so an oversized answer is
    # refused before anything walks all of it; what is stored is the normalised answer.
    normalised = validate_answer(spec, task.data, answer)
    check_storable(normalised, "answer")
    gold_correct = gold_rules.matches(spec, normalised, task.gold) if task.is_gold else None

    prefill_model, prefill_kept = predictions.anchoring(project.prefill, task.predictions, normalised)
    active = pay.active_ms(created_at=assignment.created_at, seen_at=assignment.seen_at,
                           counted_ms=assignment.active_ms, now=now, idle_seconds=idle_seconds)
    pay_minor, pay_currency = pay.earned(project.pay, active=active)
    values = {"assignment_id": assignment.id, "task_id": task.id, "project_id": project.id,
              "annotator_id": annotator.id, "answer": normalised, "seconds": seconds,
              "gold_correct": gold_correct, "created_at": now, "prefill_model": prefill_model,
              "prefill_kept": prefill_kept, "active_ms": active,
              "pay_minor": pay_minor, "pay_currency": pay_currency}
    counts = gold_rules.answer_counts(project_id=project.id, annotator_id=annotator.id, seconds=seconds,
                                      gold_correct=gold_correct)
    # The answer stored, the lease closed, the task's count and the annotator's moved: the lease
    # and the task are locked by this transaction, so these are plain UPDATEs. The lease's slot
    # in n_claimed now holds this annotation.
    in_one_statement = locks_claimed_rows(session)
    # There, its audit event goes with it, but an exam's, which follows the attempt's result (below).
    stored_event = in_one_statement and events is not None and not project.exam
    if in_one_statement:  # PostgreSQL: one statement, one round trip
        event = events.params(project=project, action=ANSWERED, object_type="task", at=now) \
            if events is not None and stored_event else audit.NO_EVENT
        written = queries.STORE.first(session, **values, now=now, **counts, record_event=stored_event, **event)
        assert written is not None
        made_id, counted = written.id, written.counted()
    else:  # SQLite: each statement costs microseconds, and SQLite has no UPDATE in a WITH
        made = queries.NEW_ANNOTATION.first(session, **values)
        assert made is not None
        queries.CLOSE_LEASE.run(session, assignment_id=assignment.id, now=now)
        queries.COUNT_ANSWER.run(session, task_id=task.id)
        made_id, counted = made.id, gold_queries.COUNT_ANSWER.first(session, **counts)
    annotation = StoredAnswer(made_id, assignment.id, task.id, normalised, seconds, now)
    set_committed_value(task, "n_annotations", task.n_annotations + 1)  # mirrored on the object
    gold_rules.answer_counted(session, project=project, counts=counts, gold_correct=gold_correct, counted=counted)
    if not task.is_gold:  # gold tasks never complete: they keep measuring annotators
        settle(session, task=task, project=project, spec=spec, now=now)
    feedback = finished = None
    if project.exam:  # an exam's question: counted in the attempt, its gold answer never shown
        if gold_correct is not None:
            finished = exams.count_answer(session, project=project, annotator_id=annotator.id,
                                          correct=gold_correct, now=now)
    elif gold_correct is not None and gold_rules.parse_policy(project.gold_policy).feedback:
        feedback = {"correct": gold_correct, "expected": task.gold}
    if events is not None and not stored_event:
        if finished is not None:
            exams.record_result(session, events, project=project, attempt=finished)
        events.record(session, project=project, action=ANSWERED, object_type="task", object_id=task.id,
                      details={"annotation": made_id}, at=now)
    return Submitted(annotation, created=True, feedback=feedback, attempt=finished)


ANSWERED = "annotation.create"


def settle(session: Session, *, task: Task, project: Project, spec: Any, now: datetime) -> None:
    """Complete the task, or raise how many annotations it needs, after a new one.

    ``n_annotations`` and ``required`` count people's answers; every counted answer, a model's
    too, goes into the consensus."""
    if task.n_annotations < task.required:
        return
    rows = queries.ANSWERS.all(session, task_id=task.id)
    consensus = quality.task_consensus(session, project=project, spec=spec, task_id=task.id, data=task.data,
                                       answers=rows)
    confidence = consensus.confidence
    if project.redundancy_target is None and project.redundancy_max > project.redundancy_min:
        # Without a target, "agreement" is every answer matching the response within the
        # type's tolerance, not a posterior (a fixed overlap needs neither).
        confidence = quality.agreement(spec, [answer for _, answer in rows], consensus.response)
    decision = decide(
        n_annotations=task.n_annotations,
        required=task.required,
        # With a model's answer on the task, the project's human floor (domain.model_annotators).
        lo=model_annotators.settle_floor(session, project=project, annotator_ids=(a for a, _ in rows)),
        hi=project.redundancy_max,
        target=project.redundancy_target,
        confidence=confidence,
    )
    if not decision.complete:
        if decision.required != task.required:
            queries.SET_REQUIRED.run(session, task_id=task.id, required=decision.required)
            set_committed_value(task, "required", decision.required)
        return
    held = reviews.holds_for_review(session, task=task, project=project, spec=spec,
                                    answers=[answer for _, answer in rows], response=consensus.response,
                                    confidence=consensus.confidence, needs_review=consensus.needs_review)
    # One UPDATE of the locked row, mirrored on the object (cheaper than the unit of work).
    values = {"required": decision.required, "status": TaskStatus.REVIEW if held else TaskStatus.COMPLETED,
              "response": consensus.response, "confidence": consensus.confidence, "method": consensus.method,
              "below_target": decision.below_target, "needs_review": consensus.needs_review,
              "details": consensus.details or None, "completed_at": None if held else now,
              "review_status": ReviewStatus.PENDING if held else task.review_status}
    queries.SETTLE.run(session, task_id=task.id, **values)
    for name, value in values.items():
        set_committed_value(task, name, value)
    if held:
        return  # delivered once a reviewer accepts or corrects it
    outbox.enqueue(session, event="task.completed", task=task)
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            complete_batch_if_done(session, batch=batch)
