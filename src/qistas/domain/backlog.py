"""The instance's work in flight and waiting, counted for the operator's metrics.

Counts over every organization together: no tenant is named and no task data is read. One
statement of five counts, each over an index that holds the status it filters on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, func, select
from sqlalchemy.orm import Session

from qistas.db.enums import LeaseStatus, TaskStatus
from qistas.db.models import Assignment, Delivery, ExportJob, Task


@dataclass(frozen=True)
class Backlog:
    leases_active: int  # assignments held by an annotator, not yet expired
    tasks_pending: int  # imported tasks neither completed nor canceled: the queue
    deliveries_pending: int  # webhook and callback deliveries waiting to be sent or retried
    export_jobs_queued: int
    export_jobs_running: int


def _count(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).where(*conditions).scalar_subquery()


def backlog(session: Session, *, now: datetime) -> Backlog:
    row = session.execute(select(
        _count(Assignment.status == LeaseStatus.ACTIVE, Assignment.expires_at > now),
        _count(Task.status == TaskStatus.PENDING),
        _count(Delivery.status == "pending"),
        _count(ExportJob.status == "queued"),
        _count(ExportJob.status == "running"),
    )).one()
    return Backlog(*(int(value) for value in row))
