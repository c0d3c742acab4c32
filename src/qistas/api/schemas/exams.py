from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming

GRANTS = ('{"kind": "language"|"domain"|"task_type", "tag", "level": 1..5} granted on a pass '
          "(a higher level the annotator has stays), or null")


class ExamPut(Incoming):
    pass_mark: Any = Field(description="percent of an attempt's questions answered right to pass, 0 to 100")
    questions: Any = Field(description="questions per attempt: gold tasks the annotator has not seen")
    cooldown_seconds: Any = Field(default=0, description="after a failed attempt, before the next may begin")
    max_attempts: Any = Field(default=None, description="attempts an annotator may make; null: no limit")
    grants: Any = Field(default=None, description=GRANTS)


class ExamRead(BaseModel):
    id: int = Field(description="the exam's project")
    name: str = Field(description="the project's name; to an annotator its work name")
    pass_mark: float
    questions: int
    cooldown_seconds: int
    max_attempts: int | None
    grants: dict[str, Any] | None = Field(description=GRANTS)
    gold_tasks: int | None = Field(description="the questions there are (its organization's view; null to an "
                                               "annotator)")


class AttemptRead(BaseModel):
    id: int
    exam: int = Field(description="the exam's project")
    number: int = Field(description="1 for the annotator's first attempt at this exam")
    status: str = Field(description="open, passed or failed")
    questions: int
    served: int = Field(description="questions served so far")
    answered: int
    score: float | None = Field(description="percent of the questions answered right, once finished")
    passed: bool | None = Field(description="once finished")
    pass_mark: float
    started_at: datetime
    finished_at: datetime | None
    annotator: str | None = Field(description="the annotator's pseudonym in the exam's project (the "
                                              "organization's view; null to the annotator)")


class AttemptPage(BaseModel):
    items: list[AttemptRead]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")
