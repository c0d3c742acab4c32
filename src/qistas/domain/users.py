"""Organizations, users and their API tokens."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session

from qistas.db.enums import Role
from qistas.db.models import ApiToken, Organization, User
from qistas.db.prepared import detached
from qistas.domain.security import hash_password, hash_token, new_token, verify_password
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import ACCOUNT_ROLES, STAFF_ROLES

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


def org_slugs(session: Session, *, limit: int = 20) -> list[str]:
    """The first organizations' slugs, in order (for an operator's hint)."""
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
    if password is not None and len(password) < 8:
        raise Invalid("password must have at least 8 characters", details={"field": "password"})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("a user with this email exists", details={"field": "email"})
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


def create_token(session: Session, *, user: User, name: str = "") -> str:
    """Issue a token; the clear text is returned once and only its hash is kept."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name))
    session.flush()
    return token


# Every API request runs this: built once, not per call.
_BY_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)


def user_for_token(session: Session, token: str) -> User | None:
    return session.scalar(_BY_TOKEN, {"token_hash": hash_token(token)})


class TokenCache:
    """The users behind recently seen tokens, remembered for a few seconds by one process.

    Every API request names its user by token, and looking it up was the most expensive
    statement of the annotation loop. Remembered, a revoked token or a deactivated user is
    still accepted for at most ``seconds`` (``QISTAS_TOKEN_CACHE_SECONDS``; 0 turns this off).
    The user comes back as a detached copy made from the remembered columns: the same values
    a lookup would give, shared with no session.
    """

    def __init__(self, seconds: float, capacity: int = 10_000) -> None:
        self._seconds = seconds
        self._capacity = capacity
        self._known: dict[str, tuple[float, tuple[Any, ...]]] = {}  # token hash -> (until, columns)
        self._lock = threading.Lock()

    def user(self, session: Session, token: str) -> User | None:
        digest = hash_token(token)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and known[0] > now:
            return detached(User, known[1])
        user = session.scalar(_BY_TOKEN, {"token_hash": digest})
        if user is not None and self._seconds > 0:
            columns = tuple(getattr(user, name) for name in _USER_COLUMNS)
            with self._lock:
                if len(self._known) >= self._capacity:
                    self._known.clear()  # rare: the next requests look their users up again
                self._known[digest] = (now + self._seconds, columns)
        return user

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


_USER_COLUMNS = tuple(attribute.key for attribute in inspect(User).column_attrs)


def user_for_password(session: Session, *, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.password_hash is None or not user.is_active:
        return None
    return user if verify_password(user.password_hash, password) else None
