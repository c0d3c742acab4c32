"""Pools of annotators in the console: the pools the reader may see (admins every one, an
organization's owners their organization's and the instance's, a pool's managers theirs), a
form that creates one, and a pool's page to manage it: its members with their skills, adding
one by email, removing one, editing skills (``language:ar-EG=4; domain:medical=3``), and a CSV
import (``email,skills,manager``). The same domain functions and rules as ``/api/v1/pools``;
every change is audited with ``"via": "console"``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from qistas.api.deps import Db
from qistas.db.enums import Role
from qistas.db.models import Pool, User
from qistas.db.unit_of_work import read, write
from qistas.domain import users, workforce
from qistas.errors import Invalid
from qistas.policies import ensure_may_create_pool, ensure_may_name_managers, ensure_org_reachable, is_admin
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
from qistas.web.pages.forms import submit

router = APIRouter(include_in_schema=False)
MEMBERS_PAGE = 100  # members a pool's page shows
VIA = "console"
MAX_CSV_BYTES = 5_000_000


def _may_create(user: User) -> bool:
    return is_admin(user) or user.role == Role.OWNER


def _pools_page(request: Request, user: User, db: Db, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        found = workforce.list_pools(session, actor=user)
        counts = workforce.member_counts(session, pool_ids=[p.id for p in found])
        slugs = users.slugs_of(session, org_ids={p.org_id for p in found if p.org_id is not None})
        return [{"id": p.id, "name": p.name, "kind": p.kind, "org": slugs.get(p.org_id) if p.org_id else None,
                 "members": counts.get(p.id, 0)} for p in found]

    return render(request, "console_pools.html", status=status, title=translator(request)("pools.title"),
                  pools=read(db, work), kinds=workforce.POOL_KINDS, may_create=_may_create(user), admin=is_admin(user),
                  values=values or {}, errors=errors or {})


@router.get("/console/pools", response_class=HTMLResponse)
def pools_page(request: Request, user: PageUser, db: Db) -> HTMLResponse:
    return _pools_page(request, user, db)


def _pool_input(field: str) -> str:
    return field if field in ("name", "kind", "org") else ""


@router.post("/console/pools", response_class=HTMLResponse)
def create_pool(request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    values = {name: form_str(form, name) for name in ("name", "kind", "org")}

    def work(session: Session) -> Pool:
        if values["org"] and is_admin(user):
            org_id: int | None = ensure_org_reachable(user, users.find_org(session, values["org"]), values["org"]).id
        else:
            org_id = None if is_admin(user) else user.org_id
        ensure_may_create_pool(user, org_id=org_id)
        pool = workforce.create_pool(session, org_id=org_id, name=values["name"], kind=values["kind"])
        workforce.record(session, actor=user, pool=pool, action="pool.create",
                         details={"name": pool.name, "kind": pool.kind}, via=VIA)
        return pool

    pool, errors = submit(db, work, translator(request), _pool_input)
    if pool is not None:
        return RedirectResponse(f"/console/pools/{pool.id}", status_code=303)
    return _pools_page(request, user, db, values=values, errors=errors, status=422)


def _pool_page(request: Request, user: User, db: Db, pool_id: int, *, values: dict[str, str] | None = None,
               errors: dict[str, str] | None = None, status: int = 200, notice: str | None = None,
               after: int | None = None, email: str = "") -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        pool = workforce.managed_pool(session, actor=user, pool_id=pool_id)
        page = workforce.members(session, pool=pool, after=after, limit=MEMBERS_PAGE, email=email or None)
        return {"pool": {"id": pool.id, "name": pool.name, "kind": pool.kind},
                "members": [{"user_id": m.user_id, "email": m.email, "manager": m.is_manager,
                             "skills": "; ".join(f"{key}={level}" for key, level in sorted(m.skills.items()))}
                            for m in page]}

    found = read(db, work)
    members = found["members"]
    following, first = page_links(f"/console/pools/{pool_id}", email=email, after=after,
                                  shown=[m["user_id"] for m in members], size=MEMBERS_PAGE, fragment="#members")
    return render(request, "console_pool.html", status=status, title=found["pool"]["name"], **found,
                  may_name_managers=is_admin(user) or user.role == Role.OWNER, values=values or {},
                  errors=errors or {}, notice=notice, email=email, following=following, first=first,
                  searching=bool(email) or after is not None)


@router.get("/console/pools/{pool_id}", response_class=HTMLResponse)
def pool_page(pool_id: PageId, request: Request, user: PageUser, db: Db, after: PageAfter = None,
              email: PageEmail = "") -> HTMLResponse:
    """The pool and its members, a page at a time in user id order; ``email``: the members whose
    address holds it, in any case."""
    return _pool_page(request, user, db, pool_id, after=after, email=email.strip())


@router.post("/console/pools/{pool_id}/members", response_class=HTMLResponse)
def add_member(pool_id: PageId, request: Request, user: PageUser, form: CheckedForm, db: Db) -> Response:
    email, manager = form_str(form, "email"), form.get("manager") == "on"

    def work(session: Session) -> int:
        pool = workforce.managed_pool(session, actor=user, pool_id=pool_id)
        if manager:
            ensure_may_name_managers(user)
        member = workforce.member_by_email(session, pool=pool, email=email)
        workforce.add_member(session, pool=pool, user=member, is_manager=manager)
        workforce.record(session, actor=user, pool=pool, action="pool.member.put",
                         details={"user": member.id, "manager": manager}, via=VIA)
        return member.id

    added, errors = submit(db, work, translator(request), lambda field: "email" if field == "email" else "")
    if added is not None:
        return RedirectResponse(f"/console/pools/{pool_id}#member-{added}", status_code=303)
    return _pool_page(request, user, db, pool_id, values={"email": email}, errors=errors, status=422)


@router.post("/console/pools/{pool_id}/members/{user_id}/remove", response_class=HTMLResponse)
def remove_member(pool_id: PageId, user_id: PageId, request: Request, user: PageUser, _form: CheckedForm,
                  db: Db) -> Response:
    def work(session: Session) -> None:
        pool = workforce.managed_pool(session, actor=user, pool_id=pool_id)
        workforce.remove_member(session, pool=pool, user=session.get(User, user_id))
        workforce.record(session, actor=user, pool=pool, action="pool.member.remove", details={"user": user_id},
                         via=VIA)

    write(db, work)
    return RedirectResponse(f"/console/pools/{pool_id}#members", status_code=303)


@router.post("/console/pools/{pool_id}/members/{user_id}/skills", response_class=HTMLResponse)
def set_skills(pool_id: PageId, user_id: PageId, request: Request, user: PageUser, form: CheckedForm,
               db: Db) -> Response:
    typed = form_str(form, "skills")
    field = f"skills-{user_id}"

    def work(session: Session) -> int:
        workforce.managed_pool(session, actor=user, pool_id=pool_id)
        target = workforce.skills_target(session, actor=user, user_id=user_id)
        skills = workforce.parse_skill_cell(typed, field=field)
        workforce.set_skills(session, user=target, skills=skills)
        workforce.record_skills(session, actor=user, user=target, skills=len(skills), via=VIA)
        return target.id

    done, errors = submit(db, work, translator(request), lambda name: name if name == field else "")
    if done is not None:
        return RedirectResponse(f"/console/pools/{pool_id}#member-{done}", status_code=303)
    return _pool_page(request, user, db, pool_id, values={field: typed}, errors=errors, status=422)


@router.post("/console/pools/{pool_id}/import", response_class=HTMLResponse)
async def import_members(pool_id: PageId, request: Request, user: PageUser, form: CheckedForm,
                         db: Db) -> Response:
    upload = form.get("csv")
    t = translator(request)
    text: str | None = None
    if isinstance(upload, UploadFile):
        raw = await upload.read(MAX_CSV_BYTES + 1)
        try:
            text = raw.decode("utf-8-sig") if len(raw) <= MAX_CSV_BYTES else None
        except UnicodeDecodeError:
            text = None
    await form.close()  # the spooled upload, now read
    def work(session: Session) -> dict[str, int]:
        pool = workforce.managed_pool(session, actor=user, pool_id=pool_id)
        if text is None:
            raise Invalid(f"choose a UTF-8 CSV file of at most {MAX_CSV_BYTES} bytes", details={"field": "csv"})
        done = workforce.import_members(session, pool=pool, text=text,
                                        may_name_managers=is_admin(user) or user.role == Role.OWNER)
        workforce.record(session, actor=user, pool=pool, action="pool.members.import", details=done, via=VIA)
        return done

    done, errors = await run_in_threadpool(submit, db, work, t, lambda field: "csv")
    if done is not None:
        notice = t("pools.imported", rows=done["rows"], created=done["created"])
        return _pool_page(request, user, db, pool_id, notice=notice)
    return _pool_page(request, user, db, pool_id, errors=errors, status=422)
