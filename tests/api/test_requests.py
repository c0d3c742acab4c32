"""Every request gets an id: the caller's when it is safe, else a new one; on every answer and log line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.logs import JsonFormatter, TextFormatter
from tests.api.conftest import World
from tests.api.helpers import error_of
from tests.conftest import LiveServer

GENERATED = re.compile(r"[0-9a-f]{16}")


def test_an_id_is_made_for_each_request(world: World) -> None:
    with httpx.Client(base_url=world.url) as anonymous:
        ids = [anonymous.get("/healthz").headers["x-request-id"] for _ in range(3)]
    assert all(GENERATED.fullmatch(rid) for rid in ids), ids
    assert len(set(ids)) == 3


@pytest.mark.parametrize("given", ["abc-123", "Trace.7_x-Z", "a" * 64, "0"])
def test_a_safe_incoming_id_is_kept(world: World, given: str) -> None:
    response = world.tenant.owner.get("/me", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["", "a" * 65, "has space", "semi;colon", "new\tline", "é", "<script>", "a/b"])
def test_an_unsafe_incoming_id_is_replaced(world: World, given: str) -> None:
    response = world.tenant.owner.get("/me", headers={"X-Request-ID": given.encode("utf-8")})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["x-request-id"]), response.headers
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


def test_errors_carry_the_id_too(world: World, tight: World) -> None:
    with httpx.Client(base_url=world.url) as anonymous:
        missing = anonymous.get("/nothing-here", headers={"X-Request-ID": "lost-1"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "lost-1"
        unauthorized = anonymous.get("/api/v1/me", headers={"X-Request-ID": "who-2"})
        assert error_of(unauthorized, 401) and unauthorized.headers["x-request-id"] == "who-2"
    invalid = world.tenant.owner.get("/projects/abc", headers={"X-Request-ID": "bad-3"})
    assert error_of(invalid, 422) and invalid.headers["x-request-id"] == "bad-3"
    # Refused by the body limit before any route sees it.
    big = tight.tenant.owner.post("/projects", json={"name": "x" * 2000}, headers={"X-Request-ID": "big-4"})
    assert error_of(big, 413) and big.headers["x-request-id"] == "big-4"


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """What ``qistas`` loggers write while the block runs, through ``formatter``, at INFO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("qistas")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_lines_written_while_handling_carry_the_id(settings: Settings, database: Database) -> None:
    """A line from a route running in a worker thread, the 500's own line and the request
    lines: each carries the id of its request, and the request line holds the route template."""
    live = LiveServer(settings, database)

    @live.app.get("/api/v1/noisy/{n}")
    def noisy(n: int) -> dict[str, int]:
        logging.getLogger("qistas.test").warning("inside the route")
        return {"n": n}

    @live.app.get("/api/v1/broken")
    def broken() -> None:
        raise RuntimeError("secret internals")

    with live, httpx.Client(base_url=live.url) as anonymous, captured(JsonFormatter()) as stream:
        assert anonymous.get("/api/v1/noisy/41", headers={"X-Request-ID": "req-noisy"}).status_code == 200
        assert anonymous.get("/healthz").status_code == 200
        failed = anonymous.get("/api/v1/broken", headers={"X-Request-ID": "req-broken"})
        assert failed.status_code == 500 and failed.headers["x-request-id"] == "req-broken"
    lines = json_lines(stream)
    inside = [line for line in lines if line["message"] == "inside the route"]
    assert inside and inside[0]["request_id"] == "req-noisy" and inside[0]["logger"] == "qistas.test"
    unhandled = [line for line in lines if line["message"] == "unhandled error"]
    assert unhandled and unhandled[0]["request_id"] == "req-broken" and "RuntimeError" in unhandled[0]["exception"]
    requests = {line["request_id"]: line for line in lines if line["logger"] == "qistas.request"}
    assert requests["req-noisy"]["path"] == "/api/v1/noisy/{n}" and requests["req-noisy"]["status"] == 200
    assert requests["req-noisy"]["method"] == "GET" and requests["req-noisy"]["duration_ms"] >= 0
    assert requests["req-broken"]["status"] == 500 and requests["req-broken"]["level"] == "info"
    assert len(requests) == 3  # the health check's too, under an id the server made
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message"}
        assert line["time"].endswith("Z")


def test_request_lines_name_the_user_and_hold_no_secret(world: World) -> None:
    owner = world.tenant.owner
    token = owner.headers["authorization"].removeprefix("Bearer ")
    me = owner.get("/me").json()
    with captured(TextFormatter()) as stream:
        assert owner.get("/me", params={}, headers={"X-Request-ID": "text-1"}).status_code == 200
        owner.post("/projects", json={"name": "secret-task-name", "task": {"type": "text"}},
                   headers={"X-Request-ID": "text-2"})
    text = stream.getvalue()
    line = next(line for line in text.splitlines() if "request_id=text-1" in line)
    assert " INFO qistas.request GET /api/v1/me 200 " in line
    assert f"user_id={me['id']}" in line and "duration_ms=" in line
    assert token not in text and "secret-task-name" not in text


def test_a_failed_statement_is_reported_without_its_parameters(database: Database) -> None:
    """What a 500's logged traceback would quote: the statement, never the values bound to it."""
    with pytest.raises(DBAPIError) as failed, database.writer.begin() as session:
        session.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": "private task text"})
    assert "no_such_table" in str(failed.value)
    assert "private task text" not in str(failed.value)
