"""Messages the scripts show (the workspace's notices, the upload's result) in the reader's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from qistas.domain.tasktypes.text import MAX_TEXT_ANSWER
from qistas.web.i18n import Translator
from qistas.web.messages import fill, isolate
from tests.conftest import LiveServer
from tests.web.conftest import People, sign_in
from tests.web.helpers import project_with_tasks, wait_task
from tests.web.test_readable_pages import assert_readable

pytestmark = pytest.mark.sqlite_only


def _read_in(page: Page, server: LiveServer, lang: str) -> Translator:
    page.context.add_cookies([{"name": "qistas_lang", "value": lang, "url": server.url}])
    return Translator(lang)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_refused_answer_is_explained_in_words(lang: str, page: Page, people: People, server: LiveServer) -> None:
    t = _read_in(page, server, lang)
    project_id, (task_id,) = project_with_tasks(people.owner, {"type": "text"}, [{"prompt": "اكتب"}])
    sign_in(page, people.annotator_email, next_path=f"/work/{project_id}")
    wait_task(page, task_id)
    page.fill(".answer-text", "x" * (MAX_TEXT_ANSWER + 1))
    page.click("#btn-submit")
    page.wait_for_selector("#notice.error")
    expected = fill(t("err.invalid.field"), {"field": isolate(t("field.answer.text"))})
    assert page.text_content("#notice") == expected  # and nothing after it (no stray "null")
    assert_readable(page.inner_html("#notice"), lang, "the workspace's notice")
    assert page.locator("#btn-submit").is_enabled()  # the annotator may shorten it and submit again


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_rejected_upload_is_explained_in_words(lang: str, page: Page, people: People, server: LiveServer,
                                                 tmp_path: Path) -> None:
    t = _read_in(page, server, lang)
    project_id, _ = project_with_tasks(people.owner, {"type": "classification", "labels": ["a", "b"]},
                                       [{"text": "نص"}])
    sign_in(page, people.owner_email, next_path=f"/console/projects/{project_id}")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"nodata": 1}\nnot json\n', encoding="utf-8")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button")
    page.wait_for_selector("#upload-error")
    expected = fill(t("err.invalid.rows"), {"invalid": isolate(2), "total": isolate(3)})
    assert page.text_content("#upload-error") == f"{t('upload.rejected')} {expected}"
    rows = page.locator("#upload-rows tbody tr")
    assert rows.count() == 2
    # The parser's own message stays, marked as English technical detail after the sentence.
    detail = rows.nth(0).locator("code.detail")
    assert detail.get_attribute("lang") == "en" and detail.get_attribute("dir") == "ltr" and detail.text_content()
    assert t("err.row") in rows.nth(0).text_content()
    assert_readable(page.inner_html("#upload-result"), lang, "the upload's result")

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    page.set_input_files("#upload-file", str(empty))
    page.click("#upload-form button")
    expect(page.locator("#upload-error")).to_have_text(f"{t('upload.rejected')} {t('err.invalid.file')}")
    assert page.locator("#upload-rows").count() == 0
