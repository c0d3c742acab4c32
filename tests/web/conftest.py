"""Browser fixtures: one Chromium for the whole run (Debian's, never a downloaded one), a fresh
context per test, and people who sign in with a password."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from qistas.db.engine import Database
from qistas.domain import users
from qistas.domain.security import hash_password
from tests.conftest import LiveServer
from tests.factories import client_for

CHROMIUM = os.environ.get("QISTAS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield found
        found.close()


@pytest.fixture
def context(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails its test on any uncaught script error or content-security-policy report."""
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    found.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    found.page_errors = errors  # type: ignore[attr-defined]
    yield found
    assert errors == []


@dataclass
class People:
    """One customer organization with an owner (an API client too) and annotators who use the browser."""

    org_id: int
    owner_email: str
    owner: httpx.Client
    admin: httpx.Client
    annotator_email: str
    admin_email: str


@pytest.fixture(scope="session")
def password_hash() -> str:
    # argon2 is slow on purpose (half a second here): hash the shared test password once.
    return hash_password(PASSWORD)


def person(database: Database, password_hash: str, *, email: str, role: str, org_id: int | None = None,
           is_reviewer: bool = False) -> str:
    """A user who signs in with PASSWORD; returns their API token."""
    with database.writer.begin() as session:
        user = users.create_user(session, email=email, role=role, org_id=org_id, is_reviewer=is_reviewer)
        user.password_hash = password_hash
        return users.create_token(session, user=user)


@pytest.fixture
def people(server: LiveServer, database: Database, password_hash: str) -> Iterator[People]:
    with database.writer.begin() as session:
        org_id = users.create_org(session, name="Acme Data", slug="acme").id
    token = person(database, password_hash, email="owner@acme.test", role="owner", org_id=org_id)
    person(database, password_hash, email="ana@crowd.test", role="annotator")
    admin_token = person(database, password_hash, email="root@instance.test", role="admin")
    with client_for(server.url, token) as owner, client_for(server.url, admin_token) as admin:
        yield People(org_id=org_id, owner_email="owner@acme.test", owner=owner, admin=admin,
                     annotator_email="ana@crowd.test", admin_email="root@instance.test")


def click_and_wait(page: Page, selector: str) -> None:
    """Click something that loads a new page, and wait for that page (never read the old one)."""
    with page.expect_navigation():
        page.click(selector)


def sign_in(page: Page, email: str, password: str = PASSWORD, next_path: str = "") -> None:
    page.goto("/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    click_and_wait(page, "button[type=submit]")
    assert "/login" not in page.url, page.content()
