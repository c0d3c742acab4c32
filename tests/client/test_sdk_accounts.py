"""Accounts from the SDK against a real server: users, tokens, deactivation and passwords, and
creations that survive a lost answer without a second account."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from qistas.client import Client, Invalid, NotFound, Unauthorized, User
from tests.conftest import LiveServer
from tests.factories import Tenant


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


@pytest.fixture
def sdk(server: LiveServer, tenant: Tenant) -> Iterator[Client]:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as client:
        yield client


def _refused_within_a_second(client: Client) -> None:
    deadline = time.monotonic() + 3
    while True:
        try:
            client.users.me()
        except Unauthorized:
            return
        assert time.monotonic() < deadline, "still served"
        time.sleep(0.1)


def test_an_owner_manages_accounts_and_tokens(sdk: Client, tenant: Tenant, rival: Tenant, server: LiveServer) -> None:
    sam = sdk.users.create("sam@acme.test", "annotator")
    assert isinstance(sam, User) and sam.org == "acme" and sam.is_active
    assert sam.sign_in_link and sam.sign_in_link.startswith("/signin/link/")  # no password: a link, once
    assert "sam@acme.test" in [u.email for u in sdk.users.list()]
    assert sdk.users.me().role == "owner"

    token = sdk.tokens.create(sam.id, name="laptop", scope="annotate", expires_in_days=30)
    listed = sdk.tokens.list(sam.id)
    assert [(t.name, t.scope, t.revoked_at is None) for t in listed] == [("laptop", "annotate", True)]
    assert listed[0].expires_at is not None
    project = tenant.project(workforce="org")["id"]
    tenant.add_tasks(project, [{"data": {"text": "one"}}])
    with Client(server.url, token, backoff=0.01) as annotator:
        taken = annotator.request("POST", f"/projects/{project}/assignments")
        assert taken.status_code == 201
        sdk.tokens.revoke(listed[0].id)
        _refused_within_a_second(annotator)
    assert sdk.tokens.list(sam.id)[0].revoked_at is not None

    second = sdk.tokens.create(sam.id)
    done = sdk.users.deactivate(sam.id)
    assert (done.id, done.is_active, done.released_leases) == (sam.id, False, 1)  # the lease went back
    with Client(server.url, second, backoff=0.01) as annotator:
        _refused_within_a_second(annotator)
    assert sdk.users.reactivate(sam.id).is_active
    with Client(server.url, second, backoff=0.01) as annotator, pytest.raises(Unauthorized):
        annotator.users.me()  # old tokens stay revoked

    sdk.users.set_password(sam.id, "a long new password")
    fresh = sdk.tokens.create(sam.id)
    with Client(server.url, fresh, backoff=0.01) as person:
        with pytest.raises(Invalid) as wrong:
            person.users.change_password("not it", "another long password")
        assert wrong.value.code == "wrong_password"
        person.users.change_password("a long new password", "another long password")
        mine = person.tokens.create(name="own")  # yourself by default
        assert {t.name for t in person.tokens.list()} >= {"own"}
        assert mine != fresh

    theirs = rival.owner.get("/me").json()["id"]
    for act in (lambda: sdk.users.deactivate(theirs), lambda: sdk.tokens.list(theirs),
                lambda: sdk.tokens.create(theirs), lambda: sdk.users.set_password(theirs, "x" * 12)):
        with pytest.raises(NotFound):
            act()


class LosesAnswers(httpx.HTTPTransport):
    """The first POST of each path reaches the server, which does its work; its answer is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[str] = set()
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        with self.lock:
            lose = request.method == "POST" and request.url.path not in self.lost
            self.lost.add(request.url.path)
        if lose:
            response.read()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_a_user_and_a_token_are_made_once_when_the_answer_is_lost(tenant: Tenant, server: LiveServer) -> None:
    with Client(server.url, token_of(tenant.owner), transport=LosesAnswers(), backoff=0.01) as sdk:
        sam = sdk.users.create("sam@acme.test", "annotator", password="a long password")
        token = sdk.tokens.create(sam.id, name="once")
        assert [u.email for u in sdk.users.list()].count("sam@acme.test") == 1
        assert [t.name for t in sdk.tokens.list(sam.id)] == ["once"]
    with Client(server.url, token, backoff=0.01) as person:
        assert person.users.me().email == "sam@acme.test"  # the first answer's token works
