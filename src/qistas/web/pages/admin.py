"""Admin pages: organizations (admins), users and their tokens (admins, and owners for their own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.api.deps import Db
from qistas.db.enums import Role, TokenScope
from qistas.db.models import Organization, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, sign_in, users
from qistas.domain.security import hash_password
from qistas.errors import Conflict, Forbidden, Invalid, QistasError
from qistas.policies import (
    ACCOUNT_ROLES,
    ensure_may_create_user,
    ensure_may_manage_tokens,
    ensure_may_manage_user,
    is_admin,
    require_admin,
)
from qistas.web.messages import describe
from qistas.web.pages.common import (
    CheckedForm,
    PageAfter,
    PageEmail,
    PageId,
    PageUser,
    form_str,
    page_links,
    render,
    translator,
)

router = APIRouter(include_in_schema=False)
USERS_PAGE = 100  # users a page of /admin/users shows


@router.get("/admin")
def admin_home(user: PageUser) -> RedirectResponse:
    return RedirectResponse("/admin/orgs" if user.role == Role.ADMIN else "/admin/users", status_code=303)


def _orgs_page(request: Request, db: Db, error: str | None = None, status: int = 200,
               values: dict[str, str] | None = None) -> HTMLResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        people = dict(session.execute(select(User.org_id, func.count()).group_by(User.org_id)).all())
        return [{"id": o.id, "name": o.name, "slug": o.slug, "users": people.get(o.id, 0), "created_at": o.created_at}
                for o in session.scalars(select(Organization).order_by(Organization.id))]

    return render(request, "admin_orgs.html", status=status, title=translator(request)("orgs.title"),
                  orgs=read(db, work), error=error, values=values or {})


@router.get("/admin/orgs", response_class=HTMLResponse)
def orgs(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    require_admin(user)
    return _orgs_page(request, db)


@router.post("/admin/orgs", response_class=HTMLResponse)
def create_org(request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    require_admin(user)
    name, slug = form_str(form, "name"), form_str(form, "slug")

    def work(session: Session) -> None:
        org = users.create_org(session, name=name or slug, slug=slug)
        audit.record(session, actor=user, action="org.create", object_type="org", object_id=org.id, org_id=org.id)

    try:
        write(db, work)
    except QistasError as exc:
        return _orgs_page(request, db, error=describe(translator(request), exc), status=422,
                          values={"name": name, "slug": slug})
    return RedirectResponse("/admin/orgs", status_code=303)


def _users_page(request: Request, user: User, db: Db, error: str | None = None, status: int = 200,
                token: dict[str, Any] | None = None, values: dict[str, str] | None = None,
                link: dict[str, Any] | None = None, after: int | None = None, email: str = "") -> HTMLResponse:
    if user.role != Role.ADMIN:
        ensure_may_create_user(user, role=Role.MEMBER, org_id=user.org_id)

    def work(session: Session) -> dict[str, Any]:
        page = users.user_page(session, org_id=None if user.role == Role.ADMIN else user.org_id, after=after,
                               limit=USERS_PAGE, email=email or None)
        tokens = users.unrevoked_tokens(session, user_ids=[u.id for u, _ in page])
        people = [{"id": u.id, "email": u.email, "role": u.role, "org": slug, "tokens": tokens.get(u.id, 0),
                   "active": u.is_active} for u, slug in page]
        orgs = users.org_slugs(session, limit=None) if user.role == Role.ADMIN else []
        return {"people": people, "orgs": orgs}

    found = read(db, work)
    people = found["people"]
    roles = ACCOUNT_ROLES if user.role == Role.ADMIN else (Role.OWNER, Role.MEMBER, Role.ANNOTATOR)
    following, first = page_links("/admin/users", email=email, after=after, shown=[p["id"] for p in people],
                                  size=USERS_PAGE)
    return render(request, "admin_users.html", status=status, title=translator(request)("users.title"),
                  people=people, orgs=found["orgs"], roles=roles, error=error, token=token,
                  values=values or {"role": Role.ANNOTATOR}, link=link, email=email, following=following,
                  first=first)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageUser, db: Db, after: PageAfter = None,
               email: PageEmail = "") -> HTMLResponse:
    """The users an admin (everyone) or owner (their organization) sees, a page at a time, in id
    order; ``email``: those whose address holds it, in any case."""
    return _users_page(request, user, db, after=after, email=email.strip())


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values = {k: form_str(form, k) for k in ("email", "role", "org")}

    def work(session: Session) -> dict[str, Any] | None:
        slug = values["org"]
        org_id = (users.get_org_by_slug(session, slug).id if slug else None) if user.role == Role.ADMIN else user.org_id
        ensure_may_create_user(user, role=values["role"], org_id=org_id)
        password = form_str(form, "password") or None
        created = users.create_user(session, email=values["email"], role=values["role"], org_id=org_id,
                                    password=password)
        audit.record(session, actor=user, action="user.create", object_type="user", object_id=created.id,
                     org_id=org_id)
        if password:
            return None
        # Without a password, a one-time link with which its person chooses one (shown this once).
        return {"email": created.email, "path": sign_in.create_link(session, user=created, now=utcnow())}

    try:
        link = write(db, work)
    except QistasError as exc:
        return _users_page(request, user, db, error=describe(translator(request), exc), status=422, values=values)
    if link is not None:
        link["url"] = str(request.base_url).rstrip("/") + link["path"]
        return _users_page(request, user, db, link=link)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/tokens", response_class=HTMLResponse)
def create_token(user_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> HTMLResponse:
    days = form_str(form, "expires_in_days")

    def work(session: Session) -> dict[str, Any]:
        target = ensure_may_manage_tokens(user, session.get(User, user_id))
        if days and not days.isdigit():
            raise Invalid("expires_in_days must be a whole number of days", details={"field": "expires_in_days"})
        token = users.create_token(session, user=target, name=form_str(form, "name") or "console",
                                   scope=form_str(form, "scope") or TokenScope.ADMIN,
                                   expires_in_days=int(days) if days else None, now=utcnow())
        audit.record(session, actor=user, action="token.create", object_type="user", object_id=target.id,
                     org_id=target.org_id)
        return {"email": target.email, "value": token}

    try:
        made = write(db, work)
    except (Invalid, Forbidden) as exc:
        return _user_page(request, user, db, user_id, error=describe(translator(request), exc), status=422)
    # The token is shown this once; only its hash is kept.
    return _users_page(request, user, db, token=made)


def _user_page(request: Request, user: User, db: Db, user_id: int, error: str | None = None,
               status: int = 200, notice: str | None = None) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        target = ensure_may_manage_tokens(user, session.get(User, user_id))
        org = session.get(Organization, target.org_id) if target.org_id else None
        manageable = True
        try:
            ensure_may_manage_user(user, target)
        except Forbidden:
            manageable = False
        return {"person": {"id": target.id, "email": target.email, "role": target.role,
                           "org": org.slug if org else None, "active": target.is_active,
                           "has_password": target.password_hash is not None},
                "tokens": users.list_tokens(session, user=target), "manageable": manageable}

    found = read(db, work)
    return render(request, "admin_user.html", status=status, title=found["person"]["email"], error=error,
                  notice=notice, scopes=list(TokenScope), now=utcnow(), **found)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: PageId, request: Request, user: PageUser, db: Db) -> HTMLResponse:
    """One user: their tokens (revoke, issue), deactivate or reactivate, reset the password."""
    return _user_page(request, user, db, user_id)


def _user_action(request: Request, user: User, db: Db, user_id: int, work: Any, notice: str) -> Response:
    try:
        write(db, work)
    except (Conflict, Invalid, Forbidden) as exc:
        status = 409 if isinstance(exc, Conflict) else 422 if isinstance(exc, Invalid) else 403
        return _user_page(request, user, db, user_id, error=describe(translator(request), exc), status=status)
    return _user_page(request, user, db, user_id, notice=notice)


@router.post("/admin/users/{user_id}/deactivate", response_class=HTMLResponse)
def deactivate(user_id: PageId, request: Request, user: PageUser, _form: CheckedForm, db: Db) -> Response:
    def work(session: Session) -> None:
        target = ensure_may_manage_user(user, session.get(User, user_id))
        users.deactivate(session, user=target, now=utcnow(), may_stop_last_owner=is_admin(user))
        audit.record(session, actor=user, action="user.deactivate", object_type="user", object_id=target.id,
                     org_id=target.org_id)

    return _user_action(request, user, db, user_id, work, "users.deactivated")


@router.post("/admin/users/{user_id}/reactivate", response_class=HTMLResponse)
def reactivate(user_id: PageId, request: Request, user: PageUser, _form: CheckedForm, db: Db) -> Response:
    def work(session: Session) -> None:
        target = ensure_may_manage_user(user, session.get(User, user_id))
        users.reactivate(session, user=target)
        audit.record(session, actor=user, action="user.reactivate", object_type="user", object_id=target.id,
                     org_id=target.org_id)

    return _user_action(request, user, db, user_id, work, "users.reactivated")


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(user_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    password = form.get("password")
    try:
        users.check_new_password(password if isinstance(password, str) else "")
    except Invalid as exc:
        return _user_page(request, user, db, user_id, error=describe(translator(request), exc), status=422)
    password_hash = hash_password(str(password))  # before the transaction: argon2 holds no write lock

    def work(session: Session) -> None:
        target = ensure_may_manage_user(user, session.get(User, user_id))
        users.set_password_hash(session, user=target, password_hash=password_hash)
        audit.record(session, actor=user, action="user.password_reset", object_type="user", object_id=target.id,
                     org_id=target.org_id)

    return _user_action(request, user, db, user_id, work, "users.password_set")


@router.post("/admin/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(token_id: PageId, request: Request, user: PageUser, _form: CheckedForm, db: Db) -> Response:
    owner_id = write(db, lambda session: users.revoke_token_for(session, actor=user, token_id=token_id,
                                                                now=utcnow()).user_id)
    return _user_page(request, user, db, owner_id, notice="users.token_revoked")
