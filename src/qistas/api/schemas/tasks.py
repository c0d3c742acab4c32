from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming


class ImportRead(BaseModel):
    created: int
    duplicates: int
    media: int = Field(default=0, description="distinct media files the rows named (stored once each)")


class AnnotationRead(BaseModel):
    id: int
    task_id: int
    annotator: str = Field(description="pseudonym, a different one in each project")
    answer: Any
    seconds: float | None
    created_at: datetime
    source: str = Field(default="human", description="`human`, or `model` for a model annotator's answer")
    model: str | None = Field(default=None, description="the model's `name/model`, for a model's answer")


class AnnotationImportRead(BaseModel):
    created: int


class ReviewState(BaseModel):
    status: str = Field(description="none | pending | accepted | corrected | rejected: the review stage's verdict")
    audit: str = Field(description="none | accepted | rejected: the customer's")


class TaskRead(BaseModel):
    id: int
    project_id: int
    batch_id: int | None
    unique_id: str | None
    data: dict[str, Any]
    metadata: dict[str, Any] | None
    gold: Any | None
    status: str
    required: int
    n_annotations: int
    response: Any | None
    confidence: float | None
    method: str | None
    below_target: bool
    needs_review: bool = Field(description="the answers disagree beyond what the task type tolerates")
    details: dict[str, Any] | None = Field(description="what the task type adds: an interval, per-label "
                                           "confidences, scores")
    created_at: datetime
    completed_at: datetime | None
    review: ReviewState
    predictions: list[dict[str, Any]] | None = Field(default=None, description="models' pre-labels: "
                                                     "[{model, answer, score}]")
    annotations: list[AnnotationRead] | None = None


class TaskPage(BaseModel):
    items: list[TaskRead]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")


class TaskWorkView(BaseModel):
    """A task as an annotator receives it: its data, nothing else."""

    id: int
    data: dict[str, Any]


class PrefillRead(BaseModel):
    """A model's prediction shown to the annotator as a pre-fill, to confirm or change."""

    answer: Any
    model: str | None = Field(default=None, description="the model's name, only if the project shows it")


class AssignmentRead(BaseModel):
    id: int
    project_id: int
    task: TaskWorkView
    expires_at: datetime
    prefill: PrefillRead | None = Field(default=None, description="a model's prediction to confirm or change; "
                                       "present only when the project's pre-fill setting shows one")


class SubmitCreate(Incoming):
    answer: Any
    seconds: float | None = None


class SubmittedRead(BaseModel):
    id: int
    assignment_id: int
    task_id: int
    answer: Any
    seconds: float | None
    created_at: datetime
    feedback: dict[str, Any] | None = Field(default=None, description="training projects: whether a check was right")


class ResultRead(BaseModel):
    task_id: int
    unique_id: str | None
    response: Any
    confidence: float | None
    method: str | None
    needs_review: bool
    details: dict[str, Any] | None
    review: ReviewState


class ResultPage(BaseModel):
    items: list[ResultRead]
    # `after` pages: the next task id, None at the end. `since` pages: always a cursor to
    # continue from (the same one when nothing new was completed).
    next: int | str | None
