"""The annotator workspace in a real browser: every widget, by keyboard and by mouse, with the
stored answer read back through the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.web.conftest import People, sign_in
from tests.web.helpers import IMAGE, answers, project_with_tasks, wait_empty, wait_task

pytestmark = pytest.mark.sqlite_only

LABELS = ["positive", "negative", "mixed"]


def open_workspace(page: Page, people: People, project_id: int) -> None:
    sign_in(page, people.annotator_email, next_path=f"/work/{project_id}")
    assert page.url.endswith(f"/work/{project_id}")


def test_classification_single_by_keyboard_and_mouse(page: Page, people: People) -> None:
    spec = {"type": "classification", "labels": LABELS, "text_field": "text"}
    project_id, (first, second) = project_with_tasks(people.owner, spec, [{"text": "great"}, {"text": "awful"}])
    open_workspace(page, people, project_id)
    wait_task(page, first)
    page.keyboard.press("2")
    assert page.get_attribute(".label-btn[data-index='1']", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    wait_task(page, second)
    page.click(".label-btn[data-index='2']")
    page.click("#btn-submit")
    wait_empty(page)
    assert answers(people.owner, first) == [{"label": "negative"}]
    assert answers(people.owner, second) == [{"label": "mixed"}]
    assert page.text_content("#done-count") == "2"
    assert page.page_errors == []  # type: ignore[attr-defined]


def test_classification_multi_and_undo(page: Page, people: People) -> None:
    spec = {"type": "classification", "labels": LABELS, "multi": True, "text_field": "text"}
    project_id, (first,) = project_with_tasks(people.owner, spec, [{"text": "so-so"}])
    open_workspace(page, people, project_id)
    wait_task(page, first)
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("2")
    page.keyboard.press("z")  # undo the last label
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(people.owner, first) == [{"labels": ["positive", "mixed"]}]


ARABIC = "قال محمد 👋🏽 إنّ شركة Acme في الدوحة باعت 2024 سيارة e\u0301clair."


def test_spans_on_arabic_text_with_emoji(page: Page, people: People) -> None:
    spec = {"type": "spans", "labels": ["PER", "ORG", "LOC"], "text_field": "text"}
    project_id, (first, second) = project_with_tasks(people.owner, spec, [{"text": ARABIC}, {"text": ARABIC}])
    open_workspace(page, people, project_id)
    wait_task(page, first)
    # Keyboard: the cursor starts at the first letter; "قال " is 4 graphemes, "محمد" the next 4.
    page.focus(".spans-text")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")  # right-to-left text: the left arrow goes forward
    for _ in range(4):
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("1")
    start = ARABIC.index("Acme")
    assert page.text_content(".chip .chip-text") == "محمد"
    page.keyboard.press("Enter")
    wait_task(page, second)
    # Mouse: double-click a word, pick its label; drag across "الدوحة" too.
    double_click_word(page, "Acme")
    page.click(".label-btn[data-index='1']")
    drag_select(page, "الدوحة")
    page.click(".label-btn[data-index='2']")
    page.click("#btn-submit")
    wait_empty(page)
    name = ARABIC.index("محمد")
    assert answers(people.owner, first) == [{"spans": [{"start": name, "end": name + 4, "label": "PER"}]}]
    place = ARABIC.index("الدوحة")
    assert answers(people.owner, second) == [{"spans": [
        {"start": start, "end": start + 4, "label": "ORG"},
        {"start": place, "end": place + len("الدوحة"), "label": "LOC"},
    ]}]
    # Offsets are code points: the emoji (2 code points) and the combining mark before them count.
    assert ARABIC[place:place + 6] == "الدوحة"


def _word_points(page: Page, word: str) -> dict[str, float]:
    return page.evaluate(
        """(word) => {
          const el = document.querySelector('.spans-text');
          const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
          let node;
          while ((node = walker.nextNode())) {
            const i = node.data.indexOf(word);
            if (i < 0) continue;
            const first = document.createRange(); first.setStart(node, i); first.setEnd(node, i + 1);
            const last = document.createRange(); last.setStart(node, i + word.length - 1); last.setEnd(node, i + word.length);
            const a = first.getBoundingClientRect(), b = last.getBoundingClientRect();
            const rtl = a.left > b.left;
            return {y: (a.top + a.bottom) / 2, x1: rtl ? a.right - 1 : a.left + 1, x2: rtl ? b.left + 1 : b.right - 1,
                    mid: (a.left + b.right) / 2};
          }
          return null;
        }""",
        word,
    )


def double_click_word(page: Page, word: str) -> None:
    p = _word_points(page, word)
    page.mouse.dblclick((p["x1"] + p["x2"]) / 2, p["y"])


def drag_select(page: Page, word: str) -> None:
    p = _word_points(page, word)
    page.mouse.move(p["x1"], p["y"])
    page.mouse.down()
    page.mouse.move((p["x1"] + p["x2"]) / 2, p["y"], steps=3)
    page.mouse.move(p["x2"], p["y"], steps=3)
    page.mouse.up()
