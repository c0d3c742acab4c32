"""The token cache: the same user a lookup gives, for at most its few seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session, object_session

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import ApiToken, User
from qistas.db.types import utcnow
from qistas.domain import users
from qistas.domain.users import TokenCache
from tests.conftest import SECRET, LiveServer


def new_annotator(database: Database, email: str) -> tuple[int, str]:
    with database.writer.begin() as session:
        user = users.create_user(session, email=email, role="annotator")
        return user.id, users.create_token(session, user=user)


def revoke_all(database: Database, user_id: int) -> None:
    with database.writer.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.user_id == user_id).values(revoked_at=utcnow()))


def looked_up(database: Database, cache: TokenCache, token: str) -> User | None:
    session: Session
    with database.reader() as session:
        return cache.user(session, token)


def test_a_remembered_user_has_the_looked_up_values_and_belongs_to_no_session(database: Database) -> None:
    user_id, token = new_annotator(database, "cached@crowd.test")
    cache = TokenCache(seconds=60)
    first, second = looked_up(database, cache, token), looked_up(database, cache, token)
    assert first is not None and second is not None and first is not second
    assert (second.id, second.email, second.role, second.org_id, second.is_active) == \
        (user_id, "cached@crowd.test", "annotator", None, True)
    assert object_session(second) is None
    assert looked_up(database, cache, token + "x") is None  # an unknown token is never remembered


def test_a_revoked_token_is_refused_once_its_seconds_are_over(database: Database) -> None:
    user_id, token = new_annotator(database, "revoked@crowd.test")
    cache = TokenCache(seconds=0.5)
    assert looked_up(database, cache, token) is not None
    revoke_all(database, user_id)
    assert looked_up(database, cache, token) is not None  # remembered: the documented delay
    time.sleep(0.6)
    assert looked_up(database, cache, token) is None


def test_zero_seconds_looks_the_token_up_every_time(database: Database) -> None:
    user_id, token = new_annotator(database, "uncached@crowd.test")
    cache = TokenCache(seconds=0)
    assert looked_up(database, cache, token) is not None
    revoke_all(database, user_id)
    assert looked_up(database, cache, token) is None


def test_a_lookup_gives_the_tokens_grant_and_a_complete_detached_user(database: Database) -> None:
    user_id, token = new_annotator(database, "looked@crowd.test")
    with database.writer.begin() as session:
        token_row = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)).one()
        token_row.scope = "annotate"
        token_row.expires_at = utcnow() + timedelta(days=1)
        token_id = token_row.id
    cache = TokenCache(seconds=0)
    with database.reader() as session:
        grant = cache.grant(session, token)
        orm = session.get(User, user_id)
        assert grant is not None and orm is not None and grant.user is not orm
        assert (grant.token_id, grant.scope, grant.touch) == (token_id, "annotate", True)
        for attribute in inspect(User).column_attrs:
            assert getattr(grant.user, attribute.key) == getattr(orm, attribute.key), attribute.key
        assert object_session(grant.user) is None and inspect(grant.user).detached
    with database.writer.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=utcnow()))
    assert looked_up(database, cache, token) is None  # expired: refused at once


@contextmanager
def serving(database: Database, db_url: str, folder: Path, seconds: float) -> Iterator[str]:
    settings = Settings(home=folder, database_url=db_url, secret_key=SECRET, token_cache_seconds=seconds)
    with LiveServer(settings, database) as live:
        yield live.url + "/api/v1"


def test_over_http_a_deactivated_user_is_refused_after_the_cache_seconds(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    user_id, token = new_annotator(database, "leaving@crowd.test")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(database, db_url, tmp_path, seconds=0.5) as api, httpx.Client(base_url=api, headers=headers) as client:
        assert client.get("/me").status_code == 200
        with database.writer.begin() as session:
            session.execute(update(User).where(User.id == user_id).values(is_active=False))
        time.sleep(0.6)
        refused = client.get("/me")
        assert refused.status_code == 401, refused.text
