"""Signing in that cannot be abused: throttled (429 + Retry-After), as slow for an unknown email
as for a known one, argon2 kept from starving other requests; one-time sign-in links."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from tests.api.conftest import World
from tests.api.helpers import error_of
from tests.conftest import SECRET, LiveServer
from tests.factories import client_for, new_user

PASSWORD = "correct-horse"


@pytest.fixture
def strict(database: Database, db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server that allows 3 failures per account and 6 per address."""
    settings = Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, sign_in_failures_per_account=3,
                        sign_in_failures_per_address=6)
    with LiveServer(settings, database) as live:
        yield live


@pytest.fixture
def lenient(database: Database, db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose throttle stays out of the way of timing measurements."""
    settings = Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, sign_in_failures_per_account=1000,
                        sign_in_failures_per_address=1000)
    with LiveServer(settings, database) as live:
        yield live


def sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    form = client.get("/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    return client.post("/login", data={"csrf": csrf, "email": email, "password": password, "next": ""})


def test_web_sign_in_is_throttled_per_account_with_retry_after(strict: LiveServer, database: Database) -> None:
    new_user(database, email="target@acme.test", role="annotator", password=PASSWORD)
    with httpx.Client(base_url=strict.url) as browser:
        for _ in range(3):
            assert sign_in(browser, "target@acme.test", "guess-guess").status_code == 401
        refused = sign_in(browser, "Target@acme.test", PASSWORD)  # even the right password, now
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 900
        assert 'id="login-error"' in refused.text
        # Another account from the same address is not locked by this one's failures.
        new_user(database, email="bystander@acme.test", role="annotator", password=PASSWORD)
        assert sign_in(browser, "bystander@acme.test", PASSWORD).status_code == 303


def test_web_sign_in_is_throttled_per_address(strict: LiveServer, database: Database) -> None:
    new_user(database, email="late@acme.test", role="annotator", password=PASSWORD)
    with httpx.Client(base_url=strict.url) as browser:
        for n in range(6):  # a different unknown email each time: only the address counts them all
            assert sign_in(browser, f"nobody{n}@acme.test", "guess-guess").status_code == 401
        assert sign_in(browser, "late@acme.test", PASSWORD).status_code == 429


def test_the_password_endpoint_is_throttled_in_the_one_error_shape(strict: LiveServer, database: Database) -> None:
    _, token = new_user(database, email="api@acme.test", role="annotator", password=PASSWORD)
    with client_for(strict.url, token) as member:
        wrong = {"current_password": "guess-guess", "new_password": "another-password"}
        for _ in range(3):
            assert error_of(member.post("/users/me/password", json=wrong), 422)["code"] == "wrong_password"
        refused = member.post("/users/me/password", json={**wrong, "current_password": PASSWORD})
        error = error_of(refused, 429)
        assert error["code"] == "too_many_attempts"
        assert int(refused.headers["retry-after"]) == error["details"]["retry_after"] >= 1


def median_seconds(client: httpx.Client, email: str, tries: int) -> float:
    times = []
    for _ in range(tries):
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        start = time.perf_counter()
        answered = client.post("/login", data={"csrf": csrf, "email": email, "password": "not-it-at-all"})
        times.append(time.perf_counter() - start)
        assert answered.status_code == 401
    return statistics.median(times)


def test_unknown_and_known_emails_take_about_as_long(lenient: LiveServer, database: Database) -> None:
    new_user(database, email="known@acme.test", role="annotator", password=PASSWORD)
    with httpx.Client(base_url=lenient.url) as browser:
        median_seconds(browser, "known@acme.test", 1)  # warm up (the dummy hash is made on first use)
        median_seconds(browser, "unknown@acme.test", 1)
        known, unknown = [], []
        for _ in range(3):  # alternated, so a busy moment of the machine hits both
            known.append(median_seconds(browser, "known@acme.test", 3))
            unknown.append(median_seconds(browser, "unknown@acme.test", 3))
    ratio = statistics.median(unknown) / statistics.median(known)
    # Without the dummy check an unknown email answers in a fraction of argon2's time (~10x faster).
    assert 0.5 < ratio < 2.0, (known, unknown)


def test_wrong_passwords_from_eight_clients_do_not_starve_other_requests(
    lenient: LiveServer, database: Database
) -> None:
    _, token = new_user(database, email="steady@acme.test", role="annotator", password=PASSWORD)
    stop = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=lenient.url) as attacker:
            while not stop.is_set():
                sign_in(attacker, f"guess{n}@acme.test", "wrong-wrong")

    with client_for(lenient.url, token) as member:
        quiet = [timed(member.get, "/me") for _ in range(10)]
        attackers = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for thread in attackers:
            thread.start()
        try:
            time.sleep(0.5)
            busy = [timed(member.get, "/me") for _ in range(10)]
        finally:
            stop.set()
            for thread in attackers:
                thread.join()
    # argon2 holds two threads of its own: the database threads stay free for everyone else.
    assert statistics.median(busy) < statistics.median(quiet) + 0.25, (quiet, busy)


def timed(call: Any, path: str) -> float:
    start = time.perf_counter()
    assert call(path).status_code == 200
    return time.perf_counter() - start


# --- one-time sign-in links -----------------------------------------------------------------


def test_an_account_made_without_a_password_signs_in_once_by_its_link(world: World) -> None:
    made = world.tenant.owner.post("/users", json={"email": "linked@acme.test", "role": "member"})
    assert made.status_code == 201, made.text
    link = made.json()["sign_in_link"]
    assert link.startswith("/signin/link/")
    with_password = world.tenant.owner.post("/users", json={"email": "pw@acme.test", "role": "member",
                                                            "password": PASSWORD})
    assert with_password.json()["sign_in_link"] is None
    with httpx.Client(base_url=world.url) as browser:
        assert browser.get(link).status_code == 200
        mismatch = browser.post(link, data={"password": PASSWORD, "password_again": PASSWORD + "x"})
        assert mismatch.status_code == 422
        used = browser.post(link, data={"password": PASSWORD, "password_again": PASSWORD})
        assert used.status_code == 303 and used.headers["location"] == "/console"
        assert "qistas_session" in used.cookies
        assert browser.get("/api/v1/me").json()["email"] == "linked@acme.test"
    with httpx.Client(base_url=world.url) as other:
        assert other.get(link).status_code == 404
        again = other.post(link, data={"password": "hijacked-pass", "password_again": "hijacked-pass"})
        assert again.status_code == 404
        assert sign_in(other, "linked@acme.test", PASSWORD).status_code == 303


# --- emails are unique per organization -----------------------------------------------------


def test_creating_a_user_reveals_nothing_about_another_organizations_people(world: World) -> None:
    assert world.rival.owner.post("/users", json={"email": "shared@people.test", "role": "member",
                                                  "password": "globex-password"}).status_code == 201
    # The same email in another organization: created, exactly as for an unused one.
    mine = world.tenant.owner.post("/users", json={"email": "shared@people.test", "role": "member",
                                                   "password": "acme-password"})
    assert mine.status_code == 201, mine.text
    assert mine.json()["org"] == "acme"
    # Within one's own organization an email is still taken (409 naming the field).
    again = error_of(world.tenant.owner.post("/users", json={"email": "shared@people.test", "role": "member"}), 409)
    assert again["details"] == {"field": "email"} and "this organization" in again["message"]
    with httpx.Client(base_url=world.url) as browser:  # each password opens its own account
        assert sign_in(browser, "shared@people.test", "acme-password").status_code == 303
        assert browser.get("/api/v1/me").json()["org"] == "acme"
    with httpx.Client(base_url=world.url) as browser:
        assert sign_in(browser, "shared@people.test", "globex-password").status_code == 303
        assert browser.get("/api/v1/me").json()["org"] == "globex"
