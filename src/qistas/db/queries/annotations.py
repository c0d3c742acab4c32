"""The statements of a submit: store the answer once, close the lease, settle the task.

See ``qistas.domain.annotations`` for the invariants they keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.enums import LeaseStatus
from qistas.db.models import Annotation, Assignment, Task, table
from qistas.db.prepared import NewId, Prepared, Rowcount, insert_of, select_entity


class StoredAnswer(NamedTuple):
    """An annotation, as submit returns it."""

    id: int
    assignment_id: int
    task_id: int
    answer: Any
    seconds: float | None
    created_at: datetime


class _Answer(NamedTuple):
    annotator_id: int
    answer: Any


_annotations = table(Annotation)
_answers = _annotations.c
_leases = table(Assignment).c
_tasks = table(Task).c
TASK_LOCKED = select_entity(Task, _tasks.id == bindparam("task_id"), lock=True)
STORED = Prepared(
    select(_answers.id, _answers.assignment_id, _answers.task_id, _answers.answer, _answers.seconds,
           _answers.created_at).where(_answers.assignment_id == bindparam("assignment_id")),
    StoredAnswer,
)
NEW_ANNOTATION = Prepared(
    insert_of(_annotations, ["assignment_id", "task_id", "project_id", "annotator_id", "answer", "seconds",
                             "gold_correct", "created_at", "prefill_model", "prefill_kept", "active_ms", "pay_minor",
                             "pay_currency"], returning=["id"]),
    NewId,
)
CLOSE_LEASE = Prepared(
    update(table(Assignment)).where(_leases.id == bindparam("assignment_id"))
    .values(status=LeaseStatus.SUBMITTED, ended_at=bindparam("now")),
    Rowcount,
)
COUNT_ANSWER = Prepared(
    update(table(Task)).where(_tasks.id == bindparam("task_id")).values(n_annotations=_tasks.n_annotations + 1),
    Rowcount,
)
# A task's answers that count (none rejected in review) as (annotator id, answer), in the
# order they came.
ANSWERS = Prepared(
    select(_answers.annotator_id, _answers.answer)
    .where(_answers.task_id == bindparam("task_id"), _answers.rejected_at.is_(None))
    .order_by(_answers.id),
    _Answer,
)
SET_REQUIRED = Prepared(
    update(table(Task)).where(_tasks.id == bindparam("task_id")).values(required=bindparam("required")),
    Rowcount,
)
SETTLE = Prepared(
    update(table(Task))
    .where(_tasks.id == bindparam("task_id"))
    .values(required=bindparam("required"), status=bindparam("status"), response=bindparam("response"),
            confidence=bindparam("confidence"), method=bindparam("method"),
            below_target=bindparam("below_target"), needs_review=bindparam("needs_review"),
            details=bindparam("details"), completed_at=bindparam("completed_at"),
            review_status=bindparam("review_status")),
    Rowcount,
)
