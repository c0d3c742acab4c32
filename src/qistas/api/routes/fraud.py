"""Fraud and low effort: signals per annotator of a project, and probation, block, exclude."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qistas.api.deps import Actor, AppSettings, Db, Id
from qistas.api.report_processes import read_project_report
from qistas.api.schemas.fraud import FraudAction, FraudActionRead, FraudAnnotatorRead, FraudReport
from qistas.db.models import Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import fraud, gold
from qistas.domain.security import pseudonyms
from qistas.policies import ensure_fraud_manager, is_admin
from qistas.report_process import ProjectReport

router = APIRouter(tags=["quality"])


@router.get("/projects/{project_id}/fraud", response_model=FraudReport)
async def fraud_report(
    project_id: Id, request: Request, actor: Actor, db: Db, settings: AppSettings,
    min_seconds: Annotated[float | None, Query(ge=0, le=3600, description="the speed floor; default: a quarter "
                                               "of the project's median time per answer")] = None,
) -> FraudReport:
    """Each annotator's fraud and low-effort signals in the project, and the flags they raise."""
    secret = settings.secret_key or ""
    found, floor = await read_project_report(
        request, db, actor, ProjectReport("fraud", project_id, secret, min_seconds=min_seconds), "fraud.read")

    def named() -> FraudReport:  # an HMAC per annotator: in a thread, not on the event loop
        name = pseudonyms(secret, project_id)
        return FraudReport(project_id=project_id, floor_seconds=round(floor, 3), annotators=[
            FraudAnnotatorRead(annotator=name(a.annotator_id), answers=a.answers, signals=a.signals, flags=a.flags,
                               copies=[name(other) for other in a.copies], status=a.status, reason=a.reason,
                               blocked=a.blocked)
            for a in found])

    report: FraudReport = await run_in_threadpool(named)
    return report


@router.post("/projects/{project_id}/annotators/{annotator}/{action}", response_model=FraudActionRead)
def fraud_action(
    project_id: Id, annotator: Annotated[str, Path(max_length=64)],
    action: Literal["probation", "block", "exclude", "clear"], body: FraudAction, actor: Actor, db: Db,
    settings: AppSettings,
) -> FraudActionRead:
    """Put an annotator of the project on probation, block them, exclude every answer they gave
    (their tasks decided again, or re-opened), or end a probation. ``annotator`` is the
    pseudonym the fraud report shows; admins may also give a user id."""

    def work(session: Session) -> FraudActionRead:
        project = ensure_fraud_manager(actor, session.get(Project, project_id))
        name = pseudonyms(settings.secret_key or "", project.id)
        found = gold.find_annotator(session, project_id=project.id, name=annotator, pseudonym=name,
                                    by_id=is_admin(actor))
        done = fraud.act(session, project=project, annotator_id=found, name=name(found),
                         action=action, reason=body.reason, actor=actor, now=utcnow())
        return FraudActionRead(annotator=annotator, project_id=project.id, status=done.status, blocked=done.blocked,
                               excluded=done.excluded, reopened=done.reopened, redecided=done.redecided)

    return write(db, work)
