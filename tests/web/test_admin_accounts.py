"""The admin pages for one user, used from the keyboard: tokens listed and revoked, a user
deactivated and reactivated, a password set; an account made without a password shows its
one-time sign-in link; the pages in Arabic."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.web.conftest import People, sign_in


def press_and_wait(page: Page, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_an_owner_manages_a_member_from_the_keyboard(page: Page, people: People, server: LiveServer) -> None:
    sign_in(page, people.owner_email)
    page.goto("/admin/users")
    page.fill("#user-form input[name=email]", "helper@acme.test")
    page.select_option("#user-form select[name=role]", "member")
    page.focus("#user-form button")
    press_and_wait(page, "Enter")
    link = page.text_content("#link-value")  # no password given: a one-time link, shown once
    assert link and "/signin/link/" in link

    page.locator("#users a", has_text="helper@acme.test").focus()
    press_and_wait(page, "Enter")
    page.fill("#token-form input[name=name]", "laptop")
    page.select_option("#token-form select[name=scope]", "read")
    page.focus("#token-form button")
    press_and_wait(page, "Enter")
    token = page.text_content("#token-value")
    assert token and token.startswith("qst_")
    with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get("/me").status_code == 200
        assert client.post("/projects", json={"name": "p", "task": {"type": "text"}}).status_code == 403

        page.locator("#users a", has_text="helper@acme.test").focus()
        press_and_wait(page, "Enter")
        assert "laptop" in page.text_content("#tokens")
        page.locator("#tokens button").focus()
        press_and_wait(page, "Enter")
        assert page.locator("#notice").is_visible()
        assert page.locator("#tokens button").count() == 0

        page.focus("#deactivate-form button")
        press_and_wait(page, "Enter")
        assert page.text_content("#status") == "Deactivated"
        page.focus("#reactivate-form button")
        press_and_wait(page, "Enter")
        assert page.text_content("#status") == "Active"

        page.fill("#password-form input[name=password]", "short")
        page.evaluate("document.querySelector('#password-form input[name=password]').removeAttribute('minlength')")
        page.focus("#password-form button")
        press_and_wait(page, "Enter")
        assert page.locator("#form-error").is_visible()
        page.fill("#password-form input[name=password]", "a long new password")
        page.focus("#password-form button")
        press_and_wait(page, "Enter")
        assert page.locator("#notice").is_visible()

    page.context.clear_cookies()
    sign_in(page, "helper@acme.test", password="a long new password")
    assert page.url.endswith("/console")


def test_the_user_page_in_arabic(page: Page, people: People) -> None:
    sign_in(page, people.owner_email)
    page.goto("/lang/ar?next=/admin/users")
    page.locator("#users a", has_text="owner@acme.test").click()
    page.wait_for_selector("#tokens")
    assert page.get_attribute("html", "dir") == "rtl"
    assert "الحالة" in page.text_content("#person")
    assert page.text_content("#token-form h2") == "رمز جديد"
    assert "Status" not in page.content()


def test_the_users_are_shown_a_page_at_a_time_and_found_by_email(page: Page, people: People) -> None:
    for n in range(120):
        made = people.admin.post("/users", json={"email": f"pager-{n:03}@crowd.test", "role": "annotator"})
        assert made.status_code == 201, made.text
    sign_in(page, people.admin_email)
    page.goto("/admin/users")
    page.fill("#user-search-email", "PAGER-")
    page.focus("#user-search button")
    press_and_wait(page, "Enter")
    first = page.locator("#users tbody tr a").all_text_contents()
    assert first == [f"pager-{n:03}@crowd.test" for n in range(100)]
    assert page.locator("#users-first").count() == 0
    page.focus("#users-next")
    press_and_wait(page, "Enter")
    rest = page.locator("#users tbody tr a").all_text_contents()
    assert rest == [f"pager-{n:03}@crowd.test" for n in range(100, 120)]
    assert page.locator("#users-next").count() == 0
    page.focus("#users-first")
    press_and_wait(page, "Enter")
    assert page.locator("#users tbody tr").count() == 100
    assert page.input_value("#user-search-email") == "PAGER-"

    page.goto("/lang/ar?next=/admin/users?email=no-such-person")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.text_content("#no-users") == "لا يوجد مستخدم مطابق."
    assert page.locator("#users tbody tr").count() == 0
    assert page.goto("/admin/users?after=-1").status == 404  # a malformed address: nothing is there
