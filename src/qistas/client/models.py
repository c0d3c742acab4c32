"""Typed answers of the API. Unknown fields are ignored, so a newer server stays readable."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def parse(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    duplicates: int = 0
    media: int = 0  # distinct media files the rows named


@dataclass(frozen=True)
class Batch:
    id: int
    project_id: int
    name: str
    status: str
    callback_url: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    created_at: str | None = None


@dataclass(frozen=True)
class ReviewState:
    """A task's or result's ``review``: the review stage's verdict and the customer's audit."""

    status: str = "none"  # none | pending | accepted | corrected | rejected
    audit: str = "none"  # none | accepted | rejected


@dataclass(frozen=True)
class Result:
    task_id: int
    unique_id: str | None
    response: Any
    confidence: float | None
    method: str | None = None
    needs_review: bool = False
    details: dict[str, Any] | None = None
    review: ReviewState = field(default_factory=ReviewState)

    def __post_init__(self) -> None:
        if isinstance(self.review, dict):
            object.__setattr__(self, "review", parse(ReviewState, self.review))


@dataclass(frozen=True)
class ReviewPolicy:
    """A project's ``review``: which settled tasks a reviewer checks before delivery, and what
    the customer's rejection at audit does (``reopen``: ``"annotate"`` or ``"review"``)."""

    share: float = 0.0
    below_confidence: float = 0.0
    probation: int = 0
    disagreement: bool = False
    reopen: str = "annotate"


@dataclass(frozen=True)
class ReviewedAnswer:
    id: int  # the annotation: name it to reject this answer
    annotator: str  # a pseudonym, different in each project
    answer: Any


@dataclass(frozen=True)
class ReviewLease:
    """A task given to a reviewer: its data, every answer that counts, the aggregated one."""

    id: int
    project_id: int
    task: dict[str, Any]  # id, data
    answers: list[ReviewedAnswer]
    response: Any
    confidence: float | None = None
    expires_at: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", [parse(ReviewedAnswer, a) if isinstance(a, dict) else a
                                             for a in self.answers])


@dataclass(frozen=True)
class Review:
    """A stored verdict: a reviewer's (stage ``review``) or the customer's (stage ``audit``)."""

    id: int
    task_id: int
    stage: str
    action: str  # accept | correct | reject
    answer: Any = None  # a correction
    reason: str | None = None
    annotation: int | None = None  # the answer rejected
    created_at: str | None = None
    ended_at: str | None = None
    expires_at: str | None = None  # a review lease: until when it is held


@dataclass(frozen=True)
class Rejection:
    """One of the annotator's own answers that was sent back, and why."""

    annotation: int
    task_id: int
    answer: Any
    reason: str | None
    rejected_at: str | None = None


@dataclass(frozen=True)
class Webhook:
    id: int
    project_id: int
    url: str
    events: list[str]
    created_at: str | None = None
    secret: str | None = None  # only in the answer to create


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    event: str
    kind: str
    url: str
    status: str
    attempts: int
    webhook_id: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None
    created_at: str | None = None
    delivered_at: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportInfo:
    """What a streamed export reported: pass ``cursor`` as ``since`` next time."""

    path: str | None
    total: int | None
    cursor: str | None


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    org: str | None = None
    is_reviewer: bool = False
    is_active: bool = True
    sign_in_link: str | None = None  # only when created without a password; shown once


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None


@dataclass(frozen=True)
class Deactivated:
    id: int
    is_active: bool
    released_leases: int = 0


@dataclass(frozen=True)
class ModelEndpoint:
    """An organization's OpenAI-compatible API; its key is never returned (``has_api_key``)."""

    id: int
    org_id: int
    name: str
    base_url: str
    model: str
    has_api_key: bool = False
    max_concurrency: int = 4
    requests_per_minute: int | None = None
    timeout_seconds: float = 60.0
    allow_private: bool = False
    price_input_per_1k: float | None = None
    price_output_per_1k: float | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class PrelabelFailure:
    task_id: int
    reason: str


@dataclass(frozen=True)
class ModelUsage:
    """A project's model accounting over all its pre-label jobs."""

    jobs: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    done: int = 0
    failed: int = 0
