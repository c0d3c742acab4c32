"""The owner console and the admin pages in a real browser."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from qistas.db.engine import Database
from qistas.web.pages import console
from tests.conftest import LiveServer
from tests.factories import client_for, new_user
from tests.web.conftest import People, click_and_wait, sign_in

pytestmark = pytest.mark.sqlite_only


def test_owner_creates_uploads_watches_and_exports(page: Page, people: People, server: LiveServer,
                                                   database: Database, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(page, people.owner_email)
    click_and_wait(page, "#new-project")
    page.fill("input[name=name]", "Sentiment مشاعر")
    page.select_option("#task-type", "classification")
    assert page.locator("textarea[name=keypoints]").is_hidden()  # fields of other types are hidden
    assert page.locator("input[name=image_field]").is_visible()  # an image to classify, optional
    page.fill("textarea[name=labels]", "positive\nnegative\n")
    page.fill("input[name=redundancy_min]", "2")
    page.fill("input[name=redundancy_max]", "2")
    page.fill("textarea[name=instructions]", "# Read\nPick **one**.")
    click_and_wait(page, "button[type=submit].primary")
    page.wait_for_url("**/console/projects/*")
    project_id = int(page.url.rsplit("/", 1)[1])
    spec = people.owner.get(f"/projects/{project_id}").json()
    assert spec["task"]["labels"] == ["positive", "negative"] and spec["redundancy"]["min"] == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"nodata": 1}\nnot json\n', encoding="utf-8")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button")
    page.wait_for_selector("#upload-error")
    rows = page.locator("#upload-rows tbody tr")
    assert rows.count() == 2 and rows.nth(0).locator("td").first.text_content() == "2"
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"data": {"text": f"نص {i}"}, "unique_id": f"u{i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    page.set_input_files("#upload-file", str(good))
    page.click("#upload-form button")
    page.wait_for_selector("#upload-ok")
    assert "4" in page.text_content("#upload-ok")
    assert page.get_attribute("#upload-progress", "value") == "100"

    # Two annotators label everything, disagreeing once.
    workers = []
    for n in range(2):
        _, token = new_user(database, email=f"w{n}@crowd.test", role="annotator")
        workers.append(client_for(server.url, token))
    try:
        for n, worker in enumerate(workers):
            while (taken := worker.post(f"/projects/{project_id}/assignments")).status_code == 201:
                a = taken.json()
                label = "negative" if n == 1 and a["task"]["data"]["text"] == "نص 0" else "positive"
                stored = worker.post(f"/assignments/{a['id']}/submit", json={"answer": {"label": label}})
                assert stored.status_code == 201
    finally:
        for worker in workers:
            worker.close()

    page.reload()
    assert page.text_content("#stat-annotations") == "8"
    assert page.locator("#chart-status rect.seg-completed").count() == 1
    assert page.locator("#chart-throughput rect.bar[height='0.0']").count() == 23  # one busy hour of 24
    assert page.locator("#chart-confusion rect.cell").count() == 4
    assert page.locator("#chart-agreement rect.fill").count() == 1
    names = page.locator("#annotators tbody td:first-child").all_text_contents()
    assert len(names) == 2 and all(n.startswith("annotator-") for n in names)
    assert "crowd.test" not in page.content()  # pseudonyms only
    assert page.locator("#people-more").count() == 0
    monkeypatch.setattr(console, "PEOPLE_LISTED", 1)  # a large workforce: the page lists the first
    page.reload()
    assert page.locator("#annotators tbody tr").count() == 1
    assert page.text_content("#people-more").strip() == \
        "Listed: the 1 of 2 annotators with the most of the latest answers."
    monkeypatch.undo()

    click_and_wait(page, "#browse-tasks")
    assert page.locator("#task-table tbody tr").count() == 4
    page.select_option("select[name=status]", "pending")
    click_and_wait(page, "#task-filters button")
    assert page.locator("#task-table tbody tr td.muted").count() == 1  # "no tasks match"
    page.select_option("select[name=status]", "")
    page.fill("input[name=unique_id]", "u2")
    click_and_wait(page, "#task-filters button")
    assert page.locator("#task-table tbody tr").all_text_contents()[0].count("نص 2") == 1
    assert page.locator("#task-table tbody tr").count() == 1
    page.fill("input[name=unique_id]", "")
    page.select_option("select[name=status]", "completed")
    click_and_wait(page, "#task-filters button")
    click_and_wait(page, "#task-table tbody tr:first-child a")
    assert page.locator("#task-annotations tbody tr").count() == 2
    assert "نص 0" in page.text_content("#task-data")

    page.goto(f"/console/projects/{project_id}")
    with page.expect_download() as download:
        page.click("#export-jsonl")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["data"]["text"] == "نص 0"
    page.goto("/console")  # progress counts answers too, before a task is done
    assert "4 of 4 done · 8 answers" in page.text_content("table")
    assert page.page_errors == []  # type: ignore[attr-defined]


def test_admin_pages_make_orgs_users_and_tokens(page: Page, people: People, server: LiveServer) -> None:
    sign_in(page, people.admin_email)
    page.fill("#org-form input[name=name]", "Globex")
    page.fill("#org-form input[name=slug]", "globex")
    click_and_wait(page, "#org-form button")
    assert "globex" in page.text_content("#orgs")
    page.fill("#org-form input[name=slug]", "globex")
    page.fill("#org-form input[name=name]", "again")
    click_and_wait(page, "#org-form button")
    assert page.locator("#form-error").is_visible()  # the slug is taken

    page.goto("/admin/users")
    page.fill("#user-form input[name=email]", "boss@globex.test")
    page.select_option("#user-form select[name=role]", "owner")
    page.select_option("#user-form select[name=org]", "globex")
    page.fill("#user-form input[name=password]", "long enough pw")
    click_and_wait(page, "#user-form button")
    row = page.locator("#users tr", has_text="boss@globex.test")
    assert row.count() == 1
    with page.expect_navigation():
        row.locator("button").click()
    token = page.text_content("#token-value")
    assert token and token.startswith("qst_")
    with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get("/me").json() == {"id": client.get("/me").json()["id"], "email": "boss@globex.test",
                                             "role": "owner", "org": "globex", "is_reviewer": False,
                                             "is_active": True}

    # The new owner signs in and sees their own organization's people only.
    page.context.clear_cookies()
    sign_in(page, "boss@globex.test", password="long enough pw")
    page.goto("/admin/users")
    assert page.locator("#users tbody tr").count() == 1
    page.goto("/admin/orgs")
    assert page.locator(".error").is_visible()
