"""The chat and verify widgets in a real browser, by keyboard, in English and in the Arabic UI
(right to left): the stored answer is read back through the API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People
from tests.web.helpers import answers, project_with_tasks, wait_empty, wait_task
from tests.web.test_review import (
    Crowd,
    check_language,
    crowd,
    differing,
    open_review,
    read_in,
    shot,
    task_of,
    wait_review,
)
from tests.web.test_workspace import open_workspace

pytestmark = pytest.mark.sqlite_only
__all__ = ["crowd"]  # the fixture, shared with the review tests

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


RUBRIC = [{"name": "helpful", "label": "Helpful"},
          {"name": "dialect", "label": "اللهجة مناسبة (Gulf)", "min": 1, "max": 3}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_chat_turns_rated_per_criterion_by_keyboard(lang: str, page: Page, people: People, server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "chat", "min": 1, "max": 5, "rewrite": False, "criteria": RUBRIC}
    project_id, (task_id,) = project_with_tasks(people.owner, spec, [{"messages": CONVERSATION,
                                                                      "candidates": CANDIDATES}])
    open_workspace(page, people, project_id)
    wait_task(page, task_id)
    check_language(page, lang, "the chat workspace's actions", "#actions")
    expect(page.locator(".turn-rating")).to_have_count(0)
    turns = page.locator(".turn-rubric")
    expect(turns).to_have_count(2)
    assert turns.nth(1).get_attribute("aria-label") == t("ws.rate_turn", n=2)
    rows = page.locator(".criterion-rating")
    expect(rows).to_have_count(4)  # two turns, two criteria each
    # Each criterion's label is the customer's text: isolated, its direction its own, and it names its row.
    names = page.locator(".criterion-name bdi")
    expect(names).to_have_text(["Helpful", RUBRIC[1]["label"]] * 2)
    assert {names.nth(i).get_attribute("dir") for i in range(4)} == {"auto"}
    label_id = rows.nth(1).get_attribute("aria-labelledby")
    assert label_id and page.locator(f"#{label_id}").inner_text() == RUBRIC[1]["label"]
    expect(rows.nth(1).locator(".rate-btn")).to_have_text(["1", "2", "3"])  # the criterion's own scale
    # The label sits at the start of its row (the right in Arabic); the numbers run left to right.
    label, scale = rows.nth(0).locator(".criterion-name").bounding_box(), rows.nth(0).locator(".scale").bounding_box()
    assert label and scale and (label["x"] > scale["x"] if lang == "ar" else label["x"] < scale["x"])
    one, five = (rows.nth(0).locator(f".rate-btn[data-value='{v}']").bounding_box() for v in (1, 5))
    assert one and five and one["x"] < five["x"]
    page.keyboard.press("?")  # the keys the rubric adds, in the reader's language
    expect(page.locator("#keys-help")).to_contain_text(t("ws.key_rate_criterion"))
    expect(page.locator("#keys-help")).to_contain_text(t("ws.key_criterion_row"))
    page.keyboard.press("Escape")

    pressed = lambda i: rows.nth(i).locator("[aria-pressed=true]")  # noqa: E731
    expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("4")  # the first turn's helpfulness; the next row still unrated becomes current
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("5")  # off the dialect scale (1-3): nothing happens
    expect(pressed(1)).to_have_count(0)
    page.keyboard.press("2")
    page.keyboard.press("5")
    page.keyboard.press("3")
    expect(pressed(0)).to_have_text("4")
    expect(pressed(1)).to_have_text("2")
    expect(pressed(2)).to_have_text("5")
    expect(pressed(3)).to_have_text("3")
    page.keyboard.press("ArrowUp")  # back a row: the second turn's helpfulness, rated again
    expect(rows.nth(2)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("1")
    expect(pressed(2)).to_have_text("1")
    page.keyboard.press("Enter")  # no candidate chosen yet: the answer is incomplete, nothing is sent
    expect(page.locator(f'.widget[data-task="{task_id}"]')).to_be_visible()
    page.keyboard.press("a")
    shot(page, f"chat-rubric-{lang}")
    page.keyboard.press("Enter")
    wait_empty(page)

    assert answers(people.owner, task_id) == [{"ratings": [{"helpful": 4, "dialect": 2}, {"helpful": 1, "dialect": 3}],
                                               "choice": 0}]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_chat_rubric_reviewed_and_corrected_by_keyboard(lang: str, page: Page, people: People, crowd: Crowd,
                                                        server: LiveServer) -> None:
    t = read_in(page, server, lang)
    spec = {"type": "chat", "rewrite": False, "criteria": RUBRIC}
    project_id, (task_id,) = project_with_tasks(people.owner, spec, [{"messages": CONVERSATION[:3]}],
                                                redundancy={"min": 3, "max": 3}, review={"share": 1})
    dialect = [3, 3, 2]  # the third annotator dissents on the dialect only (the consensus stays 3)
    crowd.answer_all(project_id, lambda n, _data: {"ratings": [{"helpful": 4, "dialect": dialect[n]}]})
    open_review(page, project_id, 1, t)
    wait_review(page, task_id)
    check_language(page, lang, "reviewing a chat rubric", "#actions")
    assert differing(page) == [2]
    # Each answer's table: a row per turn and criterion, the criterion's label isolated; the dissent marked.
    marked = page.locator(".rv-answer.differs tr.diff th bdi")
    expect(marked).to_have_text([RUBRIC[1]["label"]])
    assert marked.get_attribute("dir") == "auto"
    expect(page.locator(".rv-answer.differs tr.diff td")).to_have_text(["2"])
    page.keyboard.press("c")  # correct, from the aggregated answer, with the widget's keys
    rows = page.locator("#task .criterion-rating")
    expect(rows.nth(1).locator("[aria-pressed=true]")).to_have_text("3")  # prefilled
    page.keyboard.press("ArrowDown")
    page.keyboard.press("1")
    expect(rows.nth(1).locator("[aria-pressed=true]")).to_have_text("1")
    shot(page, f"review-chat-rubric-{lang}")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-empty")
    found = task_of(people.owner, task_id)
    assert (found["review"]["status"], found["response"]) == ("corrected", {"ratings": [{"helpful": 4, "dialect": 1}]})


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
