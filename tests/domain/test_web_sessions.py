"""Browser sessions: only a hash is kept, they expire, and a deactivated user loses them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import User, WebSession
from qistas.db.types import utcnow
from qistas.domain import users
from qistas.domain.web_sessions import SESSION_HOURS, close_session, open_session, resolve


def test_open_resolve_expire_close(database: Database) -> None:
    now = utcnow()
    with database.writer.begin() as session:
        user = users.create_user(session, email="a@crowd.test", role="annotator", password="long password")
        opened = open_session(session, user=user, now=now)
        other = open_session(session, user=user, now=now)
    assert opened.cookie != other.cookie and opened.csrf_token != other.csrf_token
    with database.reader() as session:
        stored = session.scalars(select(WebSession.session_hash)).all()
        assert opened.cookie not in stored  # only hashes
        found = resolve(session, cookie=opened.cookie, now=now + timedelta(hours=1))
        assert found is not None and found[0].email == "a@crowd.test" and found[1] == opened.csrf_token
        assert resolve(session, cookie=opened.cookie, now=now + timedelta(hours=SESSION_HOURS, seconds=1)) is None
        assert resolve(session, cookie="made-up", now=now) is None
    with database.writer.begin() as session:
        close_session(session, cookie=opened.cookie)
    with database.reader() as session:
        assert resolve(session, cookie=opened.cookie, now=now) is None
        assert resolve(session, cookie=other.cookie, now=now) is not None


def test_inactive_user_and_old_sessions(database: Database) -> None:
    now = utcnow()
    with database.writer.begin() as session:
        user = users.create_user(session, email="b@crowd.test", role="annotator")
        old = open_session(session, user=user, now=now - timedelta(hours=SESSION_HOURS + 1))
        fresh = open_session(session, user=user, now=now)  # drops the expired one
        assert session.scalar(select(WebSession.id).where(WebSession.csrf_token == old.csrf_token)) is None
        session.get_one(User, user.id).is_active = False
    with database.reader() as session:
        assert resolve(session, cookie=fresh.cookie, now=now) is None
