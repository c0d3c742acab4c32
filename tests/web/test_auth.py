"""Signing in and out, session cookies, CSRF on forms and on the API, the language switch."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from qistas.config import Settings
from qistas.db.engine import Database
from tests.conftest import LiveServer
from tests.factories import new_user
from tests.web.conftest import PASSWORD, People, click_and_wait, sign_in

pytestmark = pytest.mark.sqlite_only


def test_wrong_password_then_sign_in_and_out(page: Page, people: People, context: BrowserContext) -> None:
    page.goto("/work")
    assert "/login" in page.url  # pages need a session
    assert page.title() == "Sign in · Qistas"
    page.fill("input[name=email]", people.annotator_email)
    page.fill("input[name=password]", "not the password")
    click_and_wait(page, "button[type=submit]")
    assert page.locator("#login-error").is_visible()
    sign_in(page, people.annotator_email)
    assert page.url.endswith("/work")
    cookie = next(c for c in context.cookies() if c["name"] == "qistas_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    click_and_wait(page, "text=Sign out")
    assert "/login" in page.url
    page.goto("/work")
    assert "/login" in page.url  # the session is gone on the server too


def test_owner_and_admin_land_on_their_pages(page: Page, people: People) -> None:
    sign_in(page, people.owner_email)
    assert page.url.endswith("/console")
    page.goto("/work")
    assert page.locator(".error").is_visible()  # owners take no tasks
    page.context.clear_cookies()
    sign_in(page, people.admin_email)
    assert page.url.endswith("/admin/orgs")


def _session(server: LiveServer, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    form = client.get("/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    signed = client.post("/login", data={"csrf": csrf, "email": email, "password": PASSWORD, "next": ""})
    assert signed.status_code == 303
    page = client.get("/work")
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    return client, token


def test_csrf_is_required_for_cookie_posts(server: LiveServer, people: People) -> None:
    # Sign-in itself: a form from another site carries no matching cookie.
    foreign = httpx.post(server.url + "/login", data={"csrf": "x", "email": people.annotator_email,
                                                       "password": PASSWORD})
    assert foreign.status_code == 403 and "qistas_session" not in foreign.cookies
    client, token = _session(server, people.annotator_email)
    try:
        assert client.post("/logout", data={}).status_code == 403
        assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
        # The JSON API with the cookie: reads work, writes need the header.
        assert client.get("/api/v1/me").json()["email"] == people.annotator_email
        refused = client.post("/api/v1/projects/1/assignments")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        allowed = client.post("/api/v1/projects/999/assignments", headers={"X-CSRF-Token": token})
        assert allowed.status_code == 404 and allowed.json()["error"]["code"] == "not_found"  # the API's shape
        page = client.get("/work/999")  # a page answers with a page
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert client.post("/logout", data={"csrf": token}).status_code == 303
        assert client.get("/api/v1/me").status_code == 401
    finally:
        client.close()


def test_secure_cookie_when_configured(database: Database, settings: Settings) -> None:
    new_user(database, email="s@crowd.test", role="annotator", password=PASSWORD)
    with LiveServer(settings.model_copy(update={"cookie_secure": True}), database) as live, \
            httpx.Client(base_url=live.url) as client:
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        # httpx keeps Secure cookies away from http://, so the form's cookie goes by hand.
        signed = client.post("/login", data={"csrf": csrf, "email": "s@crowd.test", "password": PASSWORD},
                             headers={"Cookie": f"qistas_login={csrf}"})
        assert signed.status_code == 303
        session_cookie = next(v for k, v in signed.headers.multi_items()
                              if k == "set-cookie" and v.startswith("qistas_session="))
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie


def test_arabic_mirrors_the_page(page: Page, people: People) -> None:
    sign_in(page, people.owner_email)
    click_and_wait(page, "#lang-switch")
    assert page.get_attribute("html", "lang") == "ar"
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.text_content("h1") == "المشاريع"
    assert page.evaluate("getComputedStyle(document.querySelector('main')).direction") == "rtl"
    click_and_wait(page, "#lang-switch")
    assert page.get_attribute("html", "dir") == "ltr"


def test_catalogues_have_the_same_keys() -> None:
    from qistas.web.i18n import catalogue

    assert set(catalogue("en")) == set(catalogue("ar"))
    assert all(catalogue("ar").values())


def test_ids_beyond_64_bits_are_missing_pages(server: LiveServer, people: People) -> None:
    huge = "9" * 20
    project = people.owner.post("/projects", json={"name": "ids", "task": {"type": "text"}}).json()
    owner, _ = _session(server, people.owner_email)
    annotator, _ = _session(server, people.annotator_email)
    admin, admin_token = _session(server, people.admin_email)
    try:
        for client, path in ((owner, f"/console/projects/{huge}"), (owner, f"/console/projects/{huge}/tasks"),
                             (owner, f"/console/tasks/{huge}"), (annotator, f"/work/{huge}"),
                             (owner, "/console/projects/0")):
            found = client.get(path)
            assert found.status_code == 404 and found.headers["content-type"].startswith("text/html"), path
        posted = admin.post(f"/admin/users/{huge}/tokens", data={"csrf": admin_token, "name": "x"})
        assert posted.status_code == 404
        # A cursor out of range is a bad request on the page, not a server error.
        for after in (huge, "²"):
            browsed = owner.get(f"/console/projects/{project['id']}/tasks", params={"after": after})
            assert browsed.status_code == 422 and browsed.headers["content-type"].startswith("text/html")
        assert owner.get(f"/console/projects/{project['id']}/tasks", params={"after": "3"}).status_code == 200
    finally:
        owner.close(), annotator.close(), admin.close()
