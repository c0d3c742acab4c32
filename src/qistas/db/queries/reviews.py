"""The review policy's statements, run at each settle of a project with a review stage."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, func, select

from qistas.db.models import Annotation, WorkerStats, table
from qistas.db.prepared import Prepared

_answers = table(Annotation).c
_stats = table(WorkerStats).c


class _Counted(NamedTuple):
    id: int
    annotator_id: int
    fraud_status: str | None


class _Earlier(NamedTuple):
    n: int


# The task's answers that count: who gave each, and whether they are on probation for fraud.
COUNTED = Prepared(
    select(_answers.id, _answers.annotator_id, _stats.fraud_status)
    .select_from(table(Annotation).outerjoin(table(WorkerStats), (_stats.project_id == _answers.project_id)
                                             & (_stats.annotator_id == _answers.annotator_id)))
    .where(_answers.task_id == bindparam("task_id"), _answers.rejected_at.is_(None)),
    _Counted,
)
# How many answers the annotator gave in the project before this one, counted up to ``limit``
# only: a range of the (project, annotator, id) index, never longer than ``limit``.
EARLIER = Prepared(
    select(func.count().label("n")).select_from(
        select(_answers.id)
        .where(_answers.project_id == bindparam("project_id"), _answers.annotator_id == bindparam("annotator_id"),
               _answers.id < bindparam("annotation_id"))
        .limit(bindparam("limit"))
        .subquery()
    ),
    _Earlier,
)
