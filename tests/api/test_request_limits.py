"""Request limits: per token, per organization, per client address, and an organization's
requests in flight; refused with 429 in the one shape, and another tenant goes on untouched."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from qistas.db.models import User
from qistas.db.types import utcnow
from qistas.domain import web_sessions
from tests.api.conftest import World, make_world
from tests.api.helpers import count_tasks, error_of


@pytest.fixture
def limited(template: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    """A server of its own with the limits the test names (``@pytest.mark.parametrize`` of ``limited``)."""
    with make_world(template, tmp_path, **request.param) as found:
        yield found


def _refused(response: httpx.Response, limit: str) -> dict[str, Any]:
    error = error_of(response, 429)
    assert error["code"] == "too_many_requests"
    assert error["details"]["limit"] == limit
    assert int(response.headers["retry-after"]) == error["details"]["retry_after"] >= 1
    return error


def _burst(client: httpx.Client, path: str, n: int) -> list[int]:
    return [client.get(path).status_code for _ in range(n)]


@pytest.mark.parametrize("limited", [{"rate_limit_per_token": 0.1, "rate_limit_per_token_burst": 3}], indirect=True)
def test_a_token_over_its_rate_is_refused_and_others_are_not(limited: World) -> None:
    tenant, rival = limited.tenant, limited.rival
    assert _burst(tenant.owner, "/projects", 3) == [200, 200, 200]
    _refused(tenant.owner.get("/projects"), "token")
    # A refused write did nothing: no project was made.
    _refused(tenant.owner.post("/projects", json={"name": "late", "task": {"type": "text"}}), "token")
    # The same organization's other token and another tenant's have buckets of their own.
    assert _burst(tenant.member, "/projects", 3) == [200, 200, 200]
    assert [p["name"] for p in rival.owner.get("/projects").json()] == []
    with httpx.Client(base_url=limited.api, headers=tenant.member.headers) as again:
        _refused(again.get("/projects"), "token")


@pytest.mark.parametrize("limited", [{"rate_limit_per_org": 0.1, "rate_limit_per_org_burst": 4}], indirect=True)
def test_an_organization_over_its_rate_is_refused_but_its_annotation_loop_is_not(limited: World) -> None:
    tenant, rival = limited.tenant, limited.rival
    project = tenant.project(workforce="org")["id"]  # one request of the four
    tenant.add_tasks(project, [{"data": {"text": f"t{i}"}} for i in range(20)])
    assert tenant.member.get("/projects").status_code == 200
    assert tenant.owner.get(f"/projects/{project}").status_code == 200
    _refused(tenant.member.get("/projects"), "organization")
    _refused(tenant.owner.get("/projects"), "organization")
    # The organization's in-house annotator still takes and submits, many times over.
    for _ in range(6):
        taken = tenant.inhouse.post(f"/projects/{project}/assignments")
        assert taken.status_code == 201, taken.text
        done = tenant.inhouse.post(f"/assignments/{taken.json()['id']}/submit", json={"answer": {"label": "mixed"}})
        assert done.status_code == 201, done.text
    # Another tenant has its whole budget.
    assert _burst(rival.owner, "/projects", 4) == [200] * 4


@pytest.mark.parametrize("limited", [{"rate_limit_per_address": 0.1, "rate_limit_per_address_burst": 3}],
                         indirect=True)
def test_requests_without_credentials_are_limited_per_address(limited: World) -> None:
    with httpx.Client(base_url=limited.url) as anonymous:
        assert [anonymous.get("/login").status_code for _ in range(3)] == [200, 200, 200]
        _refused(anonymous.get("/login"), "address")
        _refused(anonymous.get("/static/app.css"), "address")
        # Guessing tokens is paid for by the address too.
        _refused(anonymous.get("/api/v1/projects", headers={"Authorization": "Bearer guessed"}), "address")
    # A known token is limited by its own bucket, not by its address's.
    assert limited.tenant.owner.get("/projects").status_code == 200
    assert limited.server.app.state.settings.rate_limit_per_address == 0.1


@pytest.mark.parametrize("limited", [{"rate_limit_per_token": 0.1, "rate_limit_per_token_burst": 2,
                                      "rate_limit_per_org": 0.1, "rate_limit_per_org_burst": 3}], indirect=True)
def test_a_browser_session_counts_against_its_user_and_organization(limited: World) -> None:
    with limited.database.writer.begin() as session:
        owner = session.scalars(select(User).where(User.email == "owner@acme.test")).one()
        opened = web_sessions.open_session(session, user=owner, now=utcnow())
    with httpx.Client(base_url=limited.url, cookies={"qistas_session": opened.cookie}) as browser:
        assert [browser.get("/api/v1/projects").status_code for _ in range(2)] == [200, 200]
        _refused(browser.get("/api/v1/projects"), "token")
    assert limited.tenant.member.get("/projects").status_code == 200  # the organization's third
    _refused(limited.tenant.member.get("/projects"), "organization")


def _hold_an_upload(world: World, token: str, project: int) -> socket.socket:
    """An import whose body is still coming: a request of its organization in flight."""
    address = urlsplit(world.url)
    raw = socket.create_connection((address.hostname, address.port), timeout=5)
    raw.sendall((f"POST /api/v1/projects/{project}/tasks HTTP/1.1\r\nHost: {address.netloc}\r\n"
                 f"Authorization: {token}\r\nContent-Type: application/x-ndjson\r\n"
                 "Content-Length: 100000\r\n\r\n").encode() + b'{"data": {"text": "a"}}\n')
    return raw


@pytest.mark.parametrize("limited", [{"max_requests_in_flight_per_org": 1, "rate_limit_wait_seconds": 0.5}],
                         indirect=True)
def test_an_organization_over_its_in_flight_cap_waits_then_is_refused(limited: World) -> None:
    tenant, rival = limited.tenant, limited.rival
    project = tenant.project()["id"]
    held = _hold_an_upload(limited, str(tenant.owner.headers["authorization"]), project)
    try:
        time.sleep(0.3)  # the upload has its turn and waits for its body
        started = time.monotonic()
        _refused(tenant.member.get("/projects"), "in_flight")
        assert time.monotonic() - started >= 0.5  # it waited its turn first
        # Another tenant is served at once, and so is the organization's own annotation loop.
        started = time.monotonic()
        assert rival.owner.get("/projects").status_code == 200
        assert tenant.inhouse.post(f"/projects/{project}/assignments").status_code == 204  # nothing to take
        assert time.monotonic() - started < 0.5
    finally:
        held.close()
    # Its turn given back, the organization is served again; the half-sent import wrote nothing.
    deadline = time.monotonic() + 5
    while (answer := tenant.member.get(f"/projects/{project}")).status_code == 429:
        assert time.monotonic() < deadline
    assert answer.status_code == 200
    assert count_tasks(limited.database, project) == 0


@pytest.mark.parametrize("limited", [{"max_requests_in_flight_per_org": 1, "rate_limit_wait_seconds": 5}],
                         indirect=True)
def test_a_request_waiting_its_turn_is_served_when_the_turn_comes(limited: World) -> None:
    tenant = limited.tenant
    project = tenant.project()["id"]
    held = _hold_an_upload(limited, str(tenant.owner.headers["authorization"]), project)
    time.sleep(0.3)

    def release() -> None:
        time.sleep(0.5)
        held.close()

    threading.Thread(target=release, daemon=True).start()
    started = time.monotonic()
    assert tenant.member.get("/projects").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_default_limits_leave_a_normal_annotation_loop_alone(world: World) -> None:
    """The shared server runs with the defaults: a brisk loop and paging never meet a 429."""
    project = world.tenant.project()["id"]
    world.tenant.add_tasks(project, [{"data": {"text": f"t{i}"}} for i in range(60)])
    annotator = world.tenant.annotators[0]
    statuses = []
    for _ in range(60):
        taken = annotator.post(f"/projects/{project}/assignments")
        statuses.append(taken.status_code)
        statuses.append(annotator.post(f"/assignments/{taken.json()['id']}/submit",
                                       json={"answer": {"label": "positive"}}).status_code)
    assert set(statuses) == {201}
    assert {world.tenant.owner.get(f"/projects/{project}/tasks", params={"limit": 5}).status_code
            for _ in range(100)} == {200}
