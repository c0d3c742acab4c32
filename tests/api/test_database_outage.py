"""The database goes away and comes back: requests answer 503 in the one error shape while
it is gone (they answered 500), and the server recovers by itself once it is back.

The outage is real: the server reaches PostgreSQL through a TCP forwarder of the test's own,
which is shut (every connection cut, new ones refused) and opened again on the same port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from qistas.config import Settings
from qistas.db.engine import Database
from tests.conftest import BACKEND, SECRET, LiveServer
from tests.factories import make_tenant
from tests.forwarder import Forwarder


@pytest.fixture
def forwarded_url(db_url: str) -> Iterator[tuple[str, Forwarder]]:
    if BACKEND != "postgresql":
        pytest.skip("SQLite is a file of the server's own: it cannot become unreachable")
    url = make_url(db_url)
    forwarder = Forwarder((url.host or "127.0.0.1", url.port or 5432))
    forwarder.open()
    yield url.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False), forwarder
    forwarder.shut()


def test_a_lost_database_answers_503_and_the_server_recovers(
    forwarded_url: tuple[str, Forwarder], db_url: str, tmp_path: Path
) -> None:
    url, forwarder = forwarded_url
    settings = Settings(home=tmp_path, database_url=url, secret_key=SECRET, background_workers=False)
    setup = Database.from_url(db_url)
    served = Database.from_url(url)
    try:
        with LiveServer(settings, served) as server, make_tenant(setup, server.url, "acme") as tenant, \
                httpx.Client(base_url=server.url) as page:
            assert tenant.owner.get("/projects").status_code == 200
            forwarder.shut()
            for _ in range(3):
                down = tenant.owner.get("/projects")
                assert down.status_code == 503, down.text
                assert down.json()["error"]["code"] == "unavailable"
                assert down.headers["retry-after"] == "2"
            # A page with a session cookie: the session is read in a middleware, outside the
            # routes' handlers, and answered there.
            page.cookies.set("qistas_session", "x" * 43)
            assert page.get("/console").status_code == 503
            forwarder.open()  # the database is back
            back = tenant.owner.get("/projects")
            assert back.status_code == 200, back.text
            assert tenant.project()["id"]
    finally:
        served.dispose()
        setup.dispose()
