"""The quality bridge's statements: run after every answer (the fitted model's stamp, gold counts),
and a refit's write of its results."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.models import Annotation, QualityModel, Task, WorkerStats, table
from qistas.db.prepared import Prepared, Rowcount

_models = table(QualityModel).c
_stats = table(WorkerStats).c
_answers = table(Annotation).c
_tasks = table(Task).c


class FittedAt(NamedTuple):
    fitted_at: datetime


class GoldCounts(NamedTuple):
    annotator_id: int
    n_gold: int
    n_gold_correct: int


FITTED_AT = Prepared(select(_models.fitted_at).where(_models.project_id == bindparam("project_id")), FittedAt)
# The gold counts of everyone who answered the task.
GOLD_COUNTS_OF = Prepared(
    select(_stats.annotator_id, _stats.n_gold, _stats.n_gold_correct).where(
        _stats.project_id == bindparam("project_id"),
        _stats.annotator_id.in_(select(_answers.annotator_id).where(_answers.task_id == bindparam("task_id"))),
    ),
    GoldCounts,
)

# A task's result as a refit stores it (``Prepared.run_many``: every re-scored task of a chunk in one call).
RESCORE = Prepared(
    update(table(Task)).where(_tasks.id == bindparam("task_id")).values(
        response=bindparam("response", type_=_tasks.response.type),
        confidence=bindparam("confidence", type_=_tasks.confidence.type),
        method=bindparam("method", type_=_tasks.method.type),
        needs_review=bindparam("needs_review", type_=_tasks.needs_review.type),
        details=bindparam("details", type_=_tasks.details.type)),
    Rowcount,
)
