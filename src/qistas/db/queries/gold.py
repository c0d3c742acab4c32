"""The gold rules' statements, run on every claim and every submit: an annotator's counts."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.models import WorkerStats, table
from qistas.db.prepared import Prepared

_stats = table(WorkerStats).c


class _Blocked(NamedTuple):
    blocked: bool


BLOCKED = Prepared(
    select(_stats.blocked).where(_stats.project_id == bindparam("project_id"),
                                 _stats.annotator_id == bindparam("annotator_id")),
    _Blocked,
)


class _Counted(NamedTuple):
    n_gold: int
    n_gold_correct: int
    blocked: bool
    probation: int
    n_reviewed: int
    n_rejected: int


# One statement in the common case: count the answer and read back what the threshold needs.
COUNT_ANSWER = Prepared(
    update(table(WorkerStats))
    .where(_stats.project_id == bindparam("b_project"), _stats.annotator_id == bindparam("b_annotator"))
    .values(
        n_annotations=_stats.n_annotations + 1,
        seconds_total=_stats.seconds_total + bindparam("seconds"),
        n_gold=_stats.n_gold + bindparam("gold"),
        n_gold_correct=_stats.n_gold_correct + bindparam("correct"),
    )
    .returning(_stats.n_gold, _stats.n_gold_correct, _stats.blocked, _stats.probation, _stats.n_reviewed,
               _stats.n_rejected),
    _Counted,
)
# A reviewer's (or the customer's) verdict on one of the annotator's answers.
COUNT_REVIEW = Prepared(
    update(table(WorkerStats))
    .where(_stats.project_id == bindparam("b_project"), _stats.annotator_id == bindparam("b_annotator"))
    .values(n_reviewed=_stats.n_reviewed + 1, n_rejected=_stats.n_rejected + bindparam("wrong"))
    .returning(_stats.n_gold, _stats.n_gold_correct, _stats.blocked, _stats.probation, _stats.n_reviewed,
               _stats.n_rejected),
    _Counted,
)
