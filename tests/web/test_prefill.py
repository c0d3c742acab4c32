"""A model's prediction in the workspace, in a real browser: shown as a pre-fill that the
annotator confirms or changes by keyboard, in English and in Arabic."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from qistas.web.i18n import Translator
from tests.conftest import LiveServer
from tests.web.conftest import People, sign_in
from tests.web.helpers import answers, wait_empty, wait_task

pytestmark = pytest.mark.sqlite_only

LABELS = ["positive", "negative", "mixed"]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_prefill_is_confirmed_or_changed_by_keyboard(page: Page, people: People, server: LiveServer,
                                                      lang: str) -> None:
    owner = people.owner
    created = owner.post("/projects", json={
        "name": "prefilled", "task": {"type": "classification", "labels": LABELS, "text_field": "text"},
        "prefill": {"mode": "always", "show_model": lang == "ar"}})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    rows = [{"data": {"text": text}, "predictions": [{"model": "sent-v3", "answer": {"label": "negative"},
                                                      "score": 0.8}]}
            for text in ("awful", "fine")]
    assert owner.post(f"/projects/{pid}/tasks", json=rows).status_code == 201
    first, second = (t["id"] for t in owner.get(f"/projects/{pid}/tasks").json()["items"])
    page.context.add_cookies([{"name": "qistas_lang", "value": lang, "url": server.url}])
    t = Translator(lang)
    sign_in(page, people.annotator_email, next_path=f"/work/{pid}")
    wait_task(page, first)
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    note = page.text_content("#prefill-note") or ""
    assert t("ws.prefill") in note
    # The model is named only when the project says so.
    assert ("sent-v3" in note) == (lang == "ar")
    assert page.get_attribute(".label-btn[data-index='1']", "aria-pressed") == "true"
    page.keyboard.press("Enter")  # confirm the pre-fill as it is
    wait_task(page, second)
    assert page.get_attribute(".label-btn[data-index='1']", "aria-pressed") == "true"
    page.keyboard.press("3")  # change it
    assert page.get_attribute(".label-btn[data-index='1']", "aria-pressed") == "false"
    assert page.get_attribute(".label-btn[data-index='2']", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    wait_empty(page)
    assert answers(owner, first) == [{"label": "negative"}]
    assert answers(owner, second) == [{"label": "mixed"}]
    report = owner.get(f"/projects/{pid}/quality").json()["predictions"]
    assert [(m["model"], m["prefilled"], m["kept"]) for m in report] == [("sent-v3", 2, 1)]
    assert page.page_errors == []  # type: ignore[attr-defined]
