from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from qistas.domain.generation import MAX_BATCH_ENDPOINTS, MAX_COUNT, MAX_TOPIC_CHARS, MAX_TOPICS

Topic = Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_CHARS)]


class GenerationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoints: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=MAX_BATCH_ENDPOINTS,
        description="the model endpoints' ids: one (or several, taking items in turn) for candidates to verify; "
                    "2 or more whose answers are compared (pairwise: exactly 2, ranking, chat)")
    template: dict[str, Any] = Field(description='`{"system"?: ..., "user": ...}` with `{topic}`, `{language}`, '
                                                 '`{index}`, `{seed}` placeholders')
    count: int = Field(ge=1, le=MAX_COUNT, description="how many items to ask for")
    topics: list[Topic] = Field(default_factory=list, max_length=MAX_TOPICS,
                                description="taken in turn by the items, from a place the seed draws")
    language: str = Field(default="", max_length=100, description="a language or dialect, for `{language}`")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="sent as `seed + index` with each request")
    temperature: float = Field(default=0.7, ge=0, le=2)
    dedup_threshold: float = Field(default=0.8, gt=0, le=1,
                                   description="the Jaccard similarity of character 5-gram shingles from which a "
                                               "candidate is a near-duplicate and dropped")


class GenerationFailure(BaseModel):
    index: int
    reason: str


class GenerationDuplicate(BaseModel):
    index: int
    of: str = Field(description="the unique_id (or `task {id}`) of the item it nearly duplicates")


class GenerationBatchRead(BaseModel):
    id: int
    project_id: int
    endpoint_ids: list[int]
    models: list[str]
    template: dict[str, str]
    params: dict[str, Any]
    status: str = Field(description="queued, running, done or failed")
    count: int
    next_index: int = Field(description="items asked for so far")
    generated: int = Field(description="tasks added")
    duplicates: int = Field(description="candidates dropped as near-duplicates")
    failed: int = Field(description="items the endpoints could not give, or gave outside the task's schema")
    failures: list[GenerationFailure]
    dropped: list[GenerationDuplicate]
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class GenerationBatchPage(BaseModel):
    items: list[GenerationBatchRead]
