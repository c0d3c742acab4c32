"""The gold rules' statements, run on every claim and every submit: an annotator's counts."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update

from qistas.db.models import WorkerStats, table
from qistas.db.prepared import Prepared

_stats = table(WorkerStats).c


class Standing(NamedTuple):
    blocked: bool
    fraud_status: str | None


# What a claim needs to know of the annotator in the project, in one read of one row.
STANDING = Prepared(
    select(_stats.blocked, _stats.fraud_status).where(_stats.project_id == bindparam("project_id"),
                                 _stats.annotator_id == bindparam("annotator_id")),
    Standing,
)


class Counted(NamedTuple):
    n_gold: int
    n_gold_correct: int
    blocked: bool
    probation: int
    n_reviewed: int
    n_rejected: int
    fraud_status: str | None


def count_answer() -> Any:
    """Count an answer and read back what the threshold needs."""
    return (
        update(table(WorkerStats))
        .where(_stats.project_id == bindparam("b_project"), _stats.annotator_id == bindparam("b_annotator"))
        .values(
            n_annotations=_stats.n_annotations + 1,
            seconds_total=_stats.seconds_total + bindparam("b_seconds"),
            n_gold=_stats.n_gold + bindparam("gold"),
            n_gold_correct=_stats.n_gold_correct + bindparam("correct"),
        )
        .returning(_stats.n_gold, _stats.n_gold_correct, _stats.blocked, _stats.probation, _stats.n_reviewed,
                   _stats.n_rejected, _stats.fraud_status)
    )


# One statement in the common case.
COUNT_ANSWER = Prepared(count_answer(), Counted)
# A reviewer's (or the customer's) verdict on one of the annotator's answers.
COUNT_REVIEW = Prepared(
    update(table(WorkerStats))
    .where(_stats.project_id == bindparam("b_project"), _stats.annotator_id == bindparam("b_annotator"))
    .values(n_reviewed=_stats.n_reviewed + 1, n_rejected=_stats.n_rejected + bindparam("wrong"))
    .returning(_stats.n_gold, _stats.n_gold_correct, _stats.blocked, _stats.probation, _stats.n_reviewed,
               _stats.n_rejected, _stats.fraud_status),
    Counted,
)
