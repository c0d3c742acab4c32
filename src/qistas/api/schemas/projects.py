from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming

REVIEW = ('which settled tasks a reviewer checks before delivery: {"share": 0..1, "below_confidence": 0..1, '
          '"probation": n, "disagreement": bool, "reopen": "annotate"|"review"}')

PREFILL = ('whether annotators see a model\'s prediction as a pre-fill: {"mode": "never"|"always"|"above", '
           '"min_score": 0..1, "show_model": bool}')

MODEL_ANNOTATORS = ('how models\' answers (pre-label jobs with "as": "annotations") count: {"min_human_answers": '
                    '0..20, default 1}: the least people\'s answers a task with a model\'s answer completes with, '
                    'where the redundancy is adaptive')
MEDIA = ('media limits of the imports (docs/media.md): {"max_bytes"?: int, "types"?: [media types], '
         '"fetch_urls"?: bool}; fetch_urls: the server fetches http(s) URLs named in media fields and stores them')


ROUTING = ('who may work on it: {"pools": [pool ids], "all": [{"kind", "tag", "min_level"}], '
           '"any": [{"kind", "tag", "min_level"}]} (docs/workforce.md)')
PAY = ('what an answer earns, in the currency\'s minor units: {"currency": "USD", "per_task": 12} or '
       '{"currency": "USD", "per_hour": 1500}, with "floor_per_hour"? for the effective-rate report; {} pays nothing '
       '(docs/workforce.md#pay-and-time)')
WORK_NAME = "the name annotators see instead of the project's own (generated when left out)"
ACTIVE_LEARNING = ('a text model trained on completed tasks orders the pending ones (most uncertain first, a share '
                   'at random) and pre-labels them; single-label classification with a text_field only: '
                   '{"enabled": bool, "random_share": 0..1}')


class Redundancy(Incoming):
    min: int = 1
    max: int | None = None
    target: float | None = None


class ProjectCreate(Incoming):
    name: str = Field(min_length=1, max_length=200)
    task: dict[str, Any]
    instructions: str = Field(default="", max_length=200_000)
    redundancy: Redundancy = Field(default_factory=Redundancy)
    gold: dict[str, Any] = Field(default_factory=dict)
    review: dict[str, Any] = Field(default_factory=dict, description=REVIEW)
    prefill: dict[str, Any] = Field(default_factory=dict, description=PREFILL)
    model_annotators: dict[str, Any] = Field(default_factory=dict, description=MODEL_ANNOTATORS)
    media: dict[str, Any] = Field(default_factory=dict, description=MEDIA)
    active_learning: dict[str, Any] = Field(default_factory=dict, description=ACTIVE_LEARNING)
    # The column is a 32-bit INTEGER: a larger number would be a 500 from the driver.
    priority: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    pay: dict[str, Any] = Field(default_factory=dict, description=PAY)
    workforce: str = Field(default="shared", description="'shared' or 'org'")
    routing: dict[str, Any] = Field(default_factory=dict, description=ROUTING)
    work_name: str | None = Field(default=None, description=WORK_NAME)
    org: str | None = Field(default=None, description="organization slug; admins only")


class ProjectUpdate(Incoming):
    """The fields to change; those left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    task: dict[str, Any] | None = Field(default=None, description="only while no task of the project is answered")
    instructions: str | None = Field(default=None, max_length=200_000)
    redundancy: Redundancy | None = None
    gold: dict[str, Any] | None = None
    review: dict[str, Any] | None = Field(default=None, description=REVIEW)
    prefill: dict[str, Any] | None = Field(default=None, description=PREFILL)
    model_annotators: dict[str, Any] | None = Field(default=None, description=MODEL_ANNOTATORS)
    media: dict[str, Any] | None = Field(default=None, description=MEDIA)
    active_learning: dict[str, Any] | None = Field(default=None, description=ACTIVE_LEARNING)
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    pay: dict[str, Any] | None = Field(default=None, description=PAY)
    workforce: str | None = Field(default=None, description="'shared' or 'org'")
    routing: dict[str, Any] | None = Field(default=None, description=ROUTING)
    work_name: str | None = Field(default=None, description=WORK_NAME)
    archived: bool | None = Field(default=None, description="true: read-only, hidden from annotators")


class ProjectRead(BaseModel):
    id: int
    org: str
    name: str
    task: dict[str, Any]
    instructions: str
    redundancy: dict[str, Any]
    gold: dict[str, Any]
    review: dict[str, Any] = Field(default_factory=dict, description=REVIEW)
    prefill: dict[str, Any] = Field(default_factory=dict, description=PREFILL)
    model_annotators: dict[str, Any] = Field(default_factory=dict, description=MODEL_ANNOTATORS)
    media: dict[str, Any] = Field(default_factory=dict, description=MEDIA)
    active_learning: dict[str, Any] = Field(default_factory=dict, description=ACTIVE_LEARNING)
    priority: int
    pay: dict[str, Any] = Field(default_factory=dict, description=PAY)
    workforce: str
    routing: dict[str, Any] = Field(default_factory=dict, description=ROUTING)
    work_name: str = Field(default="", description=WORK_NAME)
    created_at: datetime
    archived_at: datetime | None = None


class ProjectWorkView(BaseModel):
    """What an annotator sees of a project: its work name, never the customer's name for it,
    no organization, no settings."""

    id: int
    name: str = Field(description="the project's work name (a neutral code name)")
    task: dict[str, Any]
    instructions: str
    pay: dict[str, Any] = Field(default_factory=dict, description="what an answer earns: the currency and the "
                                "rate (per_task or per_hour) in minor units; {} pays nothing")


class BatchCreate(Incoming):
    name: str = Field(min_length=1, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2048)


class BatchRead(BaseModel):
    id: int
    project_id: int
    name: str
    status: str
    callback_url: str | None
    counts: dict[str, int]
    created_at: datetime


class BatchPage(BaseModel):
    items: list[BatchRead]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")
