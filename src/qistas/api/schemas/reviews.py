"""The review stage and the customer's audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming
from qistas.api.schemas.tasks import TaskWorkView


class ReviewedAnswer(BaseModel):
    id: int = Field(description="the annotation; name it to reject this answer")
    annotator: str = Field(description="pseudonym, different in each project")
    answer: Any
    agrees: bool = Field(description="whether the answer matches the aggregated one within the type's tolerance")


class ReviewLeaseRead(BaseModel):
    """A task given to a reviewer: its data, every answer that counts, the aggregated one."""

    id: int
    project_id: int
    task: TaskWorkView
    answers: list[ReviewedAnswer]
    response: Any
    confidence: float | None
    expires_at: datetime


class ReviewCreate(Incoming):
    action: Literal["accept", "correct", "reject"]
    answer: Any = Field(default=None, description="correct: the right answer, validated by the task type")
    reason: str | None = Field(default=None, max_length=2000, description="reject: why, shown to the annotator")
    annotation: int | None = Field(default=None, ge=1, le=2**63 - 1,
                                   description="reject: which answer (may be left out when the task has one)")


class ReviewRead(BaseModel):
    id: int
    task_id: int
    stage: str = Field(description="review (a reviewer) or audit (the customer)")
    action: str
    answer: Any = None
    reason: str | None = None
    annotation: int | None = None
    created_at: datetime
    ended_at: datetime | None
    expires_at: datetime | None = Field(default=None, description="a review lease: until when it is held")


class AuditCreate(Incoming):
    accepted: bool
    reason: str | None = Field(default=None, max_length=2000, description="required when accepted is false")


class RejectionRead(BaseModel):
    """One of the annotator's own answers that a reviewer or the customer sent back."""

    annotation: int
    task_id: int
    answer: Any
    reason: str | None
    rejected_at: datetime


class AnswerCount(BaseModel):
    answer: Any
    n: int = Field(description="how many counted answers were this one")


class LikelyErrorRead(BaseModel):
    task_id: int
    unique_id: str | None
    response: Any = Field(description="the delivered answer")
    confidence: float | None
    p_wrong: float = Field(description="the probability that the delivered answer is wrong: 1 - confidence")
    agreement: float = Field(description="the share of the counted answers that match the delivered one")
    answers: list[AnswerCount] = Field(description="the spread of the counted answers, most given first")


class LabelErrorPage(BaseModel):
    """Completed tasks the likeliest wrong first."""

    ranking: Literal["model", "settled"] = Field(
        description="model: posteriors under the project's fitted worker model; settled: the confidence each task "
                    "settled with, before any fit (annotators weighed by gold accuracy, or equally)")
    model: str | None = Field(description="the fitted model's method, when ranking is model")
    items: list[LikelyErrorRead]
    next_offset: int | None = Field(description="the next page's offset; null at the end of the list (at most 1000)")
