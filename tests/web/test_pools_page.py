"""The console's pools in a real browser: an owner creates a team, adds an annotator by email,
edits their skills, imports a CSV and removes a member, with every problem named next to its
input; a pool's manager manages it from their own page; other organizations' pools are not
found and a member is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import AuditEvent, User
from qistas.domain import users, workforce
from tests.conftest import LiveServer
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.test_review import check_language, read_in, shot

pytestmark = pytest.mark.sqlite_only


def user_named(database: Database, email: str) -> User:
    with database.reader() as session:
        return session.scalars(select(User).where(User.email == email)).one()


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_owner_builds_a_team(lang: str, page: Page, people: People, server: LiveServer, database: Database,
                                password_hash: str, tmp_path: Path) -> None:
    t = read_in(page, server, lang)
    person(database, password_hash, email="salma@acme.test", role="annotator", org_id=people.org_id)
    sign_in(page, people.owner_email, next_path="/console")
    click_and_wait(page, "#nav-pools")
    check_language(page, lang, "the pools page", "main")
    page.fill("#name", "")
    click_and_wait(page, "#pool-submit")
    expect(page.locator("#name-error")).to_be_visible()
    page.fill("#name", "فريق القاهرة")
    page.select_option("#kind", "team")
    click_and_wait(page, "#pool-submit")
    pool_id = int(page.url.rsplit("/", 1)[1])

    # An email that may not join (another organization's, or no one's) is named; then one that may.
    page.fill("#email", people.annotator_email)  # the shared workforce's: not this team's
    click_and_wait(page, "#member-submit")
    expect(page.locator("#email-error")).to_be_visible()
    check_language(page, lang, "a refused email", "#email-error")
    page.fill("#email", "salma@acme.test")
    click_and_wait(page, "#member-submit")
    salma = user_named(database, "salma@acme.test")
    row = page.locator(f"#member-{salma.id}")
    expect(row).to_contain_text("salma@acme.test")

    # Skills: a bad tag is named in the row, a good one is kept (and routing reads it).
    row.locator("input[name=skills]").fill("language:egyptian=4")
    click_and_wait(page, f'button[data-save="{salma.id}"]')
    expect(page.locator(f"#skills-{salma.id}-error")).to_be_visible()
    assert page.input_value(f"#skills-{salma.id}") == "language:egyptian=4"  # kept as typed
    page.fill(f"#skills-{salma.id}", "language:ar-eg=4; domain:medical=3")
    click_and_wait(page, f'button[data-save="{salma.id}"]')
    assert page.input_value(f"#skills-{salma.id}") == "domain:medical=3; language:ar-EG=4"
    assert user_named(database, "salma@acme.test").work_profile["skills"] == {"language:ar-EG": 4,
                                                                              "domain:medical": 3}
    shot(page, f"pool-{lang}")

    # A CSV with a bad row changes nothing; a good one adds and makes accounts.
    bad = tmp_path / "bad.csv"
    bad.write_text("email,skills,manager\nhoda@acme.test,language:ar-SA=3,no\nnot-an-email,,no\n")
    page.set_input_files("#csv", str(bad))
    click_and_wait(page, "#import-submit")
    expect(page.locator("#csv-error")).to_contain_text("3")
    with database.reader() as session:
        assert session.scalars(select(User).where(User.email == "hoda@acme.test")).first() is None
    good = tmp_path / "good.csv"
    good.write_text("email,skills,manager\nhoda@acme.test,language:ar-SA=3,no\n")
    page.set_input_files("#csv", str(good))
    click_and_wait(page, "#import-submit")
    expect(page.locator("#notice")).to_have_text(t("pools.imported", rows=1, created=1))
    expect(page.locator("#member-list tbody tr")).to_have_count(2)

    click_and_wait(page, f'button[data-remove="{salma.id}"]')
    expect(page.locator(f"#member-{salma.id}")).to_have_count(0)
    with database.reader() as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "pool",
                                                                      AuditEvent.object_id == pool_id)))
    assert {"pool.create", "pool.member.put", "pool.members.import", "pool.member.remove"} <= actions
    page.goto("/console/pools")
    expect(page.locator(f"#pool-{pool_id} [data-cell=members]")).to_have_text("1")


def test_pools_are_for_their_people(page: Page, people: People, database: Database, password_hash: str) -> None:
    with database.writer.begin() as session:
        rival = users.create_org(session, name="Globex", slug="globex")
        theirs = workforce.create_pool(session, org_id=rival.id, name="Globex team", kind="team")
        ours = workforce.create_pool(session, org_id=people.org_id, name="Acme team", kind="team")
        lead = users.create_user(session, email="lead@acme.test", role="annotator", org_id=people.org_id)
        lead.password_hash = password_hash
        workforce.add_member(session, pool=ours, user=lead, is_manager=True)
        theirs_id, ours_id = theirs.id, ours.id
    person(database, password_hash, email="worker@acme.test", role="annotator", org_id=people.org_id)
    sign_in(page, people.owner_email, next_path="/console")
    assert page.goto(f"/console/pools/{theirs_id}").status == 404  # type: ignore[union-attr]
    page.goto("/console/pools")
    expect(page.locator(f"#pool-{ours_id}")).to_have_count(1)
    expect(page.locator(f"#pool-{theirs_id}")).to_have_count(0)
    page.context.clear_cookies()

    person(database, password_hash, email="member@acme.test", role="member", org_id=people.org_id)
    sign_in(page, "member@acme.test", next_path="/console")
    assert page.goto(f"/console/pools/{ours_id}").status == 403  # type: ignore[union-attr]
    page.context.clear_cookies()

    # The pool's manager reaches it from their own page, adds a colleague, may not name managers.
    sign_in(page, "lead@acme.test")
    page.goto("/work/me")
    click_and_wait(page, f'[data-pool="{ours_id}"] a')
    assert page.locator("#manager").count() == 0
    page.fill("#email", "worker@acme.test")
    click_and_wait(page, "#member-submit")
    worker = user_named(database, "worker@acme.test")
    expect(page.locator(f"#member-{worker.id}")).to_be_visible()
    assert page.goto(f"/console/pools/{theirs_id}").status == 404  # type: ignore[union-attr]


def test_a_large_pool_shows_its_members_a_page_at_a_time(page: Page, people: People, database: Database,
                                                         tmp_path: Path) -> None:
    sign_in(page, people.owner_email, next_path="/console")
    click_and_wait(page, "#nav-pools")
    page.fill("#name", "Big team")
    page.select_option("#kind", "team")
    click_and_wait(page, "#pool-submit")
    address = page.url
    crowd = tmp_path / "crowd.csv"
    crowd.write_text("email,skills,manager\n" + "".join(f"member-{n:03}@acme.test,,no\n" for n in range(130)))
    page.set_input_files("#csv", str(crowd))
    click_and_wait(page, "#import-submit")
    emails = [f"member-{n:03}@acme.test" for n in range(130)]
    expect(page.locator("#member-list tbody tr")).to_have_count(100)
    assert page.locator("#member-list tbody td:first-child bdi").all_text_contents() == emails[:100]
    page.focus("#members-next")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#member-list tbody td:first-child bdi").all_text_contents() == emails[100:]
    assert page.locator("#members-next").count() == 0
    click_and_wait(page, "#members-first")
    expect(page.locator("#member-list tbody tr")).to_have_count(100)

    page.fill("#member-search-email", "MEMBER-12")
    page.focus("#member-search button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#member-list tbody td:first-child bdi").all_text_contents() == emails[120:130]
    assert page.locator("#members-next, #members-first").count() == 0
    page.goto(address + "?email=nobody-here")
    expect(page.locator("#no-members")).to_have_text("No user matches.")
