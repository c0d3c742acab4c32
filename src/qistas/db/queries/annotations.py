"""The statements of a submit: store the answer once, close the lease, settle the task.

See ``qistas.domain.annotations`` for the invariants they keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, Boolean, Insert, Update, bindparam, func, literal_column, select, true, update

from qistas.db.enums import LeaseStatus
from qistas.db.models import Annotation, Assignment, Project, Task, table
from qistas.db.prepared import NewId, Prepared, Rowcount, detached, insert_of, mapped_columns, select_entity
from qistas.db.queries.assignments import LEASE_COLUMNS, Lease
from qistas.db.queries.audit import pending_event_of
from qistas.db.queries.gold import Counted, count_answer


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


class Submitting(NamedTuple):
    """What a submit reads first: the lease and its task, both locked, and the project."""

    lease: Lease
    task: Task
    project: Project


_TASK_COLUMNS = mapped_columns(Task)
_PROJECT_COLUMNS = mapped_columns(Project)
_TASK_END = len(LEASE_COLUMNS) + len(_TASK_COLUMNS)


def _submitting(*values: Any) -> Submitting:
    return Submitting(Lease(*values[:len(LEASE_COLUMNS)]), detached(Task, values[len(LEASE_COLUMNS):_TASK_END]),
                      detached(Project, values[_TASK_END:]))


# One round trip: the lease and its task locked in that order (the lock order everywhere), and
# the project read, by the lease's id. The caller checks whose lease it is.
SUBMITTING = Prepared(
    select(*LEASE_COLUMNS, *_TASK_COLUMNS, *_PROJECT_COLUMNS)
    .join_from(table(Assignment), table(Task), _tasks.id == _leases.task_id)
    .join(table(Project), table(Project).c.id == _leases.project_id)
    .where(_leases.id == bindparam("assignment_id"))
    .with_for_update(of=[table(Assignment), table(Task)]),
    _submitting,
)
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


class Stored(NamedTuple):
    """``STORE``'s row: the new annotation's id, and the annotator's counts after it (all None
    when they had none in the project yet: nothing was counted)."""

    id: int
    n_gold: int | None
    n_gold_correct: int | None
    blocked: bool | None
    probation: int | None
    n_reviewed: int | None
    n_rejected: int | None
    fraud_status: str | None

    def counted(self) -> Counted | None:
        return None if self.blocked is None else Counted(*self[1:])  # type: ignore[arg-type]


# PostgreSQL: NEW_ANNOTATION, CLOSE_LEASE, COUNT_ANSWER and the annotator's count
# (``queries.gold.COUNT_ANSWER``) in one statement, one round
# trip. The lease and the task are locked by the transaction already (SUBMITTING); each part
# changes rows of its own, so none needs to see another's change.
_made = cast(Insert, NEW_ANNOTATION.statement).cte("made")
_counts = count_answer().cte("counts")
# With ``record_event``, the answer's audit event too (``annotation.create``, its object the task,
# its details the annotation's id; its fields ``event_`` parameters: ``domain.audit.LoopEvents``).
_event = pending_event_of(_made, object_id=bindparam("task_id", type_=BigInteger),
                          details=func.jsonb_build_object(literal_column("'annotation'"), _made.c.id),
                          where=bindparam("record_event", type_=Boolean))
STORE = Prepared(
    select(_made.c.id, *(_counts.c[name] for name in Counted._fields))
    .select_from(_made.outerjoin(_counts, true()))
    .add_cte(cast(Update, CLOSE_LEASE.statement).cte("closed"), cast(Update, COUNT_ANSWER.statement).cte("counted"),
             _event.cte("event")),
    Stored,
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
