"""Organizations, users, tokens, passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, After, AppSettings, Db, Id, Limit
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.accounts import (
    Deactivated,
    OrgCreate,
    OrgRead,
    PasswordChange,
    PasswordReset,
    TokenCreate,
    TokenInfo,
    TokenRead,
    UserCreate,
    UserCreated,
    UserPage,
    UserRead,
)
from qistas.config import Settings
from qistas.db.enums import Role
from qistas.db.models import ApiToken, Organization, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, sign_in, users
from qistas.errors import Invalid
from qistas.policies import (
    ensure_may_create_user,
    ensure_may_manage_tokens,
    ensure_may_manage_user,
    ensure_org_reachable,
    is_admin,
    require_admin,
)

router = APIRouter(tags=["accounts"])


def user_read(session: Session, user: User) -> UserRead:
    org = session.get(Organization, user.org_id) if user.org_id else None
    return _listed(user, org.slug if org else None)


def _listed(user: User, org: str | None) -> UserRead:
    return UserRead(id=user.id, email=user.email, role=user.role, org=org, is_reviewer=user.is_reviewer,
                    is_active=user.is_active)


def token_info(token: ApiToken) -> TokenInfo:
    return TokenInfo(id=token.id, name=token.name, scope=token.scope, created_at=token.created_at,
                     expires_at=token.expires_at, last_used_at=token.last_used_at, revoked_at=token.revoked_at)


@router.post("/orgs", status_code=201, response_model=OrgRead, dependencies=[IDEMPOTENT])
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
        found = user_read(session, actor)
    # An annotator is never told whose projects they work on, not even through their own account.
    return found.model_copy(update={"org": None}) if actor.role == Role.ANNOTATOR else found


@router.post("/users", status_code=201, response_model=UserCreated, dependencies=[IDEMPOTENT])
def create_user(body: UserCreate, actor: Actor, db: Db) -> UserCreated:
    def work(session: Session) -> UserCreated:
        if body.org is not None:
            org_id: int | None = ensure_org_reachable(actor, users.find_org(session, body.org), body.org).id
        else:
            org_id = actor.org_id if actor.role == Role.OWNER else None
        ensure_may_create_user(actor, role=body.role, org_id=org_id)
        user = users.create_user(session, email=body.email, role=body.role, org_id=org_id,
                                 password=body.password, is_reviewer=body.is_reviewer)
        # Without a password the account could never sign in: its person gets a one-time link.
        link = None if body.password else sign_in.create_link(session, user=user, now=utcnow())
        audit.record(session, actor=actor, action="user.create", object_type="user", object_id=user.id, org_id=org_id)
        return UserCreated(**user_read(session, user).model_dump(), sign_in_link=link)

    return write(db, work)


@router.get("/users", response_model=UserPage)
def list_users(
    actor: Actor, db: Db, limit: Limit, after: After = None,
    email: Annotated[str | None, Query(min_length=1, max_length=320,
                                       description="only users whose email address holds this, in any case")] = None,
) -> UserPage:
    """Users a page at a time, in id order: an admin's, everyone; an owner's, their organization's."""
    if actor.role != Role.ADMIN:
        ensure_may_create_user(actor, role=Role.MEMBER, org_id=actor.org_id)
    with db.reader() as session:
        page = users.user_page(session, org_id=None if actor.role == Role.ADMIN else actor.org_id, after=after,
                               limit=limit, email=email)
    return UserPage(items=[_listed(user, slug) for user, slug in page],
                    next=page[-1][0].id if len(page) == limit else None)


@router.get("/users/me/tokens", response_model=list[TokenInfo])
def my_tokens(actor: Actor, db: Db) -> list[TokenInfo]:
    with db.reader() as session:
        return [token_info(t) for t in users.list_tokens(session, user=actor)]


@router.get("/users/{user_id}/tokens", response_model=list[TokenInfo])
def list_tokens(user_id: Id, actor: Actor, db: Db) -> list[TokenInfo]:
    with db.reader() as session:
        target = ensure_may_manage_tokens(actor, session.get(User, user_id))
        return [token_info(t) for t in users.list_tokens(session, user=target)]


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenRead, dependencies=[IDEMPOTENT])
def create_token(user_id: Id, actor: Actor, db: Db, body: TokenCreate | None = None) -> TokenRead:
    body = body or TokenCreate()

    def work(session: Session) -> TokenRead:
        target = ensure_may_manage_tokens(actor, session.get(User, user_id))
        token = users.create_token(session, user=target, name=body.name, scope=body.scope,
                                   expires_in_days=body.expires_in_days, now=utcnow())
        audit.record(session, actor=actor, action="token.create", object_type="user",
                     object_id=target.id, org_id=target.org_id)
        return TokenRead(token=token)

    return write(db, work)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: Id, actor: Actor, db: Db) -> Response:
    """Revoke a token: refused by every server process within a second."""
    write(db, lambda session: users.revoke_token_for(session, actor=actor, token_id=token_id, now=utcnow()))
    return Response(status_code=204)


@router.post("/users/{user_id}/deactivate", response_model=Deactivated)
def deactivate_user(user_id: Id, actor: Actor, db: Db) -> Deactivated:
    """Tokens revoked, sessions closed, active leases back in the queue; at most a second on every process."""
    def work(session: Session) -> Deactivated:
        target = ensure_may_manage_user(actor, session.get(User, user_id))
        released = users.deactivate(session, user=target, now=utcnow(), may_stop_last_owner=is_admin(actor))
        audit.record(session, actor=actor, action="user.deactivate", object_type="user", object_id=target.id,
                     org_id=target.org_id)
        return Deactivated(id=target.id, is_active=False, released_leases=released)

    return write(db, work)


@router.post("/users/{user_id}/reactivate", response_model=UserRead)
def reactivate_user(user_id: Id, actor: Actor, db: Db) -> UserRead:
    def work(session: Session) -> UserRead:
        target = ensure_may_manage_user(actor, session.get(User, user_id))
        users.reactivate(session, user=target)
        audit.record(session, actor=actor, action="user.reactivate", object_type="user", object_id=target.id,
                     org_id=target.org_id)
        return user_read(session, target)

    return write(db, work)


def _limits(settings: Settings) -> sign_in.Limits:
    return sign_in.Limits(per_account=settings.sign_in_failures_per_account,
                          per_address=settings.sign_in_failures_per_address,
                          window_seconds=settings.sign_in_window_seconds)


@router.post("/users/me/password", status_code=204)
async def change_my_password(body: PasswordChange, request: Request, actor: Actor, db: Db,
                             settings: AppSettings) -> Response:
    """Throttled like signing in; the caller's other browser sessions are closed."""
    users.check_new_password(body.new_password)
    address = request.client.host if request.client else None
    limits, gate = _limits(settings), request.app.state.passwords

    def stored(session: Session) -> str | None:
        sign_in.ensure_not_throttled(session, email=actor.email, address=address, limits=limits, now=utcnow())
        return session.scalar(select(User.password_hash).where(User.id == actor.id))

    current = await run_in_threadpool(read, db, stored)
    if not await gate.verify(current, body.current_password):
        await run_in_threadpool(write, db, lambda session: sign_in.record_failure(
            session, email=actor.email, address=address, now=utcnow(), window_seconds=limits.window_seconds))
        raise Invalid("the current password is wrong", details={"field": "current_password"}, code="wrong_password")
    new_hash = await gate.hash(body.new_password)
    keep = getattr(request.state, "session_cookie", None)

    def work(session: Session) -> None:
        target = session.get(User, actor.id)
        assert target is not None
        users.set_password_hash(session, user=target, password_hash=new_hash, keep_cookie=keep)
        sign_in.forget_failures(session, email=actor.email)
        audit.record(session, actor=actor, action="user.password", object_type="user", object_id=actor.id,
                     org_id=actor.org_id)

    await run_in_threadpool(write, db, work)
    return Response(status_code=204)


@router.post("/users/{user_id}/password", status_code=204)
async def reset_password(user_id: Id, body: PasswordReset, request: Request, actor: Actor, db: Db) -> Response:
    """An owner or admin sets a user's password; the user's browser sessions are closed."""
    users.check_new_password(body.password)
    new_hash = await request.app.state.passwords.hash(body.password)

    def work(session: Session) -> None:
        target = ensure_may_manage_user(actor, session.get(User, user_id))
        users.set_password_hash(session, user=target, password_hash=new_hash)
        audit.record(session, actor=actor, action="user.password_reset", object_type="user", object_id=target.id,
                     org_id=target.org_id)

    await run_in_threadpool(write, db, work)
    return Response(status_code=204)
