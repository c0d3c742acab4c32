"""The quality bridge's statements, run after every answer: the fitted model's stamp, gold counts."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select

from qistas.db.models import Annotation, QualityModel, WorkerStats, table
from qistas.db.prepared import Prepared

_models = table(QualityModel).c
_stats = table(WorkerStats).c
_answers = table(Annotation).c


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
