"""The console's likely label errors in a real browser: the list renders, in English and Arabic,
and its button sends a delivered task to review."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People, click_and_wait, sign_in
from tests.web.helpers import project_with_tasks
from tests.web.test_review import CLASSIFY, Crowd, check_language, crowd, read_in, task_of

pytestmark = pytest.mark.sqlite_only
__all__ = ["crowd"]  # the fixture, used by name

VOTES = {"كله إيجابي": ["positive"] * 3, "split vote": ["negative", "positive", "negative"]}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_likely_errors_are_listed_and_sent_to_review(lang: str, page: Page, people: People, crowd: Crowd,
                                                     server: LiveServer) -> None:
    t = read_in(page, server, lang)
    project_id, tasks = project_with_tasks(people.owner, CLASSIFY, [{"text": x} for x in VOTES],
                                           redundancy={"min": 3, "max": 3})
    crowd.answer_all(project_id, lambda n, data: {"label": VOTES[data["text"]][n]})
    sign_in(page, people.owner_email, next_path=f"/console/projects/{project_id}")
    click_and_wait(page, "#label-errors-link")
    assert page.url.endswith(f"/console/projects/{project_id}/label-errors")
    expect(page.locator("#label-errors-ranking")).to_have_attribute("data-ranking", "settled")
    rows = page.locator("#label-errors tbody tr")
    expect(rows).to_have_count(2)
    # the split vote is the likelier error, listed first
    assert [rows.nth(i).get_attribute("data-task") for i in range(2)] == [str(tasks[1]), str(tasks[0])]
    first, second = (float(rows.nth(i).locator(".p-wrong").text_content() or "") for i in range(2))
    assert first > second
    check_language(page, lang, "the likely label errors", "main")

    rows.nth(0).locator("button.recheck").click()
    expect(rows.nth(0).locator(".recheck-sent")).to_have_text(t("likely.sent"))
    found = task_of(people.owner, tasks[1])
    assert (found["status"], found["review"]["status"]) == ("review", "pending")
    # Sent: it leaves the list, and cannot be sent twice.
    page.reload()
    expect(rows).to_have_count(1)
    assert rows.nth(0).get_attribute("data-task") == str(tasks[0])
    assert people.owner.post(f"/tasks/{tasks[1]}/recheck").status_code == 409
