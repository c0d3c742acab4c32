"""Signing in and out, the language switch, and the home page that sends each role its way."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from qistas.api.deps import AppSettings, Db
from qistas.db.enums import Role
from qistas.db.models import User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit, sign_in
from qistas.domain.users import MIN_PASSWORD, set_password_hash
from qistas.domain.web_sessions import SESSION_HOURS, Opened, close_session, open_session
from qistas.errors import NotFound, TooManyAttempts
from qistas.web.i18n import LANG_COOKIE, LANGUAGES
from qistas.web.pages.common import CheckedForm, PageUser, form_str, render, safe_next, translator
from qistas.web.session import COOKIE

router = APIRouter(include_in_schema=False)
# Before sign-in there is no session to hold a CSRF token: the form and a cookie carry the
# same random value (double submit), so another site cannot sign a victim in as someone else.
LOGIN_CSRF_COOKIE = "qistas_login"


def secure_cookies(request: Request, settings: AppSettings) -> bool:
    """Whether cookies go over HTTPS only: always with ``QISTAS_COOKIE_SECURE``, and whenever the
    request came over HTTPS (directly, or through a proxy in ``QISTAS_FORWARDED_ALLOW_IPS``)."""
    return settings.cookie_secure or request.url.scheme == "https"
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
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request, settings), path="/login")
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
    address = request.client.host if request.client else None
    limits = sign_in.Limits(per_account=settings.sign_in_failures_per_account,
                            per_address=settings.sign_in_failures_per_address,
                            window_seconds=settings.sign_in_window_seconds)

    def accounts(session: Session) -> list[User]:
        sign_in.ensure_not_throttled(session, email=email, address=address, limits=limits, now=utcnow())
        return sign_in.accounts_by_email(session, email=email)

    try:
        candidates = await run_in_threadpool(read, db, accounts)
    except TooManyAttempts as exc:
        response = _login_page(request, settings, error="login.throttled", status=429, email=email)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    # Unknown emails are checked against a dummy hash: the answer takes as long either way.
    user = await request.app.state.passwords.first_match(candidates, password)
    if user is None:
        await run_in_threadpool(write, db, lambda session: sign_in.record_failure(
            session, email=email, address=address, now=utcnow(), window_seconds=limits.window_seconds))
        return _login_page(request, settings, error="login.failed", status=401, email=email)

    def open_for(session: Session) -> Opened:
        sign_in.forget_failures(session, email=email)
        return open_session(session, user=user, now=utcnow())

    opened = await run_in_threadpool(write, db, open_for)
    return _signed_in(request, settings, opened, safe_next(form_str(form, "next"), HOME_BY_ROLE.get(user.role, "/")))


def _signed_in(request: Request, settings: AppSettings, opened: Opened, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, opened.cookie, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=secure_cookies(request, settings), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, _user: PageUser, _form: CheckedForm, db: Db, settings: AppSettings) -> Response:
    cookie = request.state.session_cookie
    write(db, lambda session: close_session(session, cookie=cookie))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=secure_cookies(request, settings), httponly=True, samesite="lax")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, settings: AppSettings) -> Response:
    # Only a display preference changes, so a plain link (GET) is enough.
    target = safe_next(request.query_params.get("next"), "/")
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax",
                            secure=secure_cookies(request, settings))
    return response


def _link_page(request: Request, token: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "signin_link.html", status=status, title=translator(request)("link.title"),
                  token=token, error=error)


@router.get("/signin/link/{token}", response_class=HTMLResponse)
def link_form(token: str, request: Request, db: Db) -> HTMLResponse:
    """A one-time sign-in link: the page asks its person to choose a password (the link is spent on that post)."""
    try:
        read(db, lambda session: sign_in.link_user(session, token=token, now=utcnow()))
    except NotFound:
        return _link_page(request, "", error="link.invalid", status=404)
    return _link_page(request, token)


@router.post("/signin/link/{token}", response_class=HTMLResponse)
async def link_sign_in(token: str, request: Request, db: Db, settings: AppSettings) -> Response:
    # No CSRF token: the link itself is the secret another site would need to post here.
    form = await request.form()
    password, again = form.get("password"), form.get("password_again")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return _link_page(request, token, error="link.short", status=422)
    if password != again:
        return _link_page(request, token, error="link.mismatch", status=422)
    try:  # a made-up link costs no argon2 hash
        await run_in_threadpool(read, db, lambda session: sign_in.link_user(session, token=token, now=utcnow()))
    except NotFound:
        return _link_page(request, "", error="link.invalid", status=404)
    password_hash = await request.app.state.passwords.hash(password)

    def work(session: Session) -> tuple[Opened, str]:
        now = utcnow()
        user = sign_in.use_link(session, token=token, now=now)
        set_password_hash(session, user=user, password_hash=password_hash)
        audit.record(session, actor=user, action="user.password_link", object_type="user", object_id=user.id,
                     org_id=user.org_id)
        return open_session(session, user=user, now=now), HOME_BY_ROLE.get(user.role, "/")

    try:
        opened, home_path = await run_in_threadpool(write, db, work)
    except NotFound:
        return _link_page(request, "", error="link.invalid", status=404)
    return _signed_in(request, settings, opened, home_path)
