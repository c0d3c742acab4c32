"""The console's generation page in a real browser, against the loopback model server
(tests/model_server.py) and the server's own worker: a batch started from the form runs to its
end while the page follows it, a failed item shows its reason, a form with problems comes back
with each one next to its field, and the page is its organization's people's only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.domain import users
from qistas.web.i18n import Translator
from qistas.web.messages import fill, isolate
from tests.conftest import SECRET, LiveServer
from tests.factories import client_for
from tests.model_server import ModelServer, model_server
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.test_review import check_language, read_in, shot

pytestmark = pytest.mark.sqlite_only

# Each topic once (count = 4): the model server answers "gen" with a candidate, "html" with a page.
TOPICS = ["tides and the moon gen -", "desert dunes html x", "the old market stalls gen -", "فقه اللغة العربية gen -"]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, worker_poll_seconds=0.1,
                    model_retry_base_seconds=0.05, model_max_attempts=2)


@pytest.fixture
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


def register(people: People, llm: ModelServer, name: str, org: str = "acme", **fields: Any) -> dict[str, Any]:
    # One request at a time, one a second: the batch runs long enough to be seen running.
    body = {"name": name, "base_url": llm.base_url, "model": f"{name}-model", "allow_private": True, "org": org,
            "timeout_seconds": 2.0, "max_concurrency": 1, "requests_per_minute": 60, "price_input_per_1k": 1.0,
            **fields}
    answer = people.admin.post("/model-endpoints", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def verify_project(people: People) -> int:
    created = people.owner.post("/projects", json={"name": "مرشحات الخليج", "task": {"type": "verify"}})
    assert created.status_code == 201, created.text
    return created.json()["id"]  # type: ignore[no-any-return]


def error_of(page: Page, name: str) -> str:
    return page.locator(f"#{name}-error").inner_text()


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_batch_started_from_the_console_runs_to_its_end(lang: str, page: Page, people: People, llm: ModelServer,
                                                           server: LiveServer) -> None:
    t = read_in(page, server, lang)
    endpoint = register(people, llm, "gulf")
    project_id = verify_project(people)
    sign_in(page, people.owner_email, next_path=f"/console/projects/{project_id}")
    click_and_wait(page, "#generate-link")
    assert page.url.endswith(f"/console/projects/{project_id}/generate")
    expect(page.locator("#no-batches")).to_have_text(t("gen.none"))
    # The only endpoint is chosen already; the defaults are filled in.
    expect(page.locator(f"input[name=endpoints][value='{endpoint['id']}']")).to_be_checked()
    check_language(page, lang, "the generation page", "main")

    # A form with problems comes back with each next to its field, in the reader's words.
    page.fill("#count", "0")
    page.fill("#template_user", "Question {index} about {subject}")
    click_and_wait(page, "#gen-submit")
    assert error_of(page, "count") == seen(t, "err.greater_than_equal", field=t("field.count"), ge=1)
    assert error_of(page, "template_user") == seen(t, "err.template_field", field=t("field.template.user"),
                                                    name="subject", fields="index, language, seed, topic")
    expect(page.locator("#template_user")).to_be_focused()  # the first field to fix, in the form's order
    expect(page.locator("#count")).to_have_attribute("aria-invalid", "true")
    assert page.input_value("#template_user") == "Question {index} about {subject}"  # kept as typed
    check_language(page, lang, "the generation form sent back", "main")
    shot(page, f"generation-errors-{lang}")

    # By keyboard: the fields in order, then Enter on the button.
    page.fill("#template_user", "Question {index} about {topic}")
    page.focus("#count")
    page.keyboard.press("Control+a")
    page.keyboard.type("4")
    page.fill("#topics", "\n".join(TOPICS))
    page.fill("#language", "الخليجية")
    page.focus("#gen-submit")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    batch = page.locator("tbody.batch").first
    batch_id = batch.get_attribute("data-batch")
    assert page.url.endswith(f"/generate#batch-{batch_id}")
    # Followed while it runs: part-way through, then done (the page is never reloaded).
    page.wait_for_function("""() => { const p = document.querySelector('tbody.batch [data-cell=progress]');
                                      return p.value > 0 && p.value < p.max; }""", timeout=15_000)
    expect(batch.locator("[data-cell=status]")).to_have_text(t("gen_status.running"))
    shot(page, f"generation-running-{lang}")
    expect(batch.locator("[data-cell=status]")).to_have_text(t("gen_status.done"), timeout=20_000)
    expect(batch.locator("[data-cell=asked]")).to_have_text("4 / 4")
    expect(batch.locator("[data-cell=generated]")).to_have_text("3")
    expect(batch.locator("[data-cell=failed]")).to_have_text("1")
    reason = batch.locator("[data-cell=failures] .reason")
    expect(reason).to_have_count(1)
    expect(reason).to_contain_text("text/html")
    expect(batch.locator("[data-cell=failures] summary")).to_have_text(t("gen.failures", n=1))
    expect(batch.locator("bdi[dir=auto]", has_text="فقه اللغة العربية")).to_have_count(1)  # the topics, isolated
    check_language(page, lang, "the generation page with a batch", "main")
    shot(page, f"generation-done-{lang}")

    # As the API says, and as the page says when loaded again.
    found = people.owner.get(f"/generation-batches/{batch_id}").json()
    assert (found["status"], found["generated"], found["failed"], found["next_index"]) == ("done", 3, 1, 4)
    assert found["params"]["language"] == "الخليجية" and found["params"]["topics"] == TOPICS
    assert found["template"] == {"user": "Question {index} about {topic}"}
    expect(batch.locator("[data-cell=tokens]")).to_have_text(f"{found['input_tokens']} / {found['output_tokens']}")
    expect(batch.locator("[data-cell=cost]")).to_have_text(f"{found['cost']:.4f}")
    assert found["input_tokens"] >= 30
    page.reload()
    expect(batch.locator("[data-cell=status]")).to_have_text(t("gen_status.done"))
    expect(batch.locator("[data-cell=failures] .reason")).to_contain_text("text/html")
    assert len(people.owner.get(f"/projects/{project_id}/tasks").json()["items"]) == 3


def seen(t: Translator, key: str, **values: object) -> str:
    """A catalogue message as the page shows it (values in isolates, as web/messages.py puts them)."""
    return fill(t(key), {k: isolate(v) for k, v in values.items()})


def test_the_page_is_its_organizations_people_only(page: Page, people: People, llm: ModelServer,
                                                   server: LiveServer, database: Database,
                                                   password_hash: str) -> None:
    project_id = verify_project(people)
    register(people, llm, "acme-model")
    with database.writer.begin() as session:
        rival_org = users.create_org(session, name="Globex", slug="globex").id
    rival_token = person(database, password_hash, email="boss@globex.test", role="owner", org_id=rival_org)
    member_token = person(database, password_hash, email="member@acme.test", role="member", org_id=people.org_id)
    rival_endpoint = register(people, llm, "globex-model", org="globex")

    # Another tenant's owner: the project is not found, by page or by form.
    sign_in(page, "boss@globex.test")
    assert page.goto(f"/console/projects/{project_id}/generate").status == 404  # type: ignore[union-attr]
    with client_for(server.url, rival_token) as rival:
        assert rival.get(f"/projects/{project_id}/generation-batches").status_code == 404
    page.context.clear_cookies()

    # The admin and an annotator may not use it; a member may, with the organization's endpoints only.
    sign_in(page, people.admin_email)
    assert page.goto(f"/console/projects/{project_id}/generate").status == 403  # type: ignore[union-attr]
    page.context.clear_cookies()
    sign_in(page, people.annotator_email)
    assert page.goto(f"/console/projects/{project_id}/generate").status in (403, 404)  # type: ignore[union-attr]
    page.context.clear_cookies()
    assert member_token
    sign_in(page, "member@acme.test")
    page.goto(f"/console/projects/{project_id}/generate")
    expect(page.locator("input[name=endpoints]")).to_have_count(1)
    # A hand-made form naming another organization's endpoint is refused next to the field.
    page.evaluate("id => { document.querySelector('input[name=endpoints]').value = String(id); }",
                  rival_endpoint["id"])
    page.fill("#template_user", "About {topic} gen -")
    click_and_wait(page, "#gen-submit")
    assert error_of(page, "endpoints") == Translator("en")("err.endpoint_unknown")
    # Without the form's CSRF token, nothing is queued.
    csrf = page.get_attribute("input[name=csrf]", "value")
    assert csrf
    answer = page.request.post(f"/console/projects/{project_id}/generate",
                               form={"csrf": "stale", "endpoints": "1", "template_user": "x", "count": "1"})
    assert answer.status == 403
    assert people.owner.get(f"/projects/{project_id}/generation-batches").json()["items"] == []
