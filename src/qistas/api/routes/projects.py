"""Projects, batches and project statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, AppSettings, Db, Id
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.projects import (
    BatchCreate,
    BatchRead,
    ProjectCreate,
    ProjectRead,
    ProjectWorkView,
)
from qistas.db.enums import Role
from qistas.db.models import Batch, Organization, Project, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import projects, results, users
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
        gold=project.gold_policy, priority=project.priority, pay_rate=project.pay_rate,
        workforce=project.workforce, created_at=project.created_at,
    )


def project_view(session: Session, actor: User, project: Project) -> ProjectRead | ProjectWorkView:
    if actor.role == Role.ANNOTATOR:
        return ProjectWorkView(id=project.id, name=project.name, task=project.task_spec,
                               instructions=project.instructions)
    return project_read(session, project)


def batch_read(session: Session, batch: Batch) -> BatchRead:
    return BatchRead(id=batch.id, project_id=batch.project_id, name=batch.name, status=batch.status,
                     callback_url=batch.callback_url, counts=projects.batch_counts(session, batch_id=batch.id),
                     created_at=batch.created_at)


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
            instructions=body.instructions, redundancy=redundancy, gold=body.gold,
            priority=body.priority, pay_rate=body.pay_rate, workforce=body.workforce,
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


@router.post("/projects/{project_id}/batches", status_code=201, response_model=BatchRead, dependencies=[IDEMPOTENT])
def create_batch(project_id: Id, body: BatchCreate, actor: Actor, db: Db, settings: AppSettings) -> BatchRead:
    def work(session: Session) -> BatchRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        if body.callback_url is not None:
            resolve(body.callback_url, Policy.from_settings(settings), field_name="callback_url")
        batch = projects.create_batch(session, project=project, name=body.name, callback_url=body.callback_url)
        return batch_read(session, batch)

    return write(db, work)


@router.get("/projects/{project_id}/batches", response_model=list[BatchRead])
def list_batches(project_id: Id, actor: Actor, db: Db) -> list[BatchRead]:
    with db.reader() as session:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        found = session.scalars(select(Batch).where(Batch.project_id == project.id).order_by(Batch.id))
        return [batch_read(session, b) for b in found]


@router.get("/batches/{batch_id}", response_model=BatchRead)
def get_batch(batch_id: Id, actor: Actor, db: Db) -> BatchRead:
    with db.reader() as session:
        batch, _ = projects.get_batch(session, batch_id=batch_id, actor=actor)
        return batch_read(session, batch)


@router.post("/batches/{batch_id}/{action}", response_model=BatchRead)
def change_batch(batch_id: Id, action: str, actor: Actor, db: Db) -> BatchRead:
    """Move a batch: ``finalize`` (staging → in_progress), ``pause``, ``resume``, ``cancel``."""

    def work(session: Session) -> BatchRead:
        batch, _ = projects.get_batch(session, batch_id=batch_id, actor=actor)
        projects.change_batch(session, batch=batch, action=action)
        return batch_read(session, batch)

    return write(db, work)


@router.get("/projects/{project_id}/stats")
def stats(project_id: Id, actor: Actor, db: Db) -> dict[str, Any]:
    with db.reader() as session:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        return results.project_stats(session, project_id=project.id, now=utcnow())
