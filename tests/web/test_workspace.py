"""The annotator workspace in a real browser: every widget, by keyboard and by mouse, with the
stored answer read back through the API."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select, update

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Assignment
from qistas.db.types import utcnow
from tests.conftest import LiveServer
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
    assert "acme" not in page.content().lower()  # whose project it is stays unknown
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
    # Keyboard. The cursor starts at the first letter and moves a grapheme at a time; in
    # right-to-left text the left arrow goes forward. "قال " is 4 graphemes, "محمد" the next 4.
    page.focus(".spans-text")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    for _ in range(4):
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("1")
    assert page.text_content(".chip .chip-text") == "محمد"
    # The emoji with its skin tone: one grapheme, two code points.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("3")
    # "إنّ": the shadda is a combining mark, so two graphemes hold three code points.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    wait_task(page, second)
    # Mouse: double-click a word or drag across one, then pick the label; remove one with ×.
    double_click_word(page, "Acme")
    page.click(".label-btn[data-index='1']")
    drag_select(page, "الدوحة")
    page.click(".label-btn[data-index='2']")
    double_click_word(page, "شركة")
    page.click(".label-btn[data-index='0']")
    assert page.locator(".chip").count() == 3
    page.click(".chip[data-label='PER'] .remove")
    assert page.locator(".chip").count() == 2
    page.click("#btn-submit")
    wait_empty(page)

    emoji = ARABIC.index("👋🏽")
    assert ARABIC[emoji:emoji + 2] == "👋🏽"  # code points, as Python counts them
    assert answers(people.owner, first) == [{"spans": [
        {"start": 4, "end": 8, "label": "PER"},
        {"start": emoji, "end": emoji + 2, "label": "LOC"},
        {"start": emoji + 3, "end": emoji + 6, "label": "ORG"},
    ]}]
    assert ARABIC[emoji + 3:emoji + 6] == "إنّ"
    acme, place = ARABIC.index("Acme"), ARABIC.index("الدوحة")
    assert answers(people.owner, second) == [{"spans": [
        {"start": acme, "end": acme + 4, "label": "ORG"},
        {"start": place, "end": place + len("الدوحة"), "label": "LOC"},
    ]}]


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
            const last = document.createRange();
            last.setStart(node, i + word.length - 1); last.setEnd(node, i + word.length);
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


def test_boxes_drawn_by_mouse_and_keyboard(page: Page, people: People) -> None:
    spec = {"type": "boxes", "labels": ["cat", "dog"], "image_field": "image"}
    rows = [{"image": IMAGE, "width": 400, "height": 300}, {"image": IMAGE, "width": 400, "height": 300}]
    project_id, (first, second) = project_with_tasks(people.owner, spec, rows)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    page.wait_for_function("document.querySelector('.box-image').naturalWidth > 0")
    img = page.locator(".box-image").bounding_box()
    assert img is not None
    k = img["width"] / 400  # screen pixels per image pixel
    # Draw a box from (40, 30) to (140, 130) in image pixels, then move it by (20, 10).
    page.mouse.move(img["x"] + 40 * k, img["y"] + 30 * k)
    page.mouse.down()
    page.mouse.move(img["x"] + 140 * k, img["y"] + 130 * k, steps=5)
    page.mouse.up()
    assert page.locator(".box").count() == 1
    page.mouse.move(img["x"] + 90 * k, img["y"] + 80 * k)
    page.mouse.down()
    page.mouse.move(img["x"] + 110 * k, img["y"] + 90 * k, steps=5)
    page.mouse.up()
    page.click(".label-btn[data-index='1']")  # label the selected box "dog"
    # Resize it by its bottom-right corner: 20 wider, 10 taller.
    handle = page.locator(".box .handle.se").bounding_box()
    assert handle is not None
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(hx + 20 * k, hy + 10 * k, steps=4)
    page.mouse.up()
    # A second box drawn and then deleted with the keyboard.
    page.mouse.move(img["x"] + 300 * k, img["y"] + 200 * k)
    page.mouse.down()
    page.mouse.move(img["x"] + 350 * k, img["y"] + 250 * k, steps=3)
    page.mouse.up()
    assert page.locator(".box").count() == 2
    page.keyboard.press("Delete")
    page.click("#btn-submit")
    wait_task(page, second)
    page.wait_for_function("document.querySelector('.box-image').naturalWidth > 0")
    # Keyboard only: a new box (a quarter of the image, centred), 10 px right, 1 px larger.
    page.keyboard.press("2")
    page.keyboard.press("n")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Control+ArrowDown")
    page.keyboard.press("Enter")
    wait_empty(page)
    [got] = answers(people.owner, first)
    [box] = got["boxes"]
    assert box["label"] == "dog"
    for key, expected in (("x", 60), ("y", 40), ("w", 120), ("h", 110)):
        assert abs(box[key] - expected) <= 2, (key, box)
    assert answers(people.owner, second) == [{"boxes": [{"x": 160, "y": 112.5, "w": 100, "h": 76, "label": "dog"}]}]


CHAT_A = [{"role": "user", "content": "Write **bold** code"}, {"role": "assistant", "content": "```\nprint('hi')\n```"}]


def test_pairwise_with_criteria(page: Page, people: People) -> None:
    spec = {"type": "pairwise", "criteria": ["helpful", "honest"]}
    rows = [{"prompt": "Say hi", "a": CHAT_A, "b": "مرحبا **بك**"}, {"prompt": "Again", "a": "one", "b": "two"}]
    project_id, (first, second) = project_with_tasks(people.owner, spec, rows)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    assert page.locator(".response .chat .msg").count() == 2
    assert page.locator(".response .md strong").first.text_content() == "bold"
    assert page.locator(".response pre code").text_content() == "print('hi')"
    # A/B/T in a run fill the overall choice, then each criterion.
    page.keyboard.press("a")
    page.keyboard.press("t")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    wait_task(page, second)
    page.click(".choice-row[data-row='0'] .choice-b")
    page.click(".choice-row[data-row='1'] .choice-b")
    page.click("#btn-submit")  # "honest" is missing: refused in the page
    assert "not complete" in page.text_content("#notice")
    page.click(".choice-row[data-row='2'] .choice-tie")
    page.click("#btn-submit")
    wait_empty(page)
    assert answers(people.owner, first) == [{"choice": "a", "criteria": {"helpful": "tie", "honest": "b"}}]
    assert answers(people.owner, second) == [{"choice": "b", "criteria": {"helpful": "b", "honest": "tie"}}]


def test_ranking_by_keys_and_drag(page: Page, people: People) -> None:
    spec = {"type": "ranking"}
    rows = [{"prompt": "Best?", "responses": ["r0", "r1", "r2"]}, {"prompt": "Best?", "responses": ["s0", "s1", "s2"]}]
    project_id, (first, second) = project_with_tasks(people.owner, spec, rows)
    open_workspace(page, people, project_id)
    wait_task(page, first)
    page.keyboard.press("3")  # focus the third response
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Shift+ArrowUp")  # now first
    page.keyboard.press("Enter")
    wait_task(page, second)
    page.drag_and_drop(".rank-item[data-pos='0']", ".rank-item[data-pos='2']")
    page.click(".rank-item[data-pos='0'] .down")
    page.click("#btn-submit")
    wait_empty(page)
    assert answers(people.owner, first) == [{"order": [2, 0, 1]}]
    assert answers(people.owner, second) == [{"order": [2, 1, 0]}]


def test_rating_and_text(page: Page, people: People) -> None:
    rating = {"type": "rating", "min": 1, "max": 7, "prompt_field": "prompt"}
    rating_id, (r1, r2) = project_with_tasks(people.owner, rating, [{"prompt": "How good?"}, {"prompt": "And this?"}])
    open_workspace(page, people, rating_id)
    wait_task(page, r1)
    page.keyboard.press("6")
    page.keyboard.press("Enter")
    wait_task(page, r2)
    page.click(".rate-btn[data-value='3']")
    page.click("#btn-submit")
    wait_empty(page)
    assert answers(people.owner, r1) == [{"rating": 6}]
    assert answers(people.owner, r2) == [{"rating": 3}]

    text_id, (t1, t2) = project_with_tasks(people.owner, {"type": "text"},
                                           [{"prompt": "Translate: hello"}, {"prompt": "Fix", "draft": "teh cat"}])
    page.goto(f"/work/{text_id}")
    wait_task(page, t1)
    page.keyboard.type("مرحبا\nhello")  # the text area has the focus
    page.keyboard.press("Control+Enter")
    wait_task(page, t2)
    assert page.input_value(".answer-text") == "teh cat"
    page.fill(".answer-text", "the cat")
    page.click("#btn-submit")
    wait_empty(page)
    assert answers(people.owner, t1) == [{"text": "مرحبا\nhello"}]
    assert answers(people.owner, t2) == [{"text": "the cat"}]


def test_skip_instructions_and_expired_lease(page: Page, people: People, database: Database) -> None:
    spec = {"type": "classification", "labels": LABELS, "text_field": "text"}
    project_id, (first, second, third) = project_with_tasks(
        people.owner, spec, [{"text": "a"}, {"text": "b"}, {"text": "c"}],
        instructions="# Rules\nPick **one** label. [guide](https://example.com/guide) [bad](javascript:alert(1))")
    open_workspace(page, people, project_id)
    wait_task(page, first)
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert page.locator("#help h2 + .instructions strong").text_content() == "one"
    assert page.locator("#help a").count() == 1
    assert page.get_attribute("#help a", "href") == "https://example.com/guide"
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+S")
    wait_task(page, second)
    page.keyboard.press("1")
    # The lease runs out behind the annotator's back: submitting keeps the answer and says so.
    with database.writer.begin() as session:
        session.execute(update(Assignment).where(Assignment.task_id == second).values(expires_at=utcnow()))
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-new-task")
    assert page.get_attribute(".label-btn[data-index='0']", "aria-pressed") == "true"
    assert '"label": "positive"' in page.text_content("#notice .kept pre")
    page.click("#btn-new-task")
    wait_task(page, third)
    assert answers(people.owner, second) == []


def test_lease_is_renewed_while_working(browser: Browser, people: People, settings: Settings,
                                        database: Database) -> None:
    spec = {"type": "text"}
    project_id, (task_id,) = project_with_tasks(people.owner, spec, [{"prompt": "write"}])
    with LiveServer(settings.model_copy(update={"lease_seconds": 10}), database) as live:
        ctx = browser.new_context(base_url=live.url)
        try:
            page = ctx.new_page()
            sign_in(page, people.annotator_email, next_path=f"/work/{project_id}")
            wait_task(page, task_id)

            def expiry() -> datetime:
                with database.reader() as session:
                    found = session.scalar(select(Assignment.expires_at).where(Assignment.task_id == task_id))
                    assert found is not None
                    return found

            first = expiry()
            deadline = time.monotonic() + 12
            renewed = first
            while renewed == first and time.monotonic() < deadline:
                page.keyboard.type("a")  # the annotator keeps typing
                page.wait_for_timeout(500)
                renewed = expiry()
            assert renewed > first
            assert page.locator("#btn-new-task").count() == 0  # no expiry notice
        finally:
            ctx.close()
