"""Projects, batches and project statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, After, AppSettings, Db, Id, Limit
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.recorded_reads import Read, read_then_record
from qistas.api.schemas.projects import (
    BatchCreate,
    BatchPage,
    BatchRead,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    ProjectWorkView,
)
from qistas.db.enums import Role
from qistas.db.models import Batch, Organization, Project, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import audit, pay, projects, results, users, workforce
from qistas.domain.destinations import Policy, resolve
from qistas.errors import Invalid
from qistas.policies import (
    ensure_customer_access,
    ensure_may_create_project,
    ensure_org_reachable,
    ensure_project_visible,
)

router = APIRouter(tags=["projects"])


def project_read(session: Session, project: Project) -> ProjectRead:
    org = session.get(Organization, project.org_id)
    assert org is not None
    return ProjectRead(
        id=project.id, org=org.slug, name=project.name, task=project.task_spec,
        instructions=project.instructions,
        redundancy={"min": project.redundancy_min, "max": project.redundancy_max,
                    "target": project.redundancy_target},
        gold=project.gold_policy, review=project.review_policy, prefill=project.prefill,
        model_annotators=project.model_annotators, media=project.media,
        active_learning=project.active_learning, priority=project.priority,
        pay=project.pay or {},
        workforce=project.workforce, routing=workforce.routing_view(project.routing or {}),
        work_name=project.work_name, created_at=project.created_at, archived_at=project.archived_at,
    )


def project_view(session: Session, actor: User, project: Project) -> ProjectRead | ProjectWorkView:
    if actor.role == Role.ANNOTATOR:
        return ProjectWorkView(id=project.id, name=project.work_name, task=project.task_spec,
                               instructions=project.instructions, pay=pay.rate_view(project.pay or {}))
    return project_read(session, project)


def batch_read(session: Session, batch: Batch) -> BatchRead:
    return _batch_read(batch, projects.batch_counts(session, batch_id=batch.id))


def _batch_read(batch: Batch, counts: dict[str, int]) -> BatchRead:
    return BatchRead(id=batch.id, project_id=batch.project_id, name=batch.name, status=batch.status,
                     callback_url=batch.callback_url, counts=counts, created_at=batch.created_at)


@router.post("/projects", status_code=201, response_model=ProjectRead, dependencies=[IDEMPOTENT])
def create_project(body: ProjectCreate, actor: Actor, db: Db) -> ProjectRead:
    def work(session: Session) -> ProjectRead:
        if actor.role == Role.ADMIN:
            if body.org is None:
                raise Invalid("an admin creating a project names its organization (org)", details={"field": "org"})
            org_id = users.get_org_by_slug(session, body.org).id
        else:
            org_id = ensure_may_create_project(actor)
            if body.org is not None:  # may only name their own: another answers like a missing one
                ensure_org_reachable(actor, users.find_org(session, body.org), body.org)
        redundancy = body.redundancy.model_dump(exclude_none=True)
        project = projects.create_project(
            session, org_id=org_id, actor=actor, name=body.name, task=body.task,
            instructions=body.instructions, redundancy=redundancy, gold=body.gold, review=body.review,
            prefill=body.prefill, model_annotators=body.model_annotators, media=body.media,
            active_learning=body.active_learning,
            priority=body.priority,
            pay=body.pay, workforce=body.workforce, routing=body.routing, work_name=body.work_name,
        )
        return project_read(session, project)

    return write(db, work)


@router.get("/projects", response_model=list[ProjectRead | ProjectWorkView])
def list_projects(actor: Actor, db: Db) -> list[ProjectRead | ProjectWorkView]:
    with db.reader() as session:
        return [project_view(session, actor, p) for p in projects.list_projects(session, actor=actor)]


@router.get("/projects/{project_id}", response_model=ProjectRead | ProjectWorkView)
def get_project(project_id: Id, actor: Actor, db: Db) -> ProjectRead | ProjectWorkView:
    with db.reader() as session:
        project = ensure_project_visible(actor, session.get(Project, project_id))
        return project_view(session, actor, project)


@router.patch("/projects/{project_id}", response_model=ProjectRead)
def update_project(project_id: Id, body: ProjectUpdate, actor: Actor, db: Db) -> ProjectRead:
    """Change settings; ``task`` only while no task is answered; ``archived`` makes it read-only."""
    changes = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise Invalid(f"{name} may not be null; leave it out to keep it", details={"field": name})
    if "redundancy" in changes:
        changes["redundancy"] = {k: v for k, v in changes["redundancy"].items() if v is not None}

    def work(session: Session) -> ProjectRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        projects.update_project(session, project=project, actor=actor, changes=changes, now=utcnow())
        return project_read(session, project)

    return write(db, work)


@router.post("/projects/{project_id}/batches", status_code=201, response_model=BatchRead, dependencies=[IDEMPOTENT])
def create_batch(project_id: Id, body: BatchCreate, actor: Actor, db: Db, settings: AppSettings) -> BatchRead:
    def work(session: Session) -> BatchRead:
        project = projects.ensure_writable(ensure_customer_access(actor, session.get(Project, project_id)))
        if body.callback_url is not None:
            resolve(body.callback_url, Policy.from_settings(settings), field_name="callback_url")
        batch = projects.create_batch(session, project=project, name=body.name, callback_url=body.callback_url)
        audit.record(session, actor=actor, action="batch.create", object_type="batch", object_id=batch.id,
                     org_id=project.org_id, details={"name": batch.name})
        return batch_read(session, batch)

    return write(db, work)


@router.get("/projects/{project_id}/batches", response_model=BatchPage)
def list_batches(project_id: Id, actor: Actor, db: Db, limit: Limit, after: After = None) -> BatchPage:
    """The project's batches a page at a time, in id order, each with its tasks counted by status."""
    def work(session: Session) -> BatchPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        page = projects.list_batches(session, project=project, after=after, limit=limit)
        counts = projects.batch_counts_of(session, batch_ids=[b.id for b in page])
        audit.record(session, actor=actor, action="batches.read", object_type="project", object_id=project.id,
                     org_id=project.org_id, details={"count": len(page)})
        return BatchPage(items=[_batch_read(b, counts.get(b.id, {})) for b in page],
                         next=page[-1].id if len(page) == limit else None)

    return write(db, work)


@router.get("/batches/{batch_id}", response_model=BatchRead)
def get_batch(batch_id: Id, actor: Actor, db: Db) -> BatchRead:
    def work(session: Session) -> BatchRead:
        batch, project = projects.get_batch(session, batch_id=batch_id, actor=actor)
        audit.record(session, actor=actor, action="batch.read", object_type="batch", object_id=batch.id,
                     org_id=project.org_id)
        return batch_read(session, batch)

    return write(db, work)


@router.post("/batches/{batch_id}/{action}", response_model=BatchRead)
def change_batch(batch_id: Id, action: str, actor: Actor, db: Db) -> BatchRead:
    """Move a batch: ``finalize`` (staging → in_progress), ``pause``, ``resume``, ``cancel``."""

    def work(session: Session) -> BatchRead:
        batch, project = projects.get_batch(session, batch_id=batch_id, actor=actor)
        projects.change_batch(session, batch=batch, action=action)
        audit.record(session, actor=actor, action=f"batch.{action}", object_type="batch", object_id=batch.id,
                     org_id=project.org_id)
        return batch_read(session, batch)

    return write(db, work)


@router.get("/projects/{project_id}/stats")
def stats(project_id: Id, actor: Actor, db: Db) -> dict[str, Any]:
    def work(session: Session) -> tuple[dict[str, Any], Read]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        return (results.project_stats(session, project_id=project.id, now=utcnow()),
                Read("stats.read", "project", project.id, project.org_id))

    return read_then_record(db, actor, work)
