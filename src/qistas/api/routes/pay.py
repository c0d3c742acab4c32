"""Pay and time: annotators' earnings and their corrections, payouts, and what a project's labels
cost (docs/workforce.md#pay-and-time).

An annotator reads their own earnings; owners their organization's annotators' and admins
anyone's. Customers read their projects' costs and effective hourly rates, never who earned
them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, Db, Id
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.recorded_reads import Read, read_then_record
from qistas.api.schemas.pay import (
    CorrectionCreate,
    CorrectionRead,
    CostLineRead,
    CurrencyTotalRead,
    EarningsRead,
    HourlyLineRead,
    HourlyReportRead,
    PayoutRead,
    ProjectCostRead,
    ProjectEarningsRead,
)
from qistas.db.models import PayEntry, Project, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import pay, pay_reports, users
from qistas.domain.currencies import major
from qistas.errors import Invalid
from qistas.policies import (
    ensure_customer_access,
    ensure_earnings_reader,
    ensure_org_reachable,
    ensure_pay_manager,
    ensure_payout_reader,
    is_admin,
)

router = APIRouter(tags=["pay"])

From = Annotated[datetime | None, Query(alias="from", description="the period's start (included), with a zone")]
To = Annotated[datetime | None, Query(alias="to", description="the period's end (excluded), with a zone")]


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"{name} needs a time zone (e.g. 2026-01-01T00:00:00Z)", details={"field": name})
    if since is not None and until is not None and until < since:
        raise Invalid("to must not be before from", details={"field": "to"})
    return since, until


def correction_read(entry: PayEntry) -> CorrectionRead:
    return CorrectionRead(id=entry.id, user_id=entry.user_id, project_id=entry.project_id, currency=entry.currency,
                          amount_minor=entry.amount_minor, reason=entry.reason, created_at=entry.created_at)


def earnings_read(found: pay.Earnings) -> EarningsRead:
    return EarningsRead(
        user_id=found.user_id, since=found.since, until=found.until, answers=found.answers,
        active_seconds=found.active_ms / 1000,
        totals=[CurrencyTotalRead(currency=t.currency, answers=t.answers, earned_minor=t.earned_minor,
                                  rejected_answers=t.rejected_answers, rejected_minor=t.rejected_minor,
                                  corrections_minor=t.corrections_minor, total_minor=t.total_minor,
                                  total=major(t.total_minor, t.currency)) for t in found.totals],
        projects=[ProjectEarningsRead(project_id=p.project_id, work_name=p.work_name, currency=p.currency,
                                      answers=p.answers, active_seconds=p.active_ms / 1000,
                                      earned_minor=p.earned_minor) for p in found.projects],
        corrections=[correction_read(entry) for entry in found.corrections],
    )


@router.get("/me/earnings", response_model=EarningsRead)
def my_earnings(actor: Actor, db: Db, since: From = None, until: To = None) -> EarningsRead:
    """Your own statement for the period: answers, time, earnings per currency and project, corrections."""
    since, until = _period(since, until)
    with db.reader() as session:
        return earnings_read(pay.earnings_of(session, user_id=actor.id, since=since, until=until))


@router.get("/users/{user_id}/earnings", response_model=EarningsRead)
def user_earnings(user_id: Id, actor: Actor, db: Db, since: From = None, until: To = None) -> EarningsRead:
    """An annotator's statement: themselves, owners (their organization's annotators), admins."""
    since, until = _period(since, until)
    with db.reader() as session:
        target = ensure_earnings_reader(actor, session.get(User, user_id))
        return earnings_read(pay.earnings_of(session, user_id=target.id, since=since, until=until))


@router.post("/users/{user_id}/earnings/corrections", status_code=201, response_model=CorrectionRead,
             dependencies=[IDEMPOTENT])
def correct_earnings(user_id: Id, body: CorrectionCreate, actor: Actor, db: Db) -> CorrectionRead:
    """Append a correction to an annotator's ledger (admins; owners for their annotators)."""

    def work(session: Session) -> CorrectionRead:
        target = ensure_pay_manager(actor, session.get(User, user_id))
        project = None
        if body.project is not None:
            project = ensure_customer_access(actor, session.get(Project, body.project))
        entry = pay.correct(session, user=target, actor=actor, amount_minor=body.amount_minor,
                            currency=body.currency, reason=body.reason, project=project, now=utcnow())
        return correction_read(entry)

    return write(db, work)


@router.get("/payouts", response_model=list[PayoutRead],
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
def payouts(actor: Actor, db: Db, since: From = None, until: To = None,
            org: Annotated[str | None, Query(max_length=64, description="an organization's annotators (admins; "
                                                                        "owners: always their own)")] = None,
            format: Annotated[str, Query(pattern="^(json|csv)$", description="json or csv")] = "json",
            ) -> list[PayoutRead] | Response:
    """What each annotator is owed for the period, per currency."""
    since, until = _period(since, until)

    def work(session: Session) -> tuple[list[pay.PayoutRow], Read]:
        ensure_payout_reader(actor)
        if org is not None:
            org_id: int | None = ensure_org_reachable(actor, users.find_org(session, org), org).id
        else:
            org_id = None if is_admin(actor) else actor.org_id
        return (pay.payouts(session, org_id=org_id, since=since, until=until),
                Read("payouts.read", "org", org_id, org_id, {"format": format}))

    rows = read_then_record(db, actor, work)
    if format == "csv":
        return Response(pay.payout_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="payouts.csv"'})
    return [PayoutRead(user_id=r.user_id, email=r.email, org=r.org, currency=r.currency, answers=r.answers,
                       active_hours=r.active_ms / 3_600_000, earned_minor=r.earned_minor,
                       corrections_minor=r.corrections_minor, total_minor=r.total_minor,
                       total=major(r.total_minor, r.currency)) for r in rows]


@router.get("/projects/{project_id}/cost", response_model=ProjectCostRead)
def project_cost(project_id: Id, actor: Actor, db: Db, since: From = None, until: To = None) -> ProjectCostRead:
    """What the project's labels cost in the period: per label and per completed task."""
    since, until = _period(since, until)
    with db.reader() as session:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        lines = pay_reports.project_cost(session, project=project, since=since, until=until)
        return ProjectCostRead(project_id=project.id, since=since, until=until, currencies=[
            CostLineRead(currency=c.currency, answers=c.answers, answers_minor=c.answers_minor,
                         corrections_minor=c.corrections_minor, total_minor=c.total_minor,
                         per_label_minor=c.per_label_minor, completed_tasks=c.completed_tasks,
                         completed_minor=c.completed_minor, per_completed_task_minor=c.per_completed_task_minor)
            for c in lines])


@router.get("/projects/{project_id}/effective-rate", response_model=HourlyReportRead)
def effective_rate(project_id: Id, actor: Actor, db: Db, since: From = None, until: To = None) -> HourlyReportRead:
    """Each answer's earning over its server-measured time, per hour: the median, against the floor."""
    since, until = _period(since, until)
    with db.reader() as session:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        lines = pay_reports.hourly_report(session, project=project, since=since, until=until)
        return HourlyReportRead(project_id=project.id, pay=project.pay or {}, since=since, until=until,
                                currencies=[HourlyLineRead(**vars(line)) for line in lines])
