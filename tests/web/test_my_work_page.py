"""The annotator's own page in a real browser, in English and Arabic: their record per project
under its work name (never the customer's), their skills; only annotators have one."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import User
from qistas.domain import workforce
from tests.api.helpers import answer_label, take
from tests.conftest import LiveServer
from tests.factories import client_for
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.test_review import check_language, read_in, shot

pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_annotator_reads_their_own_record(lang: str, page: Page, people: People, server: LiveServer,
                                             database: Database, password_hash: str) -> None:
    t = read_in(page, server, lang)
    token = person(database, password_hash, email="noor@crowd.test", role="annotator")
    project = people.owner.post("/projects", json={"name": "Acme Secret Launch", "work_name": "نجمة الصباح",
                                                   "task": {"type": "classification", "labels": ["a", "b"]}}).json()
    assert people.owner.post(f"/projects/{project['id']}/tasks",
                             json=[{"data": {"text": f"نص {n}"}} for n in range(3)]).status_code == 201
    with database.writer.begin() as session:
        noor = session.scalars(select(User).where(User.email == "noor@crowd.test")).one()
        workforce.set_skills(session, user=noor, skills={"language:ar-EG": 4})
    with client_for(server.url, token) as noor:
        for _ in range(2):
            assert answer_label(noor, take(noor, project["id"]), "a").status_code == 201

    sign_in(page, "noor@crowd.test")
    click_and_wait(page, "#nav-me")
    check_language(page, lang, "the annotator's own page", "main")
    row = page.locator(f"#project-{project['id']}")
    expect(row).to_contain_text("نجمة الصباح")
    expect(row.locator("[data-cell=answers]")).to_have_text("2")
    expect(row.locator("[data-cell=standing]")).to_have_text(t("standing.working"))
    expect(page.locator("[data-total=answers]")).to_have_text("2")
    expect(page.locator('[data-skill="language:ar-EG"]')).to_contain_text(t("me.level", n=4))
    assert "Acme" not in page.content()
    shot(page, f"my-work-{lang}")


def test_only_annotators_have_a_record_page(page: Page, people: People) -> None:
    sign_in(page, people.owner_email, next_path="/console")
    assert page.locator("#nav-me").count() == 0
    assert page.goto("/work/me").status == 403  # type: ignore[union-attr]
