"""Fixtures shared by the suite.

The same tests run on SQLite and on PostgreSQL (``QISTAS_TEST_DB=sqlite|postgresql``).
Isolation is by a fresh database per test, never by truncation: a migrated template is made
once per run and copied (an SQLite file copy, or ``CREATE DATABASE ... TEMPLATE``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from qistas.api.app import create_app
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from tests.factories import Tenant, make_admin, make_tenant

BACKEND = os.environ.get("QISTAS_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "QISTAS_TEST_POSTGRES_URL", "postgresql://qistas:qistas@127.0.0.1:5432/postgres"
).replace("postgresql://", "postgresql+psycopg://", 1)
SECRET = "test-secret-" + "x" * 40


def pytest_report_header() -> str:
    return f"qistas database backend: {BACKEND}"


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy: an SQLite path, or a PostgreSQL database name."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"qistas_tpl_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(_pg_url(name))
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def fresh_database(folder: Path, template: str | None) -> Iterator[str]:
    """A new database, dropped afterwards: a copy of the migrated template, or empty (None)."""
    if BACKEND == "sqlite":
        path = folder / f"{uuid.uuid4().hex[:8]}.db"
        if template is not None:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"qistas_t_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template is not None else ""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_url(template: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with fresh_database(tmp_path, template) as url:
        yield url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database.from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET)


class LiveServer:
    """A real uvicorn server on a free loopback port, in a thread of the test process."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.app = create_app(settings, database)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server(settings: Settings, database: Database) -> Iterator[LiveServer]:
    with LiveServer(settings, database) as live:
        yield live


@pytest.fixture
def admin(server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    with make_admin(database, server.url) as client:
        yield client


@pytest.fixture
def tenant(server: LiveServer, database: Database) -> Iterator[Tenant]:
    with make_tenant(database, server.url, "acme") as found:
        yield found


@pytest.fixture
def rival(server: LiveServer, database: Database) -> Iterator[Tenant]:
    """A second, competing customer on the same instance."""
    with make_tenant(database, server.url, "globex") as found:
        yield found


@pytest.fixture
def common_umask() -> Iterator[None]:
    """The usual umask (022), under which files are world-readable unless created private."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def database_at(url: str, revision: str) -> Database:
    """The database at ``url`` migrated to ``revision`` (up to head, then down to it): for a
    test that fills it as an older version would have, then upgrades."""
    from alembic import command

    from qistas.db.migrate import alembic_config

    upgrade(url)
    command.downgrade(alembic_config(url), revision)
    return Database.from_url(url)
