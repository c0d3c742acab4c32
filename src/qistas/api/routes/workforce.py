"""Pools of annotators, their members and skills (docs/workforce.md).

Admins manage every pool, an organization's owners their organization's pools, a pool's
managers that pool only. Another tenant's pool, or one outside the actor's reach, is "not found".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qistas.api.deps import Actor, After, Db, Id, Limit
from qistas.api.schemas.workforce import (
    ExamTakenRead,
    MemberPage,
    MemberPut,
    MemberRead,
    MembersImported,
    MyPoolRead,
    MyWorkRead,
    PoolCreate,
    PoolRead,
    ProjectWorkRead,
    SkillsPut,
    SkillsRead,
)
from qistas.db.enums import Role
from qistas.db.models import Organization, Pool, User
from qistas.db.unit_of_work import read, write
from qistas.domain import users, workforce
from qistas.domain.my_work import MyWork, my_work
from qistas.errors import Invalid
from qistas.policies import (
    ensure_may_create_pool,
    ensure_may_name_managers,
    ensure_org_reachable,
    ensure_pool_visible,
    is_admin,
)

router = APIRouter(tags=["workforce"])
CSV_BODY = {"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}}


def pool_read(session: Session, pool: Pool) -> PoolRead:
    org = session.get(Organization, pool.org_id) if pool.org_id is not None else None
    return PoolRead(id=pool.id, name=pool.name, kind=pool.kind, org=org.slug if org else None,
                    created_at=pool.created_at)


@router.post("/pools", status_code=201, response_model=PoolRead)
def create_pool(body: PoolCreate, actor: Actor, db: Db) -> PoolRead:
    def work(session: Session) -> PoolRead:
        if body.org is not None:
            org_id: int | None = ensure_org_reachable(actor, users.find_org(session, body.org), body.org).id
        else:
            org_id = None if is_admin(actor) else actor.org_id
        ensure_may_create_pool(actor, org_id=org_id)
        pool = workforce.create_pool(session, org_id=org_id, name=body.name, kind=body.kind)
        workforce.record(session, actor=actor, pool=pool, action="pool.create",
                         details={"name": pool.name, "kind": pool.kind})
        return pool_read(session, pool)

    return write(db, work)


@router.get("/pools", response_model=list[PoolRead])
def list_pools(actor: Actor, db: Db) -> list[PoolRead]:
    with db.reader() as session:
        return [pool_read(session, p) for p in workforce.list_pools(session, actor=actor)]


@router.get("/pools/{pool_id}", response_model=PoolRead)
def get_pool(pool_id: Id, actor: Actor, db: Db) -> PoolRead:
    with db.reader() as session:
        pool = session.get(Pool, pool_id)
        manages = pool is not None and workforce.manages(session, pool_id=pool_id, user_id=actor.id)
        return pool_read(session, ensure_pool_visible(actor, pool, manages=manages))


@router.get("/pools/{pool_id}/members", response_model=MemberPage)
def list_members(
    pool_id: Id, actor: Actor, db: Db, limit: Limit, after: After = None,
    email: Annotated[str | None, Query(min_length=1, max_length=320,
                                       description="only members whose email address holds this, in any case")] = None,
) -> MemberPage:
    """The pool's members a page at a time, in user id order."""
    with db.reader() as session:
        pool = workforce.managed_pool(session, actor=actor, pool_id=pool_id)
        page = workforce.members(session, pool=pool, after=after, limit=limit, email=email)
    return MemberPage(items=[MemberRead(user_id=m.user_id, email=m.email, manager=m.is_manager,
                                        skills=workforce.skills_list(m.skills)) for m in page],
                      next=page[-1].user_id if len(page) == limit else None)


@router.put("/pools/{pool_id}/members/{user_id}", status_code=204)
def put_member(pool_id: Id, user_id: Id, body: MemberPut, actor: Actor, db: Db) -> Response:
    """Add an annotator to the pool (or change whether they manage it: admins and owners only)."""

    def work(session: Session) -> None:
        pool = workforce.managed_pool(session, actor=actor, pool_id=pool_id)
        if body.manager:
            ensure_may_name_managers(actor)
        workforce.add_member(session, pool=pool, user=session.get(User, user_id), is_manager=body.manager)
        workforce.record(session, actor=actor, pool=pool, action="pool.member.put",
                         details={"user": user_id, "manager": body.manager})

    write(db, work)
    return Response(status_code=204)


@router.delete("/pools/{pool_id}/members/{user_id}", status_code=204)
def remove_member(pool_id: Id, user_id: Id, actor: Actor, db: Db) -> Response:
    def work(session: Session) -> None:
        pool = workforce.managed_pool(session, actor=actor, pool_id=pool_id)
        workforce.remove_member(session, pool=pool, user=session.get(User, user_id))
        workforce.record(session, actor=actor, pool=pool, action="pool.member.remove", details={"user": user_id})

    write(db, work)
    return Response(status_code=204)


@router.post("/pools/{pool_id}/members/import", status_code=201, response_model=MembersImported,
             openapi_extra=CSV_BODY)
async def import_members(pool_id: Id, request: Request, actor: Actor, db: Db) -> MembersImported:
    """Add many annotators from a CSV (``email,skills,manager``); a bad row is named, nothing is written."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the CSV is not UTF-8", details={"field": "body"}) from None

    def work(session: Session) -> MembersImported:
        pool = workforce.managed_pool(session, actor=actor, pool_id=pool_id)
        may_name = is_admin(actor) or actor.role == Role.OWNER
        done = workforce.import_members(session, pool=pool, text=text, may_name_managers=may_name)
        workforce.record(session, actor=actor, pool=pool, action="pool.members.import", details=done)
        return MembersImported(**done)

    return await run_in_threadpool(write, db, work)


@router.get("/users/{user_id}/skills", response_model=SkillsRead)
def get_skills(user_id: Id, actor: Actor, db: Db) -> SkillsRead:
    with db.reader() as session:
        target = workforce.skills_target(session, actor=actor, user_id=user_id)
        return SkillsRead(user_id=target.id, skills=workforce.skills_list(workforce.skills_of(session,
                                                                                              user_id=target.id)))


@router.put("/users/{user_id}/skills", response_model=SkillsRead)
def put_skills(user_id: Id, body: SkillsPut, actor: Actor, db: Db) -> SkillsRead:
    """Replace the annotator's skills."""
    skills = workforce.parse_skills(body.skills)

    def work(session: Session) -> SkillsRead:
        target = workforce.skills_target(session, actor=actor, user_id=user_id)
        workforce.set_skills(session, user=target, skills=skills)
        workforce.record_skills(session, actor=actor, user=target, skills=len(skills))
        return SkillsRead(user_id=target.id, skills=workforce.skills_list(skills))

    return write(db, work)


def my_work_read(found: MyWork) -> MyWorkRead:
    return MyWorkRead(
        totals=found.totals(),
        projects=[ProjectWorkRead(project_id=p.project_id, name=p.work_name, type=p.task_type, answers=p.answers,
                                  seconds=p.seconds, gold=p.gold, gold_accuracy=p.gold_accuracy, reviewed=p.reviewed,
                                  review_pass_rate=p.review_pass_rate, sent_back=p.sent_back, standing=p.standing)
                  for p in found.projects],
        skills=found.skills, pools=[MyPoolRead(**pool) for pool in found.pools],
        exams=[ExamTakenRead(project_id=e.project_id, name=e.work_name, number=e.number, status=e.status, score=e.score,
                             started_at=e.started_at, finished_at=e.finished_at) for e in found.exams],
        earned=found.earned())


@router.get("/users/me/work", response_model=MyWorkRead)
def my_own_work(actor: Actor, db: Db) -> MyWorkRead:
    """The caller's own record: per project (its work name), answers, time, gold accuracy,
    review outcomes and standing; their skills and pools. Only ever the caller's."""
    return my_work_read(read(db, lambda session: my_work(session, user_id=actor.id)))
