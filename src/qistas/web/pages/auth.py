"""Signing in and out, the language switch, and the home page that sends each role its way."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qistas.api.deps import AppSettings, Db
from qistas.db.enums import Role
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain.users import user_for_password
from qistas.domain.web_sessions import SESSION_HOURS, close_session, open_session
from qistas.web.i18n import LANG_COOKIE, LANGUAGES
from qistas.web.pages.common import CheckedForm, PageUser, form_str, render, safe_next, translator
from qistas.web.session import COOKIE

router = APIRouter(include_in_schema=False)
# Before sign-in there is no session to hold a CSRF token: the form and a cookie carry the
# same random value (double submit), so another site cannot sign a victim in as someone else.
LOGIN_CSRF_COOKIE = "qistas_login"
HOME_BY_ROLE: dict[str, str] = {Role.ANNOTATOR: "/work", Role.OWNER: "/console", Role.MEMBER: "/console",
                                Role.ADMIN: "/admin"}


@router.get("/")
def home(user: PageUser) -> RedirectResponse:
    return RedirectResponse(HOME_BY_ROLE.get(user.role, "/login"), status_code=303)


def _login_page(request: Request, settings: AppSettings, error: str | None = None, status: int = 200,
                email: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, title=translator(request)("login.title"),
                      login_csrf=token, error=error, email=email, next=safe_next(request.query_params.get("next"), ""))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure,
                        path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: AppSettings) -> HTMLResponse:
    return _login_page(request, settings)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, db: Db, settings: AppSettings) -> Response:
    form = await request.form()
    given, expected = form_str(form, "csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(given, expected):
        return _login_page(request, settings, error="login.expired", status=403)
    email, password = form_str(form, "email"), form.get("password")
    if not isinstance(password, str) or not email:
        return _login_page(request, settings, error="login.failed", status=401, email=email)
    user = await run_in_threadpool(
        read, db, lambda session: user_for_password(session, email=email, password=password)
    )
    if user is None:
        return _login_page(request, settings, error="login.failed", status=401, email=email)
    opened = await run_in_threadpool(write, db, lambda session: open_session(session, user=user, now=utcnow()))
    target = safe_next(form_str(form, "next"), HOME_BY_ROLE.get(user.role, "/"))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, opened.cookie, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, _user: PageUser, _form: CheckedForm, db: Db, settings: AppSettings) -> Response:
    cookie = request.state.session_cookie
    write(db, lambda session: close_session(session, cookie=cookie))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, settings: AppSettings) -> Response:
    # Only a display preference changes, so a plain link (GET) is enough.
    target = safe_next(request.query_params.get("next"), "/")
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=settings.cookie_secure)
    return response
