"""Browser sessions: opened by a password sign-in, closed by signing out or by time.

The cookie carries 256 random bits; the table keeps only their SHA-256 (like API tokens), so
a copy of the database does not let anyone sign in. Each session has its own CSRF token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qistas.db.models import User, WebSession
from qistas.domain.security import hash_token

# Long enough for a working day with breaks; a new sign-in after that.
SESSION_HOURS = 14


@dataclass(frozen=True)
class Opened:
    cookie: str
    csrf_token: str
    expires_at: datetime


def open_session(session: Session, *, user: User, now: datetime) -> Opened:
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=SESSION_HOURS)
    # Sign-ins are rare: a good moment to drop the user's expired sessions.
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    session.add(WebSession(session_hash=hash_token(cookie), user_id=user.id, csrf_token=csrf,
                           created_at=now, expires_at=expires))
    session.flush()
    return Opened(cookie=cookie, csrf_token=csrf, expires_at=expires)


def resolve(session: Session, *, cookie: str, now: datetime) -> tuple[User, str] | None:
    """The active user behind a session cookie, and the session's CSRF token."""
    row = session.execute(
        select(User, WebSession.csrf_token)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.session_hash == hash_token(cookie), WebSession.expires_at > now,
               User.is_active.is_(True))
    ).first()
    return (row[0], row[1]) if row else None


def close_session(session: Session, *, cookie: str) -> None:
    session.execute(delete(WebSession).where(WebSession.session_hash == hash_token(cookie)))
