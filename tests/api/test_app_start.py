"""What a server does at its start and first request, beside its routes."""

from __future__ import annotations

import threading
import warnings

import httpx
import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from tests.conftest import LiveServer


def test_a_server_in_a_thread_sets_no_warnings_filter(settings: Settings, database: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # warnings.catch_warnings swaps the filters of the whole process and is not thread-safe:
    # FastAPI sets one around each route's build, so the app builds its routes where it is
    # made. Its server's thread then starts and answers without touching the filters.
    entered: list[str] = []
    original = warnings.catch_warnings

    def recorded(*args: object, **kwargs: object) -> warnings.catch_warnings:
        entered.append(threading.current_thread().name)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    live = LiveServer(settings, database)
    monkeypatch.setattr(warnings, "catch_warnings", recorded)
    with live, httpx.Client(base_url=live.url) as client:
        assert client.get("/api/v1/projects/1").status_code == 401
        assert client.get("/api/v1/assignments/1/submit").status_code == 405
    main = threading.main_thread().name
    assert [name for name in entered if name != main] == []


def test_the_openapi_document_is_built_off_the_event_loop(settings: Settings, database: Database) -> None:
    # Built on its first request: a third of a second in which the event loop, had it built
    # it, would have answered nobody else.
    live = LiveServer(settings, database)
    built_in: list[threading.Thread] = []
    build = live.app.openapi

    def recorded() -> dict[str, object]:
        built_in.append(threading.current_thread())
        return build()

    live.app.openapi = recorded  # type: ignore[method-assign]
    with live, httpx.Client(base_url=live.url) as client:
        first, second = client.get("/api/v1/openapi.json"), client.get("/api/v1/openapi.json")
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert first.json()["info"]["title"] == "Qistas"
    assert built_in and live.thread not in built_in  # the server's thread runs its event loop
