from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^/\s][^/]*$",
                      description="names the endpoint's predictions, with the model: `name/model`")
    base_url: str = Field(min_length=1, max_length=2048,
                          description="the API's base, ending before `/chat/completions`, e.g. `http://gpu-1:8000/v1`")
    model: str = Field(min_length=1, max_length=200, description="the `model` sent with each request")
    api_key: str | None = Field(default=None, min_length=1, max_length=512,
                                description="sent as `Authorization: Bearer`; stored sealed, never shown again")
    max_concurrency: int = Field(default=4, ge=1, le=64, description="requests in flight at once")
    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="deadline of one request")
    allow_private: bool = Field(default=False, description="admins only: let the endpoint reach private addresses")
    price_input_per_1k: float | None = Field(default=None, ge=0, le=1000)
    price_output_per_1k: float | None = Field(default=None, ge=0, le=1000)
    org: str | None = Field(default=None, max_length=64,
                            description="the organization's slug: required of an admin, else the actor's own")


class ModelEndpointRead(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    id: int
    org_id: int
    name: str
    base_url: str
    model: str
    has_api_key: bool
    max_concurrency: int
    requests_per_minute: int | None
    timeout_seconds: float
    allow_private: bool
    price_input_per_1k: float | None
    price_output_per_1k: float | None
    created_at: datetime


class PrelabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: int = Field(ge=1, le=2**63 - 1, description="the model endpoint's id")
    template: dict[str, Any] = Field(description='`{"system"?: ..., "user": ...}` with `{field}` placeholders')
    only_pending: bool = Field(default=True, description="only tasks still pending; else every task not canceled")
    as_: str = Field(default="predictions", alias="as",
                     description="`predictions` (pre-labels on the tasks) or `annotations` (the model answers as an "
                                 "annotator of its own, counted in truth inference; pending tasks only)")
    standing: bool = Field(default=False, description="answer the tasks added afterwards too, as they come, until "
                                                      "the job is stopped (`POST /prelabel-jobs/{id}/stop`)")


class PrelabelFailure(BaseModel):
    task_id: int
    reason: str


class PrelabelJobRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: int
    project_id: int
    endpoint_id: int
    model: str = Field(description="the `model` of the predictions it stores")
    as_: str = Field(alias="as", description="what the answers become: `predictions` or `annotations`")
    standing: bool = Field(default=False, description="answers each task as it comes until stopped")
    status: str = Field(description="queued, running, waiting (a standing job between passes), done, failed or "
                                    "stopped")
    tasks_total: int | None
    done: int = Field(description="tasks given a prediction (or the model's annotation)")
    failed: int = Field(description="tasks whose answer could not be had or was refused")
    skipped: int = Field(description="tasks that already carried this model's prediction or answer, or that "
                                     "closed before the answer came")
    failures: list[PrelabelFailure] = Field(description="the first failures, with their reasons")
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelUsage(BaseModel):
    jobs: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float
    done: int
    failed: int


class PrelabelJobPage(BaseModel):
    items: list[PrelabelJobRead]
    usage: ModelUsage = Field(description="the project's accounting over all its pre-label jobs")
