"""The review stage in a real browser: a reviewer accepts, corrects and sends back answers by
keyboard only, in English and Arabic; the customer audits delivered tasks in the console.

The crowd's answers come through the API from three annotators; everything the reviewer and
the customer do goes through the pages, and what was stored is read back through the API.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Review
from qistas.web.i18n import Translator
from tests.api.helpers import take_if_any
from tests.conftest import LiveServer
from tests.factories import client_for
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.helpers import IMAGE, project_with_tasks
from tests.web.test_readable_pages import assert_readable
from tests.web.test_xss import EVIL, LABEL, assert_inert

pytestmark = pytest.mark.sqlite_only

# Pictures to look at: QISTAS_TEST_SCREENSHOTS=folder saves them there.
SHOTS = os.environ.get("QISTAS_TEST_SCREENSHOTS")
LABELS = ["positive", "negative", "mixed"]
ARABIC = "قال محمد 👋🏽 إنّ شركة Acme في الدوحة باعت 2024 سيارة e\u0301clair."
REVIEWER = "rita@review.test"


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@dataclass
class Crowd:
    """Three annotators of the shared workforce, answering through the API."""

    emails: list[str]
    clients: list[httpx.Client]
    reviewer_token: str  # the reviewer's, for a review made through the API

    def answer_all(self, project_id: int, answer: Callable[[int, dict[str, Any]], Any], workers: int = 3) -> None:
        """Each annotator (the first ``workers``) answers every task open to them: ``answer(annotator, data)``."""
        for n, client in enumerate(self.clients[:workers]):
            while (lease := take_if_any(client, project_id)) is not None:
                sent = client.post(f"/assignments/{lease['id']}/submit",
                                   json={"answer": answer(n, lease["task"]["data"]), "seconds": 3})
                assert sent.status_code == 201, sent.text


@pytest.fixture
def crowd(server: LiveServer, database: Database, password_hash: str, people: People) -> Iterator[Crowd]:
    emails = [f"crowd{n}@crowd.test" for n in range(3)]
    tokens = [person(database, password_hash, email=e, role="annotator") for e in emails]
    reviewer = person(database, password_hash, email=REVIEWER, role="annotator", is_reviewer=True)
    clients = [client_for(server.url, token) for token in tokens]
    yield Crowd(emails, clients, reviewer)
    for client in clients:
        client.close()


def read_in(page: Page, server: LiveServer, lang: str) -> Translator:
    page.context.add_cookies([{"name": "qistas_lang", "value": lang, "url": server.url}])
    return Translator(lang)


def task_of(owner: httpx.Client, task_id: int) -> dict[str, Any]:
    found = owner.get(f"/tasks/{task_id}")
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def wait_review(page: Page, task_id: int) -> None:
    page.wait_for_selector(f'#task .widget[data-task="{task_id}"]')


def differing(page: Page) -> list[int]:
    """The indexes of the answers the page marks as differing from the aggregated one."""
    return [int(i) for i in page.locator(".rv-answer.differs").evaluate_all("els => els.map(e => e.dataset.index)")]


def check_language(page: Page, lang: str, where: str, part: str = "body") -> None:
    """The page is in the reader's language and direction (``part`` of it: the rest of a console
    page shows the customer's English labels in its charts)."""
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    assert_readable(page.inner_html(part), lang, where)


def open_review(page: Page, project_id: int, waiting: int, t: Translator) -> None:
    """The reviewer signs in, finds the project among those to review, and opens it."""
    sign_in(page, REVIEWER)
    check_language(page, t.lang, "the reviewer's work page")
    tile = page.locator(f'#review-projects a[data-project="{project_id}"]')
    expect(tile.locator(".waiting")).to_have_text(t("work.waiting", n=waiting))
    click_and_wait(page, f'#review-projects a[data-project="{project_id}"]')
    assert page.url.endswith(f"/review/{project_id}")


# --- classification ---------------------------------------------------------------------

CLASSIFY = {"type": "classification", "labels": LABELS, "text_field": "text"}
# Per task: the three annotators' labels. 0: all agree; 1 and 2: one dissents.
VOTES = {"نص أول": ["positive"] * 3, "نص ثان": ["positive", "negative", "positive"],
         "نص ثالث": ["negative", "positive", "positive"]}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_classification_reviewed_by_keyboard(lang: str, page: Page, people: People, crowd: Crowd,
                                             server: LiveServer) -> None:
    t = read_in(page, server, lang)
    texts = list(VOTES)
    project_id, tasks = project_with_tasks(people.owner, CLASSIFY, [{"text": x} for x in texts],
                                           redundancy={"min": 3, "max": 3}, review={"share": 1})
    crowd.answer_all(project_id, lambda n, data: {"label": VOTES[data["text"]][n]})
    open_review(page, project_id, 3, t)

    # 1. All three agree: every answer shown beside the aggregated one, none marked; A accepts.
    wait_review(page, tasks[0])
    assert page.locator(".rv-answer").count() == 4  # the aggregated answer and three answers
    assert page.locator(".rv-answer.aggregated .chip-label").text_content() == "positive"
    assert differing(page) == []
    assert page.get_attribute("#task .widget", "inert") == ""  # the task as its widget shows it, read-only
    assert page.get_attribute("#task .label-btn[data-index='0']", "aria-pressed") == "true"
    check_language(page, lang, "the reviewer's workspace")
    shot(page, f"review-classification-{lang}")
    page.keyboard.press("a")

    # 2. One dissent, marked; C corrects from the aggregated answer with the widget's keys.
    wait_review(page, tasks[1])
    assert differing(page) == [1]
    assert page.locator(".rv-answer.differs .badge").text_content() == t("rv.differs")
    assert page.locator(".rv-answer.differs .chip.diff .chip-label").text_content() == "negative"
    assert page.locator(".rv-answer.differs .chip.missing .chip-label").text_content() == "positive"
    page.keyboard.press("c")
    assert page.get_attribute("#task .widget", "inert") is None
    assert page.get_attribute("#task .label-btn[data-index='0']", "aria-pressed") == "true"  # prefilled
    check_language(page, lang, "correcting")
    page.keyboard.press("3")
    page.keyboard.press("Enter")

    # 3. R sends the dissenting answer back: number keys choose it, then the reason.
    wait_review(page, tasks[2])
    [dissent] = differing(page)
    other = (dissent + 1) % 3
    page.keyboard.press("r")
    assert page.locator(f".rv-answer[data-index='{dissent}']").get_attribute("class").endswith("chosen")
    page.keyboard.press(str(other + 1))
    assert "chosen" in page.locator(f".rv-answer[data-index='{other}']").get_attribute("class")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.press("Shift+Tab")  # back to the choice, by keyboard
    page.keyboard.press(str(dissent + 1))
    assert "chosen" in page.locator(f".rv-answer[data-index='{dissent}']").get_attribute("class")
    page.keyboard.press("Control+Enter")  # no reason yet: refused in the page
    expect(page.locator("#notice")).to_have_text(t("rv.reason_needed"))
    check_language(page, lang, "sending back")
    shot(page, f"review-reject-{lang}")
    reason = "المقصود سلبي: السخرية واضحة"
    page.keyboard.type(reason)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review-empty")
    expect(page.locator("#review-empty p")).to_have_text(t("rv.empty"))
    assert page.text_content("#done-count") == "3"
    check_language(page, lang, "nothing to review")

    first, second, third = (task_of(people.owner, task_id) for task_id in tasks)
    assert (first["status"], first["review"]["status"], first["response"]) == ("completed", "accepted",
                                                                                {"label": "positive"})
    assert (second["status"], second["review"]["status"], second["response"]) == ("completed", "corrected",
                                                                                  {"label": "mixed"})
    assert (third["status"], third["review"]["status"]) == ("pending", "rejected")
    # The dissenting annotator (the first of the crowd on this task) reads why, on their workspace.
    told = crowd.clients[0].get(f"/projects/{project_id}/rejections").json()
    assert [(r["task_id"], r["reason"]) for r in told] == [(tasks[2], reason)]
    page.context.clear_cookies()
    read_in(page, server, lang)
    sign_in(page, crowd.emails[0], next_path=f"/work/{project_id}")
    expect(page.locator("#sent-back summary")).to_have_text(t("work.sent_back", n=1))
    page.click("#sent-back summary")
    expect(page.locator("#sent-back .reason-text")).to_have_text(reason)
    expect(page.locator("#sent-back .task-gist")).to_have_text(texts[2])  # which task it was
    assert page.get_attribute("#sent-back .reason-text", "dir") == "auto"
    check_language(page, lang, "the annotator's sent-back answers")
    shot(page, f"workspace-sent-back-{lang}")


# --- spans --------------------------------------------------------------------------------

SPANS = {"type": "spans", "labels": ["PER", "ORG", "LOC"], "text_field": "text"}
ACME = ARABIC.index("Acme")
PLACE = ARABIC.index("الدوحة")
ORG = {"start": ACME, "end": ACME + 4, "label": "ORG"}
LOC = {"start": PLACE, "end": PLACE + len("الدوحة"), "label": "LOC"}
WRONG = {"start": PLACE, "end": PLACE + len("الدوحة"), "label": "PER"}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_spans_reviewed_by_keyboard(lang: str, page: Page, people: People, crowd: Crowd, server: LiveServer) -> None:
    t = read_in(page, server, lang)
    rows = [{"text": ARABIC, "n": n} for n in range(3)]
    project_id, tasks = project_with_tasks(people.owner, SPANS, rows, redundancy={"min": 3, "max": 3},
                                           review={"share": 1})
    # Task 0: all agree. Tasks 1 and 2: the second annotator labels the place a person.
    crowd.answer_all(project_id, lambda n, data: {"spans": [ORG, WRONG if (n == 1 and data["n"]) else LOC]})
    open_review(page, project_id, 3, t)

    wait_review(page, tasks[0])
    assert differing(page) == []
    assert page.locator("#task .seg.hl").count() == 2  # the aggregated spans, in the task's own widget
    page.keyboard.press("a")

    # The dissent shows in the text (marked segment) and in its list (a chip not in the result,
    # the result's chip it lacks struck through).
    wait_review(page, tasks[1])
    assert differing(page) == [1]
    card = page.locator(".rv-answer.differs")
    assert card.locator(".seg.diff").text_content() == "الدوحة"
    assert card.locator(".chip.diff .chip-label").text_content() == "PER"
    assert card.locator(".chip.missing .chip-text").text_content() == "الدوحة"
    check_language(page, lang, "spans under review", "#actions")  # the text itself has Latin words
    shot(page, f"review-spans-{lang}")
    # Correct: start from the aggregated spans, add "محمد" as a person with the widget's keys.
    # The cursor starts at the first letter; in right-to-left text the left arrow goes forward.
    page.keyboard.press("c")
    assert page.locator("#task .chip").count() == 2
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    for _ in range(4):
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("1")
    assert page.locator("#task .chip").count() == 3
    page.keyboard.press("z")  # undo, then again: the cursor is after the word, so select backwards
    assert page.locator("#task .chip").count() == 2
    for _ in range(4):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    shot(page, f"review-spans-correcting-{lang}")
    page.keyboard.press("Enter")

    # Reject the dissenting answer: it is chosen already; write why and send it back.
    wait_review(page, tasks[2])
    assert differing(page) == [1]
    page.keyboard.press("r")
    assert page.locator(".rv-answer[data-index='1']").get_attribute("class").endswith("chosen")
    page.keyboard.press("2")
    page.keyboard.type("الدوحة مدينة: LOC")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review-empty")

    accepted, corrected, sent_back = (task_of(people.owner, task_id) for task_id in tasks)
    assert accepted["review"]["status"] == "accepted"
    def by_start(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:  # the aggregator adds a confidence
        return sorted(({k: x[k] for k in ("start", "end", "label")} for x in spans), key=lambda x: x["start"])

    assert by_start(accepted["response"]["spans"]) == [ORG, LOC]
    assert corrected["review"]["status"] == "corrected"
    assert by_start(corrected["response"]["spans"]) == [{"start": 4, "end": 8, "label": "PER"}, ORG, LOC]
    assert ARABIC[4:8] == "محمد"
    assert sent_back["status"] == "pending" and sent_back["review"]["status"] == "rejected"
    assert crowd.clients[1].get(f"/projects/{project_id}/rejections").json()[0]["reason"] == "الدوحة مدينة: LOC"


# --- every other type ----------------------------------------------------------------------

BOX = {"x": 40, "y": 30, "w": 120, "h": 90, "label": "cat"}
# Per type: the spec, the task's data, the three answers (the second dissents), the keys that
# correct the aggregated answer, and what the correction stores.
OTHERS: dict[str, tuple[dict[str, Any], dict[str, Any], list[Any], list[str], Callable[[Any], bool]]] = {
    "rating": ({"type": "rating", "min": 1, "max": 5, "prompt_field": "prompt"}, {"prompt": "ما جودة الإجابة؟"},
               [{"rating": 4}, {"rating": 1}, {"rating": 4}], ["5"], lambda r: r == {"rating": 5}),
    "pairwise": ({"type": "pairwise"}, {"prompt": "أيهما أفضل؟", "a": "الأولى", "b": "الثانية"},
                 [{"choice": "a"}, {"choice": "b"}, {"choice": "a"}], ["b"], lambda r: r == {"choice": "b"}),
    "ranking": ({"type": "ranking"}, {"prompt": "رتّب", "responses": ["أ", "ب", "ج"]},
                [{"order": [0, 1, 2]}, {"order": [2, 1, 0]}, {"order": [0, 1, 2]}],
                ["3", "Shift+ArrowUp", "Shift+ArrowUp"], lambda r: r == {"order": [2, 0, 1]}),
    "text": ({"type": "text"}, {"prompt": "ترجم: hello"}, [{"text": "مرحبا"}, {"text": "وداعا"}, {"text": "مرحبا"}],
             ["Control+a", "type:أهلًا"], lambda r: r == {"text": "أهلًا"}),
    "boxes": ({"type": "boxes", "labels": ["cat", "dog"], "image_field": "image"},
              {"image": IMAGE, "width": 400, "height": 300},
              [{"boxes": [BOX]}, {"boxes": [{**BOX, "x": 250, "y": 180, "label": "dog"}]}, {"boxes": [BOX]}],
              ["]", "2"], lambda r: [b["label"] for b in r["boxes"]] == ["dog"]),
}


@pytest.mark.parametrize("kind", list(OTHERS))
def test_every_type_shows_the_dissent_and_takes_a_correction(kind: str, page: Page, people: People, crowd: Crowd,
                                                            server: LiveServer) -> None:
    t = read_in(page, server, "ar")
    spec, data, answers, keys, stored = OTHERS[kind]
    project_id, (task_id,) = project_with_tasks(people.owner, spec, [data], redundancy={"min": 3, "max": 3},
                                                review={"share": 1})
    crowd.answer_all(project_id, lambda n, _data: answers[n])
    open_review(page, project_id, 1, t)
    wait_review(page, task_id)
    assert 1 in differing(page)  # the dissent is marked...
    dissent = page.locator(".rv-answer[data-index='1']")
    assert dissent.locator(".diff, [data-mark='diff']").count() >= 1  # ...and so is what differs in it
    if kind == "boxes":
        page.wait_for_function("[...document.querySelectorAll('.rv-boxes .box-image')].every(i => i.naturalWidth > 0)")
        expect(dissent.locator(".box.diff")).to_have_count(1)
        expect(dissent.locator(".box.missing")).to_have_count(1)
    check_language(page, "ar", f"{kind} under review", "#actions")
    shot(page, f"review-{kind}-ar")
    page.keyboard.press("c")
    if kind == "boxes":
        page.wait_for_function("document.querySelector('#task .box-image').naturalWidth > 0")
    for key in keys:
        if key.startswith("type:"):
            page.keyboard.type(key[5:])
        else:
            page.keyboard.press(key)
    page.keyboard.press("Control+Enter" if kind == "text" else "Enter")
    page.wait_for_selector("#review-empty")
    done = task_of(people.owner, task_id)
    assert done["review"]["status"] == "corrected" and done["method"] == "review"
    assert stored(done["response"]), done["response"]


# --- hostile text ----------------------------------------------------------------------------

def test_hostile_answers_and_reasons_are_inert(page: Page, people: People, crowd: Crowd, server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    made = [
        ({"type": "classification", "labels": [LABEL, "\u202eok"], "text_field": "text"}, {"text": EVIL},
         [{"label": LABEL}, {"label": "\u202eok"}]),
        ({"type": "spans", "labels": [LABEL, "b"], "text_field": "text"}, {"text": EVIL},
         [{"spans": [{"start": 0, "end": 8, "label": LABEL}]}, {"spans": [{"start": 8, "end": 20, "label": "b"}]}]),
        ({"type": "text"}, {"prompt": EVIL}, [{"text": EVIL}, {"text": "\u202e" + EVIL}]),
        ({"type": "ranking"}, {"prompt": EVIL, "responses": [EVIL, {"x": EVIL}]},
         [{"order": [0, 1]}, {"order": [1, 0]}]),
    ]
    projects = []
    for spec, data, answers in made:
        project_id, (task_id,) = project_with_tasks(people.owner, spec, [data], name=EVIL,
                                                    redundancy={"min": 2, "max": 2}, review={"share": 1})
        crowd.answer_all(project_id, lambda n, _data, answers=answers: answers[n], workers=2)
        projects.append((project_id, task_id))
    sign_in(page, REVIEWER)
    assert_inert(page, dialogs)
    for project_id, task_id in projects:
        page.goto(f"/review/{project_id}")
        wait_review(page, task_id)
        assert_inert(page, dialogs)
        page.keyboard.press("c")
        assert_inert(page, dialogs)
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        page.keyboard.press("1")
        page.keyboard.type(EVIL)
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#review-empty")
    # The reason reaches the annotator's workspace and the customer's task page as text.
    page.context.clear_cookies()
    sign_in(page, crowd.emails[0], next_path=f"/work/{projects[0][0]}")
    page.click("#sent-back summary")
    assert page.text_content("#sent-back .reason-text") == EVIL
    assert_inert(page, dialogs)
    page.context.clear_cookies()
    sign_in(page, people.owner_email)
    for project_id, task_id in projects:
        for path in (f"/console/projects/{project_id}", f"/console/tasks/{task_id}"):
            page.goto(path)
            assert_inert(page, dialogs)


# --- what goes wrong ------------------------------------------------------------------------

def test_a_stale_review_says_so_and_moves_on(page: Page, people: People, crowd: Crowd, server: LiveServer) -> None:
    t = read_in(page, server, "ar")
    project_id, tasks = project_with_tasks(people.owner, CLASSIFY, [{"text": "أ"}, {"text": "ب"}],
                                           redundancy={"min": 1, "max": 1}, review={"share": 1})
    crowd.answer_all(project_id, lambda n, data: {"label": "positive"})
    open_review(page, project_id, 2, t)
    wait_review(page, tasks[0])
    # The customer cancels the task under the reviewer's lease: the accept is refused (409).
    assert people.owner.post(f"/tasks/{tasks[0]}/cancel").status_code == 200
    page.keyboard.press("a")
    wait_review(page, tasks[1])
    expect(page.locator("#notice")).to_have_text(t("rv.stale"))
    assert page.text_content("#done-count") == "0"
    check_language(page, "ar", "a stale review")
    # A correction the task type refuses is explained, and the reviewer stays on the task.
    page.keyboard.press("c")
    page.keyboard.press("1")  # unpick the prefilled label: no answer
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_have_text(t("ws.incomplete"))
    page.keyboard.press("Escape")  # back to reviewing, nothing sent
    assert page.get_attribute("#task .widget", "inert") == ""
    page.keyboard.press("a")
    page.wait_for_selector("#review-empty")
    assert task_of(people.owner, tasks[1])["review"]["status"] == "accepted"


def test_who_may_open_the_review_page(page: Page, people: People, crowd: Crowd, server: LiveServer,
                                      database: Database, password_hash: str) -> None:
    t = read_in(page, server, "ar")
    project_id, tasks = project_with_tasks(people.owner, CLASSIFY, [{"text": "أ"}], redundancy={"min": 1, "max": 1},
                                           review={"share": 1})
    crowd.answer_all(project_id, lambda n, data: {"label": "positive"})
    # An annotator who is no reviewer: a page saying so, in words; nothing to review on /work.
    sign_in(page, people.annotator_email)
    assert page.locator("#review-projects").count() == 0
    response = page.goto(f"/review/{project_id}")
    assert response is not None and response.status == 403
    check_language(page, "ar", "a refused review page")
    # The owner, no reviewer either: no way in from the console.
    page.context.clear_cookies()
    read_in(page, server, "ar")
    sign_in(page, people.owner_email, next_path=f"/console/projects/{project_id}")
    assert page.locator("#review-link").count() == 0
    assert page.goto(f"/review/{project_id}").status == 403  # type: ignore[union-attr]
    # A member of the organization who reviews: the console leads to the queue, and back.
    person(database, password_hash, email="rev@acme.test", role="member", org_id=people.org_id, is_reviewer=True)
    page.context.clear_cookies()
    read_in(page, server, "ar")
    sign_in(page, "rev@acme.test", next_path=f"/console/projects/{project_id}")
    expect(page.locator("#review-link")).to_have_text(t("review.start", n=1))
    click_and_wait(page, "#review-link")
    wait_review(page, tasks[0])
    page.keyboard.press("a")
    page.wait_for_selector("#review-empty")
    click_and_wait(page, "#review-empty a")
    assert page.url.endswith(f"/console/projects/{project_id}")
    expect(page.locator("#review-link")).to_have_text(t("review.start", n=0))


# --- the customer's console -------------------------------------------------------------------

def tab_to(page: Page, element_id: str, limit: int = 80) -> None:
    """Move the focus with Tab until it reaches the element: reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_customer_audits_and_sets_the_policy(lang: str, page: Page, people: People, crowd: Crowd,
                                                 server: LiveServer) -> None:
    t = read_in(page, server, lang)
    project_id, tasks = project_with_tasks(people.owner, CLASSIFY, [{"text": x} for x in VOTES],
                                           redundancy={"min": 3, "max": 3}, review={"disagreement": True})
    crowd.answer_all(project_id, lambda n, data: {"label": VOTES[data["text"]][n]})
    # Tasks 1 and 2 disagree and wait for a reviewer; task 0 was delivered at once.
    sign_in(page, people.owner_email, next_path=f"/console/projects/{project_id}")
    expect(page.locator("#review-waiting")).to_have_text("2")
    assert page.is_checked("#review-policy input[name=disagreement]")
    check_language(page, lang, "the console's review section", "#review")

    # The policy: review a quarter of the tasks too, and send rejected audits straight to review.
    page.fill("#review-policy input[name=share]", "25")
    page.select_option("#review-policy select[name=reopen]", "review")
    page.click("#review-policy-save")
    expect(page.locator("#review-policy-saved")).to_have_text(t("review.saved"))
    assert people.owner.get(f"/projects/{project_id}").json()["review"] == {
        "share": 0.25, "disagreement": True, "reopen": "review"}
    page.fill("#review-policy input[name=below_confidence]", "3")
    page.click("#review-policy-save")
    expect(page.locator("#review-policy-error")).to_have_text(t("err.invalid.field").replace(
        "{field}", "\u2068" + t("field.review.below_confidence") + "\u2069"))
    shot(page, f"console-review-{lang}")

    # The task list says where each task stands.
    page.goto(f"/console/projects/{project_id}/tasks")
    cells = page.locator("#task-table .review-cell")
    assert [cells.nth(i).get_attribute("data-review") for i in range(3)] == ["none", "pending", "pending"]
    assert cells.nth(1).text_content().strip() == t("review_status.pending")

    # Accept the delivered task, by keyboard.
    page.goto(f"/console/tasks/{tasks[0]}")
    expect(page.locator("#audit-status")).to_have_text(t("audit_status.none"))
    check_language(page, lang, "a task to audit")
    shot(page, f"console-audit-{lang}")
    tab_to(page, "audit-accept")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#audit-status")).to_have_attribute("data-status", "accepted")
    assert page.locator("#audit-form").count() == 0  # audited once per round
    assert page.locator("#task-verdicts tbody tr").count() == 1

    # A reviewer accepts task 1; the customer rejects it with a reason: it goes back to review.
    assert task_of(people.owner, tasks[1])["status"] == "review"
    with client_for(server.url, crowd.reviewer_token) as reviewer:
        lease = reviewer.post(f"/projects/{project_id}/reviews").json()
        assert reviewer.post(f"/reviews/{lease['id']}", json={"action": "accept"}).status_code == 201
    page.goto(f"/console/tasks/{lease['task']['id']}")
    expect(page.locator("#review-status")).to_have_text(t("review_status.accepted"))
    tab_to(page, "audit-reject")
    page.keyboard.press("Enter")  # no reason: refused in the page, the reason box gets the focus
    expect(page.locator("#audit-error")).to_have_text(t("audit.reason_needed"))
    assert page.evaluate("document.activeElement.id") == "audit-reason"
    reason = "الجملة ساخرة، فهي سلبية"
    page.keyboard.type(reason)
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    expect(page.locator("#audit-status")).to_have_attribute("data-status", "rejected")
    expect(page.locator("#review-status")).to_have_attribute("data-status", "pending")
    audit_row = page.locator("#task-verdicts tr[data-stage='audit']")
    expect(audit_row.locator("td").nth(3)).to_have_text(reason)
    assert audit_row.locator("td").nth(3).get_attribute("dir") == "auto"
    check_language(page, lang, "an audited task")
    reopened = task_of(people.owner, lease["task"]["id"])
    assert (reopened["status"], reopened["review"]["audit"]) == ("review", "rejected")

    # The numbers: verdicts, pass rates and the reviewer's agreement with the audits.
    page.goto(f"/console/projects/{project_id}")
    expect(page.locator("#review-verdicts dd[data-action='accept']")).to_have_text("1")
    expect(page.locator("#audit-verdicts dd[data-action='reject']")).to_have_text("1")
    expect(page.locator("#audit-verdicts dd[data-action='accept']")).to_have_text("1")
    assert page.locator("#review-annotators tbody tr").count() == 3
    expect(page.locator("#review-reviewers tbody tr td").nth(3)).to_contain_text("0%")
    check_language(page, lang, "the console's review numbers", "#review")
    shot(page, f"console-review-numbers-{lang}")



def test_the_review_lease_is_renewed_while_the_reviewer_works(browser: Browser, people: People, crowd: Crowd,
                                                              settings: Settings, database: Database) -> None:
    project_id, (task_id,) = project_with_tasks(people.owner, CLASSIFY, [{"text": "أ"}],
                                                redundancy={"min": 1, "max": 1}, review={"share": 1})
    crowd.answer_all(project_id, lambda n, data: {"label": "positive"})
    with LiveServer(settings.model_copy(update={"lease_seconds": 10}), database) as live:
        ctx = browser.new_context(base_url=live.url)
        try:
            page = ctx.new_page()
            sign_in(page, REVIEWER, next_path=f"/review/{project_id}")
            wait_review(page, task_id)

            def expiry() -> datetime:
                with database.reader() as session:
                    found = session.scalar(select(Review.expires_at).where(Review.task_id == task_id))
                    assert found is not None
                    return found

            first = expiry()
            deadline = time.monotonic() + 12
            renewed = first
            while renewed == first and time.monotonic() < deadline:
                page.keyboard.press("?")  # the reviewer keeps at it
                page.keyboard.press("Escape")
                page.wait_for_timeout(500)
                renewed = expiry()
            assert renewed > first
            page.keyboard.press("a")
            page.wait_for_selector("#review-empty")
            assert task_of(people.owner, task_id)["review"]["status"] == "accepted"
        finally:
            ctx.close()
