"""Which delivered results are likely wrong: a project's completed tasks ranked for a second look.

A task's probability of being wrong is one minus the confidence of its result
(``qistas.quality.label_errors``): once the project has a fitted worker model, every refit
re-scores each completed task under it and a task settled after the fit is scored by the same
model, so the stored confidence is the posterior of the delivered answer under the project's
model (``ranking = "model"``). Before the first fit the confidence is the one the task settled
with: annotators weighed by their gold accuracy, or equally when none answered gold -- then the
ranking is the share of answers against the result, the majority-vote baseline
(``ranking = "settled"``). ``docs/benchmarks-quality.md`` measures both on real crowd answers.

Ranked: completed, non-gold tasks whose result no person has vouched for (not accepted or
corrected by a reviewer, not accepted by the customer's audit). The list is bounded: at most
``MAX_LISTED`` tasks, in pages. ``recheck`` (``domain.reviews``) sends a listed task to review.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.db.enums import AuditStatus, ReviewStatus, TaskStatus
from qistas.db.models import Project, Task
from qistas.domain.quality import agreement, load_model
from qistas.domain.reviews import counted_answers
from qistas.domain.tasktypes import parse_spec
from qistas.errors import Invalid

MAX_LISTED = 1000  # the deepest the list goes: offset + limit


@dataclass(frozen=True)
class LikelyError:
    task: Task
    p_wrong: float
    agreement: float  # the share of the counted answers that match the result
    answers: list[tuple[Any, int]]  # each distinct answer and how many gave it, most given first


@dataclass(frozen=True)
class LabelErrors:
    ranking: Literal["model", "settled"]
    model: str | None  # the fitted model's method, when there is one
    items: list[LikelyError]
    next_offset: int | None


def _spread(answers: list[Any]) -> list[tuple[Any, int]]:
    counts = Counter(json.dumps(a, sort_keys=True) for a in answers)
    return [(json.loads(key), n) for key, n in counts.most_common()]


def likely_errors(session: Session, *, project: Project, limit: int, offset: int = 0) -> LabelErrors:
    """A page of the project's delivered tasks, the likeliest wrong first (ties by task id)."""
    if not 0 <= offset < MAX_LISTED:
        raise Invalid(f"offset must be in [0, {MAX_LISTED})", details={"field": "offset"})
    limit = max(1, min(limit, MAX_LISTED - offset))
    fitted = load_model(session, project.id)
    rows = list(session.scalars(
        select(Task).where(
            Task.project_id == project.id, Task.status == TaskStatus.COMPLETED, Task.is_gold.is_(False),
            Task.review_status.not_in([ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED]),
            Task.audit_status != AuditStatus.ACCEPTED,
        )
        # a result without a confidence (an imported one) comes after every scored result
        .order_by(Task.confidence.is_(None), Task.confidence, Task.id).offset(offset).limit(limit + 1)
    ))
    more = len(rows) > limit and offset + limit < MAX_LISTED
    spec = parse_spec(project.task_spec)
    items = []
    for task in rows[:limit]:
        answers = [row.answer for row in counted_answers(session, task_id=task.id)]
        p_wrong = 1.0 - float(task.confidence) if task.confidence is not None else 1.0
        items.append(LikelyError(task=task, p_wrong=round(max(p_wrong, 0.0), 6),
                                 agreement=round(agreement(spec, answers, task.response), 4) if answers else 0.0,
                                 answers=_spread(answers)))
    return LabelErrors(ranking="model" if fitted is not None else "settled",
                       model=fitted.method if fitted is not None else None, items=items,
                       next_offset=offset + limit if more else None)
