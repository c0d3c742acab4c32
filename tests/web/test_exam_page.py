"""An exam in the annotator's browser: begin an attempt, answer its questions in the workspace,
see the score and whether it passed, never the right answers; then another attempt."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.web.conftest import People, sign_in

pytestmark = pytest.mark.sqlite_only

SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}


def answer(page: Page, keys: list[str], seen: list[str]) -> None:
    """Answer one question per key, each a task not seen before."""
    for key in keys:
        fresh = "".join(f':not([data-task="{task}"])' for task in seen)
        widget = page.wait_for_selector(f".widget[data-task]{fresh}")
        assert widget is not None
        seen.append(str(widget.get_attribute("data-task")))
        page.keyboard.press(key)
        page.keyboard.press("Enter")


def test_an_exam_is_taken_in_the_workspace(page: Page, people: People) -> None:
    made = people.owner.post("/projects", json={"name": "Acme hiring exam", "task": SPEC})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    rows = [{"data": {"text": f"question {n}"}, "gold": {"label": "mixed"}} for n in range(4)]
    assert people.owner.post(f"/projects/{pid}/tasks", json=rows).status_code == 201
    assert people.owner.put(f"/projects/{pid}/exam", json={"pass_mark": 100, "questions": 2}).status_code == 200
    sign_in(page, people.annotator_email, next_path="/work")
    assert page.text_content(f'a[href="/work/{pid}"] .exam-mark') == "Exam"
    page.goto(f"/work/{pid}")
    page.wait_for_selector("#btn-exam-start")
    assert "2 questions" in page.text_content("#exam")  # type: ignore[operator]
    page.click("#btn-exam-start")
    seen: list[str] = []
    answer(page, ["3", "1"], seen)  # "mixed" (right), then "positive" (wrong)
    page.wait_for_selector("#exam-result")
    assert page.get_attribute("#exam-result", "class") == "failed"
    assert "50%" in page.text_content("#exam-result")  # type: ignore[operator]
    content = page.content()
    assert "acme" not in content.lower() and "hiring" not in content
    # Another attempt asks the two questions not seen yet.
    page.click("#btn-exam-start")
    answer(page, ["3", "3"], seen)
    assert len(set(seen)) == 4
    page.wait_for_selector("#exam-result.passed")
    assert page.query_selector("#btn-exam-start") is None  # passed: no retake
    assert page.page_errors == []  # type: ignore[attr-defined]
