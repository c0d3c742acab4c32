"""Admin pages: organizations (admins), users and their tokens (admins, and owners for their own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.api.deps import Db
from qistas.db.enums import Role
from qistas.db.models import ApiToken, Organization, User
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, users
from qistas.errors import QistasError
from qistas.policies import ACCOUNT_ROLES, ensure_may_create_user, ensure_may_manage_tokens, require_admin
from qistas.web.pages.common import CheckedForm, PageId, PageUser, form_str, render, translator

router = APIRouter(include_in_schema=False)


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
        return _orgs_page(request, db, error=exc.message, status=422, values={"name": name, "slug": slug})
    return RedirectResponse("/admin/orgs", status_code=303)


def _users_page(request: Request, user: User, db: Db, error: str | None = None, status: int = 200,
                token: dict[str, Any] | None = None, values: dict[str, str] | None = None) -> HTMLResponse:
    if user.role != Role.ADMIN:
        ensure_may_create_user(user, role=Role.MEMBER, org_id=user.org_id)

    def work(session: Session) -> dict[str, Any]:
        query = select(User, Organization.slug).outerjoin(Organization, Organization.id == User.org_id)
        if user.role != Role.ADMIN:
            query = query.where(User.org_id == user.org_id)
        tokens = dict(session.execute(
            select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None)).group_by(ApiToken.user_id)
        ).all())
        people = [{"id": u.id, "email": u.email, "role": u.role, "org": slug, "tokens": tokens.get(u.id, 0),
                   "active": u.is_active} for u, slug in session.execute(query.order_by(User.id))]
        orgs = []
        if user.role == Role.ADMIN:
            orgs = list(session.scalars(select(Organization.slug).order_by(Organization.slug)))
        return {"people": people, "orgs": orgs}

    found = read(db, work)
    roles = ACCOUNT_ROLES if user.role == Role.ADMIN else (Role.OWNER, Role.MEMBER, Role.ANNOTATOR)
    return render(request, "admin_users.html", status=status, title=translator(request)("users.title"),
                  people=found["people"], orgs=found["orgs"], roles=roles, error=error, token=token,
                  values=values or {"role": Role.ANNOTATOR})


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    return _users_page(request, user, db)


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values = {k: form_str(form, k) for k in ("email", "role", "org")}

    def work(session: Session) -> None:
        slug = values["org"]
        org_id = (users.get_org_by_slug(session, slug).id if slug else None) if user.role == Role.ADMIN else user.org_id
        ensure_may_create_user(user, role=values["role"], org_id=org_id)
        created = users.create_user(session, email=values["email"], role=values["role"], org_id=org_id,
                                    password=form_str(form, "password") or None)
        audit.record(session, actor=user, action="user.create", object_type="user", object_id=created.id,
                     org_id=org_id)

    try:
        write(db, work)
    except QistasError as exc:
        return _users_page(request, user, db, error=exc.message, status=422, values=values)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/tokens", response_class=HTMLResponse)
def create_token(user_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        target = ensure_may_manage_tokens(user, session.get(User, user_id))
        token = users.create_token(session, user=target, name=form_str(form, "name") or "console")
        audit.record(session, actor=user, action="token.create", object_type="user", object_id=target.id,
                     org_id=target.org_id)
        return {"email": target.email, "value": token}

    # The token is shown this once; only its hash is kept.
    return _users_page(request, user, db, token=write(db, work))
