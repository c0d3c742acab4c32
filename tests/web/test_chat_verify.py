"""The chat and verify widgets in a real browser, by keyboard, in English and in the Arabic UI
(right to left): the stored answer is read back through the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People
from tests.web.helpers import answers, project_with_tasks, wait_empty, wait_task
from tests.web.test_review import check_language, read_in, shot
from tests.web.test_workspace import open_workspace

pytestmark = pytest.mark.sqlite_only

CONVERSATION = [
    {"role": "system", "content": "You answer in the dialect the user writes."},
    {"role": "user", "content": "وش أفضل وقت لزيارة الدوحة؟"},
    {"role": "assistant", "content": "الشتاء، من **نوفمبر** إلى مارس."},
    {"role": "user", "content": "And in summer?"},
    {"role": "assistant", "content": "It is hot: 40 °C and more."},
    {"role": "user", "content": "طيب، وين أروح؟"},
]
CANDIDATES = ["سوق واقف والكورنيش.", "The Museum of Islamic Art, then Souq Waqif."]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_chat_turns_rated_by_number_keys_a_candidate_chosen_and_rewritten(lang: str, page: Page, people: People,
                                                                         server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "chat", "min": 1, "max": 5, "rewrite": True}
    project_id, (first, second) = project_with_tasks(people.owner, spec, [
        {"messages": CONVERSATION, "candidates": CANDIDATES},
        {"messages": CONVERSATION[:3]},  # no candidates: the final (assistant) turn is rewritten
    ])
    open_workspace(page, people, project_id)
    wait_task(page, first)
    check_language(page, lang, "the chat workspace's actions", "#actions")
    expect(page.locator(".candidates h3")).to_have_text(t("ws.candidates"))
    assert page.get_attribute(".chat-rewrite", "aria-label") == t("ws.rewrite")
    turns = page.locator(".turn-rating")
    expect(turns).to_have_count(2)
    # Each customer text keeps its own direction.
    assert page.locator(".msg .msg-role bdi").first.get_attribute("dir") == "auto"
    assert page.get_attribute(".chat-rewrite", "dir") == "auto"

    page.keyboard.press("4")  # the first turn; the next unrated one becomes current
    page.keyboard.press("2")
    expect(turns.nth(0).locator("[aria-pressed=true]")).to_have_text("4")
    expect(turns.nth(1).locator("[aria-pressed=true]")).to_have_text("2")
    page.keyboard.press("ArrowUp")  # back to the first turn, rated again
    page.keyboard.press("5")
    expect(turns.nth(0).locator("[aria-pressed=true]")).to_have_text("5")
    page.keyboard.press("b")  # the second candidate; the rewrite starts from it
    expect(page.locator(".candidate[data-index='1']")).to_have_attribute("aria-pressed", "true")
    assert page.input_value(".chat-rewrite") == CANDIDATES[1]
    page.keyboard.press("Shift+R")  # into the rewrite
    expect(page.locator(".chat-rewrite")).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type(" وبعدها الكورنيش.")
    shot(page, f"chat-{lang}")
    page.keyboard.press("Control+Enter")

    wait_task(page, second)
    expect(page.locator(".turn-rating")).to_have_count(1)
    assert page.input_value(".chat-rewrite") == CONVERSATION[2]["content"]  # the last turn, to rewrite
    page.keyboard.press("3")
    page.fill(".chat-rewrite", "الشتاء، من نوفمبر إلى مارس، والجو لطيف.")
    page.keyboard.press("Control+Enter")
    wait_empty(page)

    assert answers(people.owner, first) == [{"ratings": [5, 2], "choice": 1,
                                             "rewrite": CANDIDATES[1] + " وبعدها الكورنيش."}]
    assert answers(people.owner, second) == [{"ratings": [3], "rewrite": "الشتاء، من نوفمبر إلى مارس، والجو لطيف."}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_verify_accept_fix_reject_by_keyboard(lang: str, page: Page, people: People, server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "verify"}
    rows = [{"prompt": "اكتب تحية", "candidate": "هلا والله!"},
            {"prompt": "Say hello", "candidate": "Helo there"},
            {"prompt": "اكتب شكرًا", "candidate": "buy now!!!"}]
    project_id, (kept, fixed, rejected) = project_with_tasks(people.owner, spec, rows)
    open_workspace(page, people, project_id)

    wait_task(page, kept)
    check_language(page, lang, "the verify workspace's actions", "#actions")
    buttons = page.locator(".choice-btn")
    expect(buttons).to_have_text([f"A{t('ws.verdict_accept')}", f"F{t('ws.verdict_fix')}",
                                  f"R{t('ws.verdict_reject')}"])
    expect(page.locator(".verify-fix")).to_be_hidden()
    page.keyboard.press("a")
    expect(page.locator(".verdict-accept")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")

    wait_task(page, fixed)
    page.keyboard.press("f")  # the fix opens with the candidate's text, and the focus in it
    area = page.locator(".verify-text")
    expect(area).to_be_focused()
    assert area.input_value() == "Helo there"
    page.keyboard.press("Control+a")
    page.keyboard.type("Hello there")
    shot(page, f"verify-{lang}")
    page.keyboard.press("Control+Enter")

    wait_task(page, rejected)
    page.keyboard.press("f")
    expect(page.locator(".verify-text")).to_be_focused()  # as a person sees the text open
    page.keyboard.press("Escape")  # out of the text: the keys choose again
    expect(page.locator(".verify-text")).not_to_be_focused()
    page.keyboard.press("r")
    expect(page.locator(".verify-fix")).to_be_hidden()
    page.keyboard.press("Enter")
    wait_empty(page)

    assert answers(people.owner, kept) == [{"verdict": "accept"}]
    assert answers(people.owner, fixed) == [{"verdict": "fix", "text": "Hello there"}]
    assert answers(people.owner, rejected) == [{"verdict": "reject"}]
