"""``/healthz`` is liveness (no database); ``/readyz`` reads the database and checks its schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from tests.api.conftest import World
from tests.api.helpers import error_of
from tests.api.test_metrics import scrape, value
from tests.conftest import BACKEND, PG_ADMIN_URL, SECRET, LiveServer, fresh_database


def test_ready_when_the_database_answers(world: World) -> None:
    response = httpx.get(world.url + "/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def serving(folder: Path, url: str) -> LiveServer:
    settings = Settings(home=folder, database_url=url, secret_key=SECRET, background_workers=False)
    return LiveServer(settings, Database.from_url(url))


@contextmanager
def connections_refused(url: str) -> Iterator[None]:
    """The PostgreSQL database stops taking connections, and those it had are cut; restored after."""
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                         {"name": name})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def unreachable(response: httpx.Response) -> None:
    error = error_of(response, 503)
    assert error["code"] == "unavailable"
    assert error["details"] == {"database": "unreachable"}
    assert response.headers["retry-after"].isdigit()


def test_not_ready_while_the_database_is_unreachable(db_url: str, tmp_path: Path) -> None:
    """Liveness stays up, readiness answers 503 in the one error shape, the metrics say
    ``qistas_database_up 0`` and still answer; once the database is back, ready again."""
    if BACKEND == "sqlite":
        # A path SQLite cannot open: its folder does not exist.
        url = f"sqlite:///{tmp_path / 'gone' / 'qistas.db'}"
        with serving(tmp_path, url) as live, httpx.Client(base_url=live.url) as client:
            unreachable(client.get("/readyz"))
            assert client.get("/healthz").json() == {"status": "ok"}
            assert value(scrape(live.url), "qistas_database_up") == 0
            (tmp_path / "gone").mkdir()
            upgrade(url)
            assert client.get("/readyz").json() == {"status": "ok"}
        return
    with serving(tmp_path, db_url) as live, httpx.Client(base_url=live.url) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
        with connections_refused(db_url):
            unreachable(client.get("/readyz"))
            unreachable(client.get("/readyz"))  # the cut connection is gone; a new one is refused
            assert client.get("/healthz").json() == {"status": "ok"}
            assert value(scrape(live.url), "qistas_database_up") == 0
        assert client.get("/readyz").json() == {"status": "ok"}


def test_not_ready_until_migrated(tmp_path: Path) -> None:
    with fresh_database(tmp_path, None) as url, serving(tmp_path, url) as live, \
            httpx.Client(base_url=live.url) as client:
        error = error_of(client.get("/readyz"), 503)
        assert error["code"] == "unavailable" and "qistas migrate" in error["message"]
        assert error["details"]["database"] == "not_migrated" and error["details"]["missing"]
        upgrade(url)
        assert client.get("/readyz").json() == {"status": "ok"}


def test_a_schema_migrated_by_a_newer_version_is_still_ready(database: Database, db_url: str,
                                                             tmp_path: Path) -> None:
    """A rolling upgrade: the first new server migrates; the old ones keep serving until replaced."""
    with database.writer.begin() as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'from_a_newer_version'"))
    with serving(tmp_path, db_url) as live:
        assert httpx.get(live.url + "/readyz").json() == {"status": "ok"}
