from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming

SKILLS = ('[{"kind": "language"|"domain"|"task_type", "tag": "ar-EG", "level": 1..5}]; language tags are '
          "BCP 47 (language, optional script and region)")


class PoolCreate(Incoming):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(description="team, vendor, in_house or shared")
    org: str | None = Field(default=None, description="organization slug; an admin leaving it out makes an "
                            "instance pool (vendor, shared)")


class PoolRead(BaseModel):
    id: int
    name: str
    kind: str
    org: str | None
    created_at: datetime


class MemberPut(Incoming):
    manager: bool = Field(default=False, description="a manager manages this pool and its members' skills")


class MemberRead(BaseModel):
    user_id: int
    email: str
    manager: bool
    skills: list[dict[str, Any]] = Field(description=SKILLS)


class MemberPage(BaseModel):
    items: list[MemberRead]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")


class SkillsPut(Incoming):
    skills: list[Any] = Field(description=SKILLS)


class SkillsRead(BaseModel):
    user_id: int
    skills: list[dict[str, Any]] = Field(description=SKILLS)


class MembersImported(BaseModel):
    rows: int
    created: int = Field(description="accounts made (without a password: they sign in with a link)")


class ProjectWorkRead(BaseModel):
    project_id: int
    name: str = Field(description="the project's work name, never the customer's")
    type: str
    answers: int
    seconds: float
    gold: int
    gold_accuracy: float | None
    reviewed: int
    review_pass_rate: float | None
    sent_back: int
    standing: str = Field(description="working, probation or blocked")


class MyPoolRead(BaseModel):
    id: int
    name: str
    kind: str
    manager: bool


class ExamTakenRead(BaseModel):
    project_id: int
    name: str = Field(description="the exam's work name")
    number: int
    status: str = Field(description="open, passed or failed")
    score: float | None = Field(description="percent right, once the attempt is finished")
    started_at: datetime
    finished_at: datetime | None


class MyWorkRead(BaseModel):
    totals: dict[str, Any]
    projects: list[ProjectWorkRead]
    skills: list[dict[str, Any]]
    pools: list[MyPoolRead]
    exams: list[ExamTakenRead]
    earned: list[dict[str, Any]] = Field(description='per currency {"currency","total_minor","total"}: '
                                         "all answers' earnings with corrections (GET /me/earnings for a period)")
