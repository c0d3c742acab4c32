from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=10,
                              description="task.completed, batch.completed, result.changed, task.audit_rejected")


class WebhookRead(BaseModel):
    id: int
    project_id: int
    url: str
    events: list[str]
    created_at: datetime
    secret: str | None = Field(default=None, description="the signing secret; shown once, when created")


class DeliveryRead(BaseModel):
    id: int
    event_id: str
    event: str
    kind: str
    webhook_id: int | None
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next: int | None = Field(description="pass as `before` for older deliveries")


class CallbackSecret(BaseModel):
    secret: str = Field(description="signs this project's batch and task callbacks")
