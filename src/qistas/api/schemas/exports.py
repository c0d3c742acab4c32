from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(default="jsonl", description="jsonl, csv, parquet, hf, conll, coco, preference or chat")
    completed: bool = Field(default=False, description="only completed tasks")
    min_confidence: float | None = Field(default=None, ge=0, le=1, description="only results at least this confident")
    batch: str | None = Field(default=None, description="only this batch (by name)")
    since: str | None = Field(default=None, description="only results completed after this cursor")


class ExportRead(BaseModel):
    id: int
    project_id: int
    format: str
    options: dict[str, object]
    status: str = Field(description="queued, running, done, failed or expired (its file was deleted)")
    rows_done: int
    rows_total: int | None
    progress: float | None = Field(description="rows_done / rows_total, 0 to 1")
    size_bytes: int | None
    cursor: str | None = Field(description="pass as `since` to export only what completes later")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    file: str | None = Field(description="where to download the file once done")
