"""Quality: the project report, refits, unblocking an annotator, and an annotator's record for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qistas.api.deps import MAX_ID, Actor, AppSettings, Db, Id
from qistas.api.recorded_reads import Read, read_then_record
from qistas.api.report_processes import ReportProcesses, project_of, read_project_report
from qistas.api.schemas import Incoming
from qistas.api.schemas.reviews import AnswerCount, LabelErrorPage, LikelyErrorRead
from qistas.db.enums import Role
from qistas.db.models import Project, User
from qistas.db.unit_of_work import write
from qistas.domain import audit, gold, label_errors, quality_report
from qistas.domain.security import pseudonyms
from qistas.errors import NotFound
from qistas.policies import ensure_customer_access, is_admin, require_admin
from qistas.report_process import ProjectReport, Refit

router = APIRouter(tags=["quality"])


@router.get("/projects/{project_id}/quality")
async def project_quality(project_id: Id, request: Request, actor: Actor, db: Db,
                          settings: AppSettings) -> dict[str, Any]:
    """Annotators (pseudonymous) with gold accuracy and modelled skill, agreement per label,
    the confusion matrix, and tasks that ended below the confidence target."""
    report: dict[str, Any] = await read_project_report(
        request, db, actor, ProjectReport("quality", project_id, settings.secret_key or ""), "quality.read")
    return report


@router.get("/projects/{project_id}/label-errors", response_model=LabelErrorPage)
def likely_label_errors(
    project_id: Id, actor: Actor, db: Db,
    limit: Annotated[int, Query(ge=1, le=label_errors.MAX_LISTED, description="page size")] = 100,
    offset: Annotated[int, Query(ge=0, lt=label_errors.MAX_LISTED, description="the previous page's next_offset")] = 0,
) -> LabelErrorPage:
    """Delivered tasks ranked by the probability that their answer is wrong, the likeliest first."""

    def work(session: Session) -> tuple[LabelErrorPage, Read]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        found = label_errors.likely_errors(session, project=project, limit=limit, offset=offset)
        return LabelErrorPage(ranking=found.ranking, model=found.model, next_offset=found.next_offset, items=[
            LikelyErrorRead(task_id=e.task.id, unique_id=e.task.unique_id, response=e.task.response,
                            confidence=e.task.confidence, p_wrong=e.p_wrong, agreement=e.agreement,
                            answers=[AnswerCount(answer=a, n=n) for a, n in e.answers])
            for e in found.items]), Read("label_errors.read", "project", project.id, project.org_id)

    return read_then_record(db, actor, work)


@router.post("/projects/{project_id}/quality/refit")
async def refit(project_id: Id, request: Request, actor: Actor, db: Db, settings: AppSettings) -> dict[str, Any]:
    """Fit the worker model now and re-score completed tasks; returns what changed (409 while
    another process is refitting the project)."""
    org_id, answers = await project_of(db, actor, project_id)
    processes: ReportProcesses = request.app.state.report_processes
    result = await processes.refit(db, Refit(project_id, settings.job_lease_seconds, settings.refit_sample_answers),
                                   org_id=org_id, answers=answers)
    changed = len(result.changed) if result is not None else 0
    await run_in_threadpool(write, db, lambda session: audit.record(
        session, actor=actor, action="quality.refit", object_type="project", object_id=project_id, org_id=org_id,
        details={"changed": changed}))
    if result is None:
        return {"method": None, "answers": 0, "workers": 0, "changed": 0, "changed_task_ids": []}
    return {"method": result.method, "answers": result.n_answers, "workers": result.n_workers,
            "changed": len(result.changed), "changed_task_ids": result.changed[:1000]}


class Unblock(Incoming):
    project: int = Field(ge=1, le=MAX_ID)
    probation: int = Field(default=10, ge=0, le=gold.MAX_PROBATION,
                           description="gold answers counted afresh before the threshold applies again")


@router.post("/annotators/{annotator}/unblock")
def unblock(annotator: Annotated[str, Path(max_length=64)], body: Unblock, actor: Actor, db: Db,
            settings: AppSettings) -> dict[str, Any]:
    """Let an annotator blocked by the gold threshold work on the project again, on probation.

    ``annotator`` is the pseudonym the project's quality report shows; admins may also give a
    user id. Customers never learn a shared annotator's id.
    """

    def work(session: Session) -> dict[str, Any]:
        project = ensure_customer_access(actor, session.get(Project, body.project))
        found = gold.find_annotator(session, project_id=project.id, name=annotator,
                                    pseudonym=pseudonyms(settings.secret_key or "", project.id), by_id=is_admin(actor))
        done = gold.unblock(session, project=project, annotator_id=found, probation=body.probation, actor=actor)
        return {"annotator": annotator, "project": project.id, "blocked": done.blocked, "probation": done.probation}

    return write(db, work)


@router.get("/annotators/{user_id}/quality")
def annotator_quality(user_id: Id, actor: Actor, db: Db) -> dict[str, Any]:
    """An annotator's record across projects (admins only: it spans organizations)."""
    require_admin(actor)
    with db.reader() as session:
        user = session.get(User, user_id)
        if user is None or user.role != Role.ANNOTATOR:
            raise NotFound("annotator not found")
        return {"annotator_id": user.id, "email": user.email,
                "projects": quality_report.annotator_quality(session, annotator_id=user.id)}
