"""Organizations, users and their API tokens."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, inspect, select, update
from sqlalchemy.orm import Session

from qistas.db.enums import Role, TokenScope
from qistas.db.models import ApiToken, Organization, User, WebSession
from qistas.db.prepared import detached
from qistas.db.queries import users as queries
from qistas.db.types import utcnow
from qistas.domain import assignments, audit
from qistas.domain.security import hash_password, hash_token, new_token
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import ACCOUNT_ROLES, STAFF_ROLES, ensure_token_reachable

TOKEN_SCOPES = tuple(TokenScope)
MAX_TOKEN_DAYS = 3650
MIN_PASSWORD = 8

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def create_org(session: Session, *, name: str, slug: str) -> Organization:
    if not SLUG.match(slug):
        raise Invalid("slug must be lowercase letters, digits and dashes", details={"field": "slug"})
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise Conflict(f"an organization with slug {slug!r} exists", details={"field": "slug"})
    org = Organization(name=name, slug=slug)
    session.add(org)
    session.flush()
    return org


def find_org(session: Session, slug: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.slug == slug))


def slugs_of(session: Session, *, org_ids: set[int]) -> dict[int, str]:
    """The slugs of these organizations, by id (what an admin's lists show)."""
    if not org_ids:
        return {}
    return dict(session.execute(select(Organization.id, Organization.slug).where(Organization.id.in_(org_ids))).all())


def org_slugs(session: Session, *, limit: int | None = 20) -> list[str]:
    """The first organizations' slugs, in order (for an operator's hint; ``limit`` None: all of
    them, for an admin's choice of one)."""
    return list(session.scalars(select(Organization.slug).order_by(Organization.slug).limit(limit)))


def get_org_by_slug(session: Session, slug: str) -> Organization:
    org = find_org(session, slug)
    if org is None:
        raise NotFound(f"organization {slug!r} not found")
    return org


def create_user(
    session: Session,
    *,
    email: str,
    role: str,
    org_id: int | None = None,
    password: str | None = None,
    is_reviewer: bool = False,
) -> User:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise Invalid("not an email address", details={"field": "email"})
    if role not in ACCOUNT_ROLES:
        raise Invalid(f"role must be one of {', '.join(ACCOUNT_ROLES)}", details={"field": "role"})
    if role in STAFF_ROLES and org_id is None:
        raise Invalid(f"a {role} belongs to an organization", details={"field": "org"})
    if role == Role.ADMIN and org_id is not None:
        raise Invalid("an admin belongs to no organization", details={"field": "org"})
    if password is not None:
        check_new_password(password)
    # Unique within the organization only: another tenant's people are never revealed here.
    same_org = User.org_id == org_id if org_id is not None else User.org_id.is_(None)
    if session.scalar(select(User.id).where(User.email == email, same_org)) is not None:
        where = "in this organization" if org_id is not None else "among accounts of no organization"
        raise Conflict(f"a user with this email exists {where}", details={"field": "email"})
    user = User(
        email=email,
        role=role,
        org_id=org_id,
        password_hash=hash_password(password) if password else None,
        is_reviewer=is_reviewer,
    )
    session.add(user)
    session.flush()
    return user


def create_token(session: Session, *, user: User, name: str = "", scope: str = TokenScope.ADMIN,
                 expires_in_days: int | None = None, now: datetime | None = None) -> str:
    """Issue a token; the clear text is returned once and only its hash is kept."""
    if scope not in TOKEN_SCOPES:
        raise Invalid(f"scope must be one of {', '.join(TOKEN_SCOPES)}", details={"field": "scope"})
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise Invalid(f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}",
                          details={"field": "expires_in_days"})
        expires_at = (now or utcnow()) + timedelta(days=expires_in_days)
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name, scope=scope,
                         expires_at=expires_at))
    session.flush()
    return token


def user_page(session: Session, *, org_id: int | None, after: int | None, limit: int,
              email: str | None = None) -> list[tuple[User, str | None]]:
    """Up to ``limit`` users with their organization's slug, in id order after ``after``: those of
    organization ``org_id``, or everyone's (None, for an admin); with ``email``, only those whose
    address holds it, in any case."""
    query = (select(User, Organization.slug).outerjoin(Organization, Organization.id == User.org_id)
             .order_by(User.id).limit(limit))
    if org_id is not None:
        query = query.where(User.org_id == org_id)
    if after is not None:
        query = query.where(User.id > after)
    if email:
        query = query.where(func.lower(User.email).contains(email.lower(), autoescape=True))
    return [(user, slug) for user, slug in session.execute(query)]


def unrevoked_tokens(session: Session, *, user_ids: list[int]) -> dict[int, int]:
    """How many tokens that are not revoked each of these users holds (absent: none)."""
    if not user_ids:
        return {}
    return dict(session.execute(
        select(ApiToken.user_id, func.count()).where(ApiToken.user_id.in_(user_ids), ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)).all())


def list_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """The user's tokens that still work or were revoked, newest first (never their secrets)."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(session.scalars(query))


def get_token(session: Session, *, token_id: int) -> tuple[ApiToken, User] | None:
    row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.id == token_id)).first()
    return (row[0], row[1]) if row else None


def revoke_token(session: Session, *, token: ApiToken, now: datetime) -> None:
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()


def revoke_token_for(session: Session, *, actor: User, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token the actor may manage (another organization's: 404), with its audit event."""
    found = get_token(session, token_id=token_id)
    token, owner = found if found else (None, None)
    ensure_token_reachable(actor, owner)
    assert token is not None and owner is not None
    revoke_token(session, token=token, now=now)
    audit.record(session, actor=actor, action="token.revoke", object_type="user", object_id=token.user_id,
                 org_id=owner.org_id)
    return token


def _revoke_all(session: Session, *, user_id: int, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now))


def end_sessions(session: Session, *, user_id: int, keep_cookie: str | None = None) -> None:
    """Close the user's browser sessions (all of them, or all but the one ``keep_cookie`` opened)."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_cookie is not None:
        query = query.where(WebSession.session_hash != hash_token(keep_cookie))
    session.execute(query)


def deactivate(session: Session, *, user: User, now: datetime, may_stop_last_owner: bool = False) -> int:
    """Stop a user: tokens revoked, browser sessions closed, active leases given back to the queue.

    The last active admin cannot be deactivated, nor the last active owner of an organization
    unless ``may_stop_last_owner`` (an admin, or the operator's command line, closing an
    organization's access). Returns how many leases were released, review leases included.
    """
    if not user.is_active:
        return 0
    if user.role == Role.ADMIN or (user.role == Role.OWNER and not may_stop_last_owner):
        peers = select(func.count()).select_from(User).where(
            User.role == user.role, User.is_active.is_(True), User.id != user.id,
            User.org_id == user.org_id if user.org_id is not None else User.org_id.is_(None))
        if not session.scalar(peers):
            where = "its organization" if user.role == Role.OWNER else "the instance"
            raise Conflict(f"the last active {user.role} of {where} cannot be deactivated", code="last_owner")
    user.is_active = False
    _revoke_all(session, user_id=user.id, now=now)
    end_sessions(session, user_id=user.id)
    released = release_leases(session, annotator_id=user.id, now=now)
    from qistas.domain import reviews  # reviews build on what users defines

    released += reviews.release_all(session, reviewer_id=user.id, now=now)
    session.flush()
    return released


def reactivate(session: Session, *, user: User) -> None:
    """The account may sign in again; its old tokens stay revoked (issue new ones)."""
    user.is_active = True
    session.flush()


def set_password_hash(session: Session, *, user: User, password_hash: str, keep_cookie: str | None = None) -> None:
    """Store a new password (hashed beforehand, off the event loop) and close the user's other sessions."""
    user.password_hash = password_hash
    end_sessions(session, user_id=user.id, keep_cookie=keep_cookie)
    session.flush()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password must have at least {MIN_PASSWORD} characters", details={"field": "password"})


# How often a token's ``last_used_at`` is written: at most once a minute, never per request.
TOUCH_SECONDS = 60.0


@dataclass(frozen=True)
class Grant:
    """What a bearer token grants: its user, its scope, and whether its last use is due to be written."""

    user: User
    token_id: int
    scope: str
    touch: bool


def touch_token(session: Session, *, token_id: int, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def user_for_token(session: Session, token: str) -> User | None:
    row = queries.BY_TOKEN.first(session, token_hash=hash_token(token))
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    return row.user


class TokenCache:
    """The users behind recently seen tokens, remembered for a moment by one process.

    Every API request names its user by token, and looking it up was the most expensive
    statement of the annotation loop. Remembered, a revoked token or a deactivated user is
    still accepted for at most ``seconds`` (``QISTAS_TOKEN_CACHE_SECONDS``, at most one
    second; 0 turns this off). An expired token is refused at once. A lookup is one prepared
    statement (``db/queries/users.py``) and gives the user as a detached object; remembered,
    the user comes back as a detached copy made from the remembered columns: the same values a
    lookup would give, shared with no session.

    A token's last use is written at most once a minute: a lookup says so (``Grant.touch``)
    when the stored time is older than that and this process has not written it since.
    """

    def __init__(self, seconds: float, capacity: int = 10_000) -> None:
        self._seconds = seconds
        self._capacity = capacity
        # token hash -> (until, user columns, token id, scope, expires_at)
        self._known: dict[str, tuple[float, tuple[Any, ...], int, str, datetime | None]] = {}
        self._touched: dict[int, float] = {}  # token id -> when this process last wrote its last use
        self._lock = threading.Lock()

    def grant(self, session: Session, token: str) -> Grant | None:
        digest = hash_token(token)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and known[0] > now:
            if known[4] is not None and known[4] <= utcnow():
                return None
            return Grant(detached(User, known[1]), known[2], known[3], touch=False)
        row = queries.BY_TOKEN.first(session, token_hash=digest)
        if row is None:
            return None
        user, token_id, scope, expires_at, last_used_at = row
        wall = utcnow()
        if expires_at is not None and expires_at <= wall:
            return None
        touch = False
        if last_used_at is None or (wall - last_used_at).total_seconds() >= TOUCH_SECONDS:
            with self._lock:
                if now - self._touched.get(token_id, -TOUCH_SECONDS) >= TOUCH_SECONDS:
                    self._touched[token_id] = now
                    touch = True
        if self._seconds > 0:
            columns = tuple(getattr(user, name) for name in _USER_COLUMNS)
            with self._lock:
                if len(self._known) >= self._capacity:
                    self._known.clear()  # rare: the next requests look their users up again
                    self._touched.clear()
                self._known[digest] = (now + self._seconds, columns, token_id, scope, expires_at)
        return Grant(user, token_id, scope, touch)

    def user(self, session: Session, token: str) -> User | None:
        found = self.grant(session, token)
        return found.user if found else None

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


_USER_COLUMNS = tuple(attribute.key for attribute in inspect(User).column_attrs)


def release_leases(session: Session, *, annotator_id: int, now: datetime) -> int:
    """Give an annotator's active leases back: their tasks return to the queue."""
    return assignments.release_all(session, annotator_id=annotator_id, now=now)


def get_user_by_email(session: Session, *, email: str, org_slug: str | None = None) -> User:
    """The account with this email (in this organization, when several organizations use it)."""
    email = email.strip().lower()
    query = select(User).where(User.email == email).order_by(User.id)
    if org_slug is not None:
        query = query.join(Organization, Organization.id == User.org_id).where(Organization.slug == org_slug)
    found = list(session.scalars(query))
    if not found:
        raise NotFound(f"no user {email!r}" + (f" in {org_slug!r}" if org_slug else ""))
    if len(found) > 1:
        raise Invalid(f"several accounts use {email!r}; name the organization with --org", details={"field": "org"})
    return found[0]


@dataclass(frozen=True)
class TokenHolder:
    """Whose a bearer token is: the user and the organization their requests count against."""

    user_id: int
    org_id: int | None


_HOLDER = (
    select(ApiToken.user_id, User.org_id)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None), User.is_active.is_(True))
)


def token_holder(session: Session, *, token_hash: str) -> TokenHolder | None:
    """The holder of an unrevoked token of an active user (for request limits; not a grant)."""
    row = session.execute(_HOLDER, {"token_hash": token_hash}).first()
    return None if row is None else TokenHolder(user_id=row[0], org_id=row[1])
