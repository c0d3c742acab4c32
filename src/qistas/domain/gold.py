"""Gold tasks (honeypots): the policy, serving a share of them, scoring answers against them.

A gold task looks exactly like any other to the annotator: same shape, same endpoint, same
order logic. It never completes and is never counted as a customer result; each annotator
answers it at most once, and ``required`` follows the number of annotators served so the
engine's invariant (annotations + leases <= required) holds for gold tasks too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qistas.db.dialect import insert_skipping_conflicts
from qistas.db.models import Project, User, WorkerStats, table
from qistas.db.queries import gold as queries
from qistas.domain import audit
from qistas.domain.tasktypes import Spec, type_of
from qistas.errors import Conflict, Invalid, NotFound

# Beta prior on gold accuracy: mean 0.7, worth ten answers, so two early mistakes do not
# block anyone and two lucky answers prove nothing.
PRIOR_CORRECT = 7.0
PRIOR_WRONG = 3.0
_rng = random.SystemRandom()  # unpredictable: annotators must not learn when gold comes
# An annotator on probation (domain.fraud) gets at least this share of gold: checked more
# often, without being told.
PROBATION_GOLD_SHARE = 0.3
PROBATION = "probation"
FRAUD_BLOCKS = ("blocked", "excluded")  # fraud statuses that block, whatever the gold accuracy says


@dataclass(frozen=True)
class GoldPolicy:
    share: float = 0.0  # share of served tasks that are gold
    min_answers: int = 5  # gold answers before the threshold applies
    min_accuracy: float = 0.0  # below it (Beta posterior mean) an annotator is blocked
    feedback: bool = False  # tell the annotator at once whether a gold answer was right


def parse_policy(raw: dict[str, Any] | None) -> GoldPolicy:
    raw = dict(raw or {})
    unknown = raw.keys() - GoldPolicy.__dataclass_fields__.keys()
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"gold.{name} is not a known field", details={"field": f"gold.{name}"})
    policy = GoldPolicy(**raw)
    checks = (
        ("share", isinstance(policy.share, int | float) and 0 <= policy.share < 1, "a number in [0, 1)"),
        ("min_answers", isinstance(policy.min_answers, int) and policy.min_answers >= 1, "an integer >= 1"),
        ("min_accuracy", isinstance(policy.min_accuracy, int | float) and 0 <= policy.min_accuracy <= 1,
         "a number in [0, 1]"),
        ("feedback", isinstance(policy.feedback, bool), "true or false"),
    )
    for name, ok, what in checks:
        if not ok:
            raise Invalid(f"gold.{name} must be {what}", details={"field": f"gold.{name}"})
    return policy


def draw_gold(policy: GoldPolicy) -> tuple[bool, bool]:
    """Whether this take serves a gold task: for an annotator in good standing (with the
    policy's share of takes) and for one on probation (at least ``PROBATION_GOLD_SHARE``). One
    draw read both ways, made before the standing is known (the claim reads it, and picks)."""
    draw = _rng.random()
    return policy.share > 0 and draw < policy.share, draw < max(policy.share, PROBATION_GOLD_SHARE)


def accuracy_of(correct: int, total: int) -> float:
    """Gold accuracy as the Beta posterior mean."""
    return (correct + PRIOR_CORRECT) / (total + PRIOR_CORRECT + PRIOR_WRONG)


def accuracy(stats: WorkerStats | None) -> float:
    return accuracy_of(stats.n_gold_correct, stats.n_gold) if stats else accuracy_of(0, 0)


NO_STANDING = queries.Standing(blocked=False, fraud_status=None)


def standing(session: Session, *, project_id: int, annotator_id: int) -> queries.Standing:
    """Whether the annotator is blocked in the project, and their fraud status: one read."""
    return queries.STANDING.first(session, project_id=project_id, annotator_id=annotator_id) or NO_STANDING


def matches(spec: Spec, answer: Any, gold: Any) -> bool:
    """Whether a (normalised) answer agrees with the gold answer, within the type's tolerance."""
    return type_of(spec).gold_matches(spec, answer, gold)


_stats = table(WorkerStats).c


def answer_counts(*, project_id: int, annotator_id: int, seconds: float | None,
                  gold_correct: bool | None) -> dict[str, Any]:
    """What an answer adds to the annotator's counts in the project: ``COUNT_ANSWER``'s parameters."""
    return {"b_project": project_id, "b_annotator": annotator_id, "b_seconds": seconds or 0.0,
            "gold": int(gold_correct is not None), "correct": int(bool(gold_correct))}


def record_answer(
    session: Session, *, project: Project, annotator_id: int, seconds: float | None, gold_correct: bool | None
) -> None:
    """Update the annotator's counts after a submit; block them if gold accuracy is too low."""
    values = answer_counts(project_id=project.id, annotator_id=annotator_id, seconds=seconds,
                           gold_correct=gold_correct)
    answer_counted(session, project=project, counts=values, gold_correct=gold_correct,
                   counted=queries.COUNT_ANSWER.first(session, **values))


def answer_counted(session: Session, *, project: Project, counts: dict[str, Any], gold_correct: bool | None,
                   counted: queries.Counted | None) -> None:
    """``record_answer`` once ``COUNT_ANSWER`` ran with ``counts`` (``counted``: what it read
    back, or None when the annotator had no counts in the project yet and it changed nothing)."""
    annotator_id = counts["b_annotator"]
    if counted is None:
        # The annotator's first answer here. Two in parallel (two tabs) must not both insert.
        first = {"project_id": project.id, "annotator_id": annotator_id, "n_annotations": 0,
                 "seconds_total": 0.0, "n_gold": 0, "n_gold_correct": 0, "blocked": False}
        session.execute(insert_skipping_conflicts(session, WorkerStats.__table__, ["project_id", "annotator_id"]),
                        first)
        counted = queries.COUNT_ANSWER.first(session, **counts)
        assert counted is not None
    if gold_correct is None:
        return
    _block_if_below(session, project=project, annotator_id=annotator_id, counted=counted)


def record_review(session: Session, *, project: Project, annotator_id: int, correct: bool) -> None:
    """Count a review's verdict on one of the annotator's answers: an answer a reviewer (or the
    customer) found right is evidence like a right gold answer, one found wrong counts against
    it like a gold miss, and the same threshold applies to both together."""
    counted = queries.COUNT_REVIEW.first(session, b_project=project.id, b_annotator=annotator_id,
                                         wrong=int(not correct))
    if counted is not None:  # every reviewed answer was counted at its submit
        _block_if_below(session, project=project, annotator_id=annotator_id, counted=counted)


def _block_if_below(session: Session, *, project: Project, annotator_id: int, counted: Any) -> None:
    if counted.fraud_status in FRAUD_BLOCKS:
        return  # blocked for fraud: only an unblock lifts it, never a good answer
    policy = parse_policy(project.gold_policy)
    judged = counted.n_gold + counted.n_reviewed
    right = counted.n_gold_correct + counted.n_reviewed - counted.n_rejected
    judged_after = max(policy.min_answers, counted.probation)
    blocked = judged >= judged_after and accuracy_of(right, judged) < policy.min_accuracy
    if blocked != counted.blocked:
        session.execute(update(WorkerStats).where(_stats.project_id == project.id, _stats.annotator_id == annotator_id)
                        .values(blocked=blocked).execution_options(synchronize_session=False))


MAX_PROBATION = 10_000


def find_annotator(session: Session, *, project_id: int, name: str, pseudonym: Callable[[int], str],
                   by_id: bool = False) -> int:
    """The annotator of the project (one who answered in it) its customer calls ``name``: the
    pseudonym the project's reports show, so no annotator id crosses the customers' wall (with
    ``by_id``, an admin's, their user id too). 404 when none is."""
    for annotator_id in session.scalars(select(WorkerStats.annotator_id).where(WorkerStats.project_id == project_id)):
        if name == pseudonym(annotator_id) or (by_id and name == str(annotator_id)):
            return int(annotator_id)
    raise NotFound("annotator not found in this project")


def unblock(session: Session, *, project: Project, annotator_id: int, probation: int, actor: User) -> WorkerStats:
    """Let a blocked annotator work on the project again, on probation: their gold answers are
    counted afresh, and the threshold applies again after ``probation`` of them (at least the
    policy's ``min_answers``; review verdicts too). What they answered before stays; only the
    gate is reset."""
    if not isinstance(probation, int) or isinstance(probation, bool) or not 0 <= probation <= MAX_PROBATION:
        raise Invalid(f"probation must be an integer from 0 to {MAX_PROBATION}", details={"field": "probation"})
    stats = session.get(WorkerStats, (project.id, annotator_id))
    if stats is None or not stats.blocked:
        raise Conflict("this annotator is not blocked in this project", details={"field": "project"})
    stats.blocked, stats.n_gold, stats.n_gold_correct, stats.probation = False, 0, 0, probation
    stats.n_reviewed = stats.n_rejected = 0
    stats.fraud_status = stats.fraud_reason = None
    session.flush()
    audit.record(session, actor=actor, action="annotator.unblock", object_type="user", object_id=annotator_id,
                 org_id=project.org_id, details={"project": project.id, "probation": probation})
    return stats
