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
class Result:
    task_id: int
    unique_id: str | None
    response: Any
    confidence: float | None
    method: str | None = None


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
