"""What a project's labels cost its customer, and whether its rate is fair for the time its tasks
take (domain.pay keeps the ledger these read).

Both read the answers' earnings as they were written at submit, and the corrections made on
the project; amounts stay integer minor units (an average is rounded half up to one). Neither
names an annotator.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.enums import TaskStatus
from qistas.db.models import Annotation, PayEntry, Project, Task
from qistas.domain.pay import in_period

_MS_PER_HOUR = 3_600_000


def _per(amount: int, count: int) -> int | None:
    """amount / count rounded half up (half away from zero), or None when there is nothing to divide by."""
    if count == 0:
        return None
    whole, rest = divmod(abs(amount) * 2 + count, 2 * count)
    return whole if amount >= 0 else -whole


@dataclass
class CostLine:
    currency: str
    answers: int = 0  # paid answers submitted in the period (labels), gold ones included
    answers_minor: int = 0
    corrections_minor: int = 0  # corrections made on the project in the period
    completed_tasks: int = 0  # tasks completed in the period with a paid answer
    completed_minor: int = 0  # what those tasks' answers earned, whenever they were given

    @property
    def total_minor(self) -> int:
        return self.answers_minor + self.corrections_minor

    @property
    def per_label_minor(self) -> int | None:
        return _per(self.answers_minor, self.answers)

    @property
    def per_completed_task_minor(self) -> int | None:
        return _per(self.completed_minor, self.completed_tasks)


def project_cost(session: Session, *, project: Project, since: datetime | None, until: datetime | None
                 ) -> list[CostLine]:
    """The project's cost for [since, until), per currency: per label and per completed task."""
    lines: dict[str, CostLine] = {}
    answers = session.execute(
        select(Annotation.pay_currency, func.count(), func.sum(Annotation.pay_minor))
        .where(Annotation.project_id == project.id, Annotation.pay_currency.is_not(None),
               *in_period(Annotation.created_at, since, until))
        .group_by(Annotation.pay_currency))
    for currency, count, amount in answers:
        line = lines.setdefault(str(currency), CostLine(str(currency)))
        line.answers, line.answers_minor = count, int(amount or 0)
    corrections = session.execute(
        select(PayEntry.currency, func.sum(PayEntry.amount_minor))
        .where(PayEntry.project_id == project.id, *in_period(PayEntry.created_at, since, until))
        .group_by(PayEntry.currency))
    for currency, amount in corrections:
        lines.setdefault(currency, CostLine(currency)).corrections_minor = int(amount or 0)
    completed = session.execute(
        select(Annotation.pay_currency, func.count(func.distinct(Task.id)), func.sum(Annotation.pay_minor))
        .join(Task, Task.id == Annotation.task_id)
        .where(Task.project_id == project.id, Task.status == TaskStatus.COMPLETED,
               Annotation.pay_currency.is_not(None), *in_period(Task.completed_at, since, until))
        .group_by(Annotation.pay_currency))
    for currency, count, amount in completed:
        line = lines.setdefault(str(currency), CostLine(str(currency)))
        line.completed_tasks, line.completed_minor = count, int(amount or 0)
    return [lines[code] for code in sorted(lines)]


@dataclass(frozen=True)
class HourlyLine:
    """The answers of one currency (None: given while the project paid nothing)."""

    currency: str | None
    answers: int  # answers with a measured time
    median_seconds: float
    p90_seconds: float
    # Each answer's earning over its time, per hour: the median, and the share of answers
    # below the floor (None without a floor in this currency).
    median_hourly_minor: int | None
    floor_per_hour: int | None
    share_below_floor: float | None
    below_floor: bool | None
    # The per-task rate that would pay the floor at the median time.
    per_task_for_floor: int | None


def hourly_report(session: Session, *, project: Project, since: datetime | None, until: datetime | None
                  ) -> list[HourlyLine]:
    """The effective hourly rate of the project's answers in [since, until), by the server's
    clock: each answer's earning over its active time. Flagged when the median is below the
    project's ``floor_per_hour`` (in the project's current currency)."""
    rows = session.execute(
        select(Annotation.pay_currency, Annotation.pay_minor, Annotation.active_ms)
        .where(Annotation.project_id == project.id, Annotation.active_ms > 0,
               *in_period(Annotation.created_at, since, until))
    ).all()
    grouped: dict[str | None, list[tuple[int | None, int]]] = {}
    for currency, amount, active in rows:
        grouped.setdefault(currency, []).append((amount, int(active or 0)))
    pay: dict[str, Any] = project.pay or {}
    return [_hourly(currency, grouped[currency], pay)
            for currency in sorted(grouped, key=lambda c: (c is None, c or ""))]


def _hourly(currency: str | None, answers: list[tuple[int | None, int]], pay: dict[str, Any]) -> HourlyLine:
    times = sorted(active for _, active in answers)
    median_ms = statistics.median(times)
    p90_ms = times[min(len(times) - 1, int(0.9 * len(times)))]
    floor = pay.get("floor_per_hour") if currency is not None and pay.get("currency") == currency else None
    if currency is None:
        return HourlyLine(None, len(times), median_ms / 1000, p90_ms / 1000, None, None, None, None, None)
    paid = [(amount, active) for amount, active in answers if amount is not None]
    # Each answer's rate in whole minor units an hour, rounded half up; the median is one of them.
    median_hourly = statistics.median_low((2 * amount * _MS_PER_HOUR + active) // (2 * active)
                                          for amount, active in paid)
    share = None
    if floor is not None:
        share = sum(amount * _MS_PER_HOUR < floor * active for amount, active in paid) / len(paid)
    for_floor = None if floor is None else -(-floor * int(median_ms) // _MS_PER_HOUR)  # rounded up
    return HourlyLine(currency, len(times), median_ms / 1000, p90_ms / 1000, median_hourly, floor, share,
                      None if floor is None else median_hourly < floor, for_floor)
