"""Password checks that cannot be abused, and one-time sign-in links.

* **Throttled**: failed password checks are rows of ``sign_in_failures``, counted per account
  (the email given) and per client address over a window. The state is in the database, so
  every server process behind a load balancer counts the same failures. Over either limit,
  a check is refused before any password is verified (``TooManyAttempts``: 429 with
  ``Retry-After``).
* **Constant time**: an unknown email, or an account without a password, is verified against
  a dummy argon2 hash, so the answer takes as long as for a known email.
* **Bounded**: argon2 runs in worker threads of its own (``PasswordGate``, two at a time), never
  on the event loop and never in the threads every other request needs.
* **Links**: an account made without a password gets a single-use link, kept as a SHA-256 hash
  like API tokens, with which its person chooses a password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from math import ceil

import anyio
import anyio.to_thread
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from qistas.db.models import SignInFailure, SignInLink, User
from qistas.domain.security import hash_password, hash_token, verify_password
from qistas.errors import NotFound, TooManyAttempts

LINK_PREFIX = "/signin/link/"
LINK_HOURS = 72
PASSWORD_THREADS = 2


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window_seconds: float


def account_key(email: str) -> str:
    return "account:" + email.strip().lower()[:320]


def address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:64]


def ensure_not_throttled(session: Session, *, email: str, address: str | None, limits: Limits,
                         now: datetime) -> None:
    """Refuse a password check while the account or the address has too many recent failures."""
    since = now - timedelta(seconds=limits.window_seconds)
    for key, limit in ((account_key(email), limits.per_account), (address_key(address), limits.per_address)):
        count, oldest = session.execute(
            select(func.count(), func.min(SignInFailure.at)).where(SignInFailure.key == key, SignInFailure.at > since)
        ).one()
        if count >= limit:
            retry = max(1, ceil((oldest - since).total_seconds()))
            raise TooManyAttempts("too many failed sign-in attempts; try again later", retry_after=retry)


def record_failure(session: Session, *, email: str, address: str | None, now: datetime, window_seconds: float) -> None:
    session.add_all([SignInFailure(key=account_key(email), at=now), SignInFailure(key=address_key(address), at=now)])
    # Failures are rare next to requests: a good moment to drop those past any window.
    session.execute(delete(SignInFailure).where(SignInFailure.at <= now - timedelta(seconds=window_seconds)))
    session.flush()


def forget_failures(session: Session, *, email: str) -> None:
    """A successful sign-in clears its account's failures (the address keeps its count)."""
    session.execute(delete(SignInFailure).where(SignInFailure.key == account_key(email)))


def accounts_by_email(session: Session, *, email: str) -> list[User]:
    """The active accounts that may sign in with this email, oldest first.

    Emails are unique per organization, so one person may hold accounts in several; a
    sign-in opens the first whose password matches.
    """
    query = select(User).where(User.email == email.strip().lower(), User.is_active.is_(True),
                               User.password_hash.is_not(None)).order_by(User.id)
    return list(session.scalars(query))


@cache
def _dummy_hash() -> str:
    # Made on first use (never at import): the same parameters as every stored hash.
    return hash_password(secrets.token_urlsafe(16))


class PasswordGate:
    """Argon2 off the event loop, at most ``PASSWORD_THREADS`` at a time, in threads of its own.

    Eight clients posting wrong passwords then hold two argon2 threads between them; the
    thread pool every other request uses (database work) stays free.
    """

    def __init__(self, threads: int = PASSWORD_THREADS) -> None:
        self._threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    def _gate(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made inside the event loop, on first use
            self._limiter = anyio.CapacityLimiter(self._threads)
        return self._limiter

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash (unknown email), as slow as a real check."""
        if password_hash is None:
            await anyio.to_thread.run_sync(verify_password, _dummy_hash(), password, limiter=self._gate())
            return False
        return await anyio.to_thread.run_sync(verify_password, password_hash, password, limiter=self._gate())

    async def first_match(self, accounts: list[User], password: str) -> User | None:
        """The first account whose password this is. Every account is checked, match or not, and an
        email with none is checked against the dummy hash: the time depends only on how many
        accounts share the email, never on which password matched or whether the email is known."""
        if not accounts:
            await self.verify(None, password)
            return None
        found = None
        for account in accounts:
            if await self.verify(account.password_hash, password) and found is None:
                found = account
        return found

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password, password, limiter=self._gate())


def create_link(session: Session, *, user: User, now: datetime) -> str:
    """A single-use sign-in path for ``user``; only its hash is stored, the path is shown once."""
    token = secrets.token_urlsafe(32)
    session.add(SignInLink(user_id=user.id, token_hash=hash_token(token), created_at=now,
                           expires_at=now + timedelta(hours=LINK_HOURS)))
    session.flush()
    return LINK_PREFIX + token


def link_user(session: Session, *, token: str, now: datetime) -> User:
    """The active user a still-valid, unused link belongs to; else ``NotFound``."""
    row = session.execute(
        select(User).join(SignInLink, SignInLink.user_id == User.id)
        .where(SignInLink.token_hash == hash_token(token), SignInLink.used_at.is_(None),
               SignInLink.expires_at > now, User.is_active.is_(True))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("this sign-in link is unknown, used or expired", code="link_invalid")
    return row


def use_link(session: Session, *, token: str, now: datetime) -> User:
    """Spend a link (once: a second use finds it used) and return its user."""
    user = link_user(session, token=token, now=now)
    spent = session.execute(
        update(SignInLink).where(SignInLink.token_hash == hash_token(token), SignInLink.used_at.is_(None))
        .values(used_at=now)
    )
    if not spent.rowcount:  # type: ignore[attr-defined]
        raise NotFound("this sign-in link is unknown, used or expired", code="link_invalid")
    return user
