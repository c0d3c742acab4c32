"""Earnings, corrections, payouts and what a project's labels cost (docs/workforce.md#pay-and-time).

Every amount is an integer count of its currency's minor unit (cents for USD): ``*_minor``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from qistas.api.schemas import Incoming
from qistas.domain.pay import MAX_CORRECTION


class Period(BaseModel):
    """The period a report covers: ``[from, to)``; null: open."""

    model_config = ConfigDict(populate_by_name=True)

    since: datetime | None = Field(default=None, serialization_alias="from")
    until: datetime | None = Field(default=None, serialization_alias="to")


class CorrectionCreate(Incoming):
    amount_minor: int = Field(ge=-MAX_CORRECTION, le=MAX_CORRECTION,
                              description="positive: owed more; negative: a deduction; never 0")
    currency: str = Field(min_length=1, max_length=8, description="ISO 4217, e.g. USD, EUR, SAR")
    reason: str = Field(min_length=1, max_length=2000)
    project: int | None = Field(default=None, ge=1, le=2**63 - 1, description="the project it is about, if one")


class CorrectionRead(BaseModel):
    id: int
    user_id: int
    project_id: int | None
    currency: str
    amount_minor: int
    reason: str
    created_at: datetime


class CurrencyTotalRead(BaseModel):
    currency: str
    answers: int = Field(description="paid answers")
    earned_minor: int
    rejected_answers: int = Field(description="of them, answers a reviewer sent back (paid unless corrected)")
    rejected_minor: int
    corrections_minor: int
    total_minor: int = Field(description="earned_minor + corrections_minor")
    total: str = Field(description="total_minor in the major unit, e.g. \"12.34\"")


class ProjectEarningsRead(BaseModel):
    project_id: int
    work_name: str
    currency: str | None = Field(description="null: the project paid nothing then")
    answers: int
    active_seconds: float
    earned_minor: int


class EarningsRead(Period):
    user_id: int
    answers: int = Field(description="every answer of the period, paid or not")
    active_seconds: float = Field(description="their time by the server's clock")
    totals: list[CurrencyTotalRead]
    projects: list[ProjectEarningsRead]
    corrections: list[CorrectionRead]


class PayoutRead(BaseModel):
    user_id: int
    email: str
    org: str | None
    currency: str
    answers: int
    active_hours: float
    earned_minor: int
    corrections_minor: int
    total_minor: int
    total: str


class CostLineRead(BaseModel):
    currency: str
    answers: int = Field(description="paid answers (labels) of the period, gold ones included")
    answers_minor: int
    corrections_minor: int
    total_minor: int
    per_label_minor: int | None
    completed_tasks: int = Field(description="tasks completed in the period with a paid answer")
    completed_minor: int = Field(description="what those tasks' answers earned")
    per_completed_task_minor: int | None


class ProjectCostRead(Period):
    project_id: int
    currencies: list[CostLineRead]


class HourlyLineRead(BaseModel):
    currency: str | None = Field(description="null: answers given while the project paid nothing")
    answers: int = Field(description="answers with a measured time")
    median_seconds: float
    p90_seconds: float
    median_hourly_minor: int | None = Field(description="the median of each answer's earning over its time, "
                                            "per hour")
    floor_per_hour: int | None
    share_below_floor: float | None
    below_floor: bool | None = Field(description="the median hourly rate is below the floor")
    per_task_for_floor: int | None = Field(description="the per-task rate that pays the floor at the median time")


class HourlyReportRead(Period):
    project_id: int
    pay: dict[str, object]
    currencies: list[HourlyLineRead]
