"""Fraud and low-effort signals per annotator, and the actions on a flagged one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming
from qistas.domain.fraud import MAX_REASON


class FraudAnnotatorRead(BaseModel):
    annotator: str = Field(description="pseudonym in the project (as in its results)")
    answers: int = Field(description="answers judged (excluded ones are not)")
    signals: dict[str, Any] = Field(description="fast_share, burst_share, top_answer_share, entropy_ratio, "
                                                "one_answer_p, chance_log_bf")
    flags: list[str] = Field(description="the signals raised: fast, burst, one_answer, chance, copying")
    copies: list[str] = Field(description="the annotators this one shares wrong gold answers with, far above chance")
    status: str | None = Field(description="probation, blocked or excluded; null when no action was taken")
    reason: str | None
    blocked: bool = Field(description="served no more of the project's tasks (by a fraud action or gold accuracy)")


class FraudReport(BaseModel):
    project_id: int
    floor_seconds: float = Field(description="answers faster than this, from lease to submit, count as fast")
    annotators: list[FraudAnnotatorRead]


class FraudAction(Incoming):
    reason: str | None = Field(default=None, max_length=MAX_REASON,
                               description="why (required except for clear); recorded in the audit log")


class FraudActionRead(BaseModel):
    annotator: str
    project_id: int
    status: str | None
    blocked: bool
    excluded: int = Field(description="answers newly excluded by this call")
    reopened: int = Field(description="delivered tasks that went back to pending for another answer")
    redecided: int = Field(description="tasks decided again from the answers left")
