"""Organizations, users, tokens."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, Db, Id
from qistas.api.schemas.accounts import (
    OrgCreate,
    OrgRead,
    TokenCreate,
    TokenRead,
    UserCreate,
    UserRead,
)
from qistas.db.enums import Role
from qistas.db.models import Organization, User
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.policies import (
    ensure_may_create_user,
    ensure_may_manage_tokens,
    ensure_org_reachable,
    require_admin,
)

router = APIRouter(tags=["accounts"])


def user_read(session: Session, user: User) -> UserRead:
    org = session.get(Organization, user.org_id) if user.org_id else None
    return UserRead(id=user.id, email=user.email, role=user.role, org=org.slug if org else None,
                    is_reviewer=user.is_reviewer)


@router.post("/orgs", status_code=201, response_model=OrgRead)
def create_org(body: OrgCreate, actor: Actor, db: Db) -> OrgRead:
    require_admin(actor)

    def work(session: Session) -> OrgRead:
        org = users.create_org(session, name=body.name, slug=body.slug)
        audit.record(session, actor=actor, action="org.create", object_type="org", object_id=org.id, org_id=org.id)
        return OrgRead.model_validate(org, from_attributes=True)

    return write(db, work)


@router.get("/orgs", response_model=list[OrgRead])
def list_orgs(actor: Actor, db: Db) -> list[OrgRead]:
    require_admin(actor)
    with db.reader() as session:
        orgs = session.scalars(select(Organization).order_by(Organization.id))
        return [OrgRead.model_validate(o, from_attributes=True) for o in orgs]


@router.get("/me", response_model=UserRead)
def me(actor: Actor, db: Db) -> UserRead:
    with db.reader() as session:
        return user_read(session, actor)


@router.post("/users", status_code=201, response_model=UserRead)
def create_user(body: UserCreate, actor: Actor, db: Db) -> UserRead:
    def work(session: Session) -> UserRead:
        if body.org is not None:
            org_id: int | None = ensure_org_reachable(actor, users.find_org(session, body.org), body.org).id
        else:
            org_id = actor.org_id if actor.role == Role.OWNER else None
        ensure_may_create_user(actor, role=body.role, org_id=org_id)
        user = users.create_user(session, email=body.email, role=body.role, org_id=org_id,
                                 password=body.password, is_reviewer=body.is_reviewer)
        audit.record(session, actor=actor, action="user.create", object_type="user", object_id=user.id, org_id=org_id)
        return user_read(session, user)

    return write(db, work)


@router.get("/users", response_model=list[UserRead])
def list_users(actor: Actor, db: Db) -> list[UserRead]:
    with db.reader() as session:
        query = select(User).order_by(User.id)
        if actor.role != Role.ADMIN:
            ensure_may_create_user(actor, role=Role.MEMBER, org_id=actor.org_id)
            query = query.where(User.org_id == actor.org_id)
        return [user_read(session, u) for u in session.scalars(query)]


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenRead)
def create_token(user_id: Id, actor: Actor, db: Db, body: TokenCreate | None = None) -> TokenRead:
    def work(session: Session) -> TokenRead:
        target = ensure_may_manage_tokens(actor, session.get(User, user_id))
        token = users.create_token(session, user=target, name=body.name if body else "")
        audit.record(session, actor=actor, action="token.create", object_type="user",
                     object_id=target.id, org_id=target.org_id)
        return TokenRead(token=token)

    return write(db, work)
