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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from qistas.db.models import Annotation, Assignment, Batch, Project, Task, User, table
from qistas.domain import gold as gold_rules
from qistas.domain import outbox, quality
from qistas.domain.aggregation import aggregate, decide
from qistas.domain.assignments import insert_row
from qistas.domain.jsonsafe import check_storable
from qistas.domain.projects import complete_batch_if_done
from qistas.domain.tasktypes import parse_spec, validate_answer
from qistas.errors import Conflict, Invalid, NotFound

MAX_SECONDS = 7 * 24 * 3600
# Built once: statement construction costs more CPU than running it (see assignments.py).
_leases = table(Assignment).c
# The lease as values: submit reads it and ends it with an UPDATE, it needs no object.
_LEASE_LOCKED = (
    select(_leases.id, _leases.task_id, _leases.project_id, _leases.annotator_id, _leases.status, _leases.expires_at)
    .where(_leases.id == bindparam("assignment_id"))
    .with_for_update()
)
_TASK_LOCKED = select(Task).where(Task.id == bindparam("task_id")).with_for_update()
_NEW_ANNOTATION = insert(table(Annotation)).returning(table(Annotation).c.id)
_CLOSE_LEASE = (
    update(table(Assignment))
    .where(table(Assignment).c.id == bindparam("assignment_id"))
    .values(status="submitted", ended_at=bindparam("now"))
)
_COUNT_ANSWER = (
    update(table(Task))
    .where(table(Task).c.id == bindparam("task_id"))
    .values(n_annotations=table(Task).c.n_annotations + 1)
)
_answers = table(Annotation).c
_ANSWERS = (
    select(_answers.annotator_id, _answers.answer)
    .where(_answers.task_id == bindparam("task_id"))
    .order_by(_answers.id)
)
_tasks = table(Task).c
_SETTLE = (
    update(table(Task))
    .where(_tasks.id == bindparam("task_id"))
    .values(required=bindparam("required"), status=bindparam("status"), response=bindparam("response"),
            confidence=bindparam("confidence"), method=bindparam("method"),
            below_target=bindparam("below_target"), completed_at=bindparam("completed_at"))
)


@dataclass(frozen=True)
class Submitted:
    annotation: Annotation
    created: bool  # False when this was a repeat of an earlier submit
    feedback: dict[str, Any] | None = None  # on gold tasks of training projects only


def submit(
    session: Session,
    *,
    assignment_id: int,
    annotator: User,
    answer: Any,
    seconds: float | None,
    now: datetime,
) -> Submitted:
    assignment = session.execute(_LEASE_LOCKED, {"assignment_id": assignment_id}).one_or_none()
    if assignment is None or assignment.annotator_id != annotator.id:
        raise NotFound("assignment not found")
    if assignment.status == "submitted":
        stored = session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id))
        assert stored is not None
        return Submitted(stored, created=False)
    if assignment.status != "active" or assignment.expires_at <= now:
        state = "expired" if assignment.status == "active" else assignment.status
        raise Conflict(f"this lease is no longer valid ({state}); take a new task")
    if seconds is not None and not 0 <= seconds <= MAX_SECONDS:
        raise Invalid(f"seconds must be between 0 and {MAX_SECONDS}", details={"field": "seconds"})
    # Lock order everywhere: assignment, then task.
    task = session.scalar(_TASK_LOCKED, {"task_id": assignment.task_id})
    project = session.get(Project, assignment.project_id)
    assert task is not None and project is not None
    if task.status != "pending":
        raise Conflict(f"this task is {task.status}; take a new task")
    check_storable(answer, "answer")
    spec = parse_spec(project.task_spec)
    normalised = validate_answer(spec, task.data, answer)
    gold_correct = gold_rules.matches(spec, normalised, task.gold) if task.is_gold else None

    values = {"assignment_id": assignment.id, "task_id": task.id, "project_id": project.id,
              "annotator_id": annotator.id, "answer": normalised, "seconds": seconds,
              "gold_correct": gold_correct, "created_at": now}
    annotation = insert_row(session, Annotation, _NEW_ANNOTATION, values)
    # Both rows are locked by this transaction: plain UPDATEs (the task's mirrored on its object).
    session.execute(_CLOSE_LEASE, {"assignment_id": assignment.id, "now": now})
    # The lease's slot in n_claimed now holds this annotation.
    session.execute(_COUNT_ANSWER, {"task_id": task.id})
    set_committed_value(task, "n_annotations", task.n_annotations + 1)
    gold_rules.record_answer(session, project=project, annotator_id=annotator.id, seconds=seconds,
                             gold_correct=gold_correct)
    if not task.is_gold:  # gold tasks never complete: they keep measuring annotators
        _settle(session, task=task, project=project, spec=spec, now=now)
    feedback = None
    if gold_correct is not None and gold_rules.parse_policy(project.gold_policy).feedback:
        feedback = {"correct": gold_correct, "expected": task.gold}
    return Submitted(annotation, created=True, feedback=feedback)


def _settle(session: Session, *, task: Task, project: Project, spec: Any, now: datetime) -> None:
    """Complete the task, or raise how many annotations it needs, after a new one."""
    if task.n_annotations < task.required:
        return
    rows = session.execute(_ANSWERS, {"task_id": task.id}).all()
    majority = aggregate([answer for _, answer in rows])
    consensus = quality.task_consensus(session, project=project, spec=spec, answers=rows) \
        if quality.is_scored(spec) else majority
    decision = decide(
        n_annotations=task.n_annotations,
        required=task.required,
        lo=project.redundancy_min,
        hi=project.redundancy_max,
        target=project.redundancy_target,
        # Without a target, "agreement" is unanimity of the votes, not a posterior.
        confidence=consensus.confidence if project.redundancy_target is not None else majority.confidence,
    )
    if not decision.complete:
        if decision.required != task.required:
            task.required = decision.required
            session.flush()
        return
    # One UPDATE of the locked row, mirrored on the object (cheaper than the unit of work).
    values = {"required": decision.required, "status": "completed", "response": consensus.response,
              "confidence": consensus.confidence, "method": consensus.method,
              "below_target": decision.below_target, "completed_at": now}
    session.execute(_SETTLE, {"task_id": task.id, **values})
    for name, value in values.items():
        set_committed_value(task, name, value)
    outbox.enqueue(session, event="task.completed", task=task)
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            complete_batch_if_done(session, batch=batch)
