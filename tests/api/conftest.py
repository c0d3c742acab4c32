"""Servers shared by the API tests.

Starting a server and building two tenants (a fresh PostgreSQL database, above all) costs
more than most API tests themselves, so the API tests share one ``world``: a database, a
live server, an admin and the two competing tenants. Each test creates its own projects,
and whatever else it creates has names no other test uses, which keeps the tests
independent: a project is the unit that every count, page and lease is scoped to.
Tests that need a database of their own use the function-scoped fixtures of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from tests.conftest import SECRET, LiveServer, fresh_database
from tests.factories import Tenant, make_admin, make_tenant


@dataclass
class World:
    settings: Settings
    database: Database
    server: LiveServer
    admin: httpx.Client
    tenant: Tenant
    rival: Tenant

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api(self) -> str:
        return self.server.url + "/api/v1"


@contextmanager
def make_world(template: str, folder: Path, **overrides: Any) -> Iterator[World]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(folder, template))
        settings = Settings(home=folder, database_url=url, secret_key=SECRET, **overrides)
        database = Database.from_url(url)
        stack.callback(database.dispose)
        server = stack.enter_context(LiveServer(settings, database))
        yield World(
            settings=settings, database=database, server=server,
            admin=stack.enter_context(make_admin(database, server.url)),
            tenant=stack.enter_context(make_tenant(database, server.url, "acme")),
            rival=stack.enter_context(make_tenant(database, server.url, "globex")),
        )


@pytest.fixture(scope="session")
def world(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server with default settings for every API test of the run."""
    with make_world(template, tmp_path_factory.mktemp("world")) as found:
        yield found


@pytest.fixture(scope="session")
def tight(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server with small limits: bodies, uploads and pages (shared by every module using it)."""
    with make_world(
        template, tmp_path_factory.mktemp("tight"),
        max_body_bytes=1024, max_upload_bytes=4096, max_page_size=5, default_page_size=3,
        max_import_errors=3,
    ) as found:
        yield found
