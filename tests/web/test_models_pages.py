"""The console's model pages in a real browser, against the loopback model server
(tests/model_server.py) and the server's own worker: an owner registers an endpoint, starts
pre-label jobs in both modes from a project's models page and watches them end with a failure's
reason, edits the prefill and model-annotator settings, deletes the endpoint; and the pages are
for the right people only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.domain import users
from qistas.web.i18n import Translator
from tests.conftest import SECRET, LiveServer
from tests.factories import client_for
from tests.model_server import ModelServer, model_server
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.test_generation_page import error_of, seen
from tests.web.test_review import check_language, read_in, shot

pytestmark = pytest.mark.sqlite_only

KEY = "sk-browser-secret-9d2e"
SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}
TEXTS = ["ok positive", "ok negative", "html positive", "ok mixed"]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # The loopback model server is a private address: this instance lets every endpoint reach it.
    return Settings(home=tmp_path, database_url=db_url, secret_key=SECRET, worker_poll_seconds=0.1,
                    model_retry_base_seconds=0.05, model_max_attempts=2, webhook_allow_private=True)


@pytest.fixture
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


def classification_project(people: People) -> int:
    created = people.owner.post("/projects", json={"name": "مراجعات المنتجات", "task": SPEC})
    assert created.status_code == 201, created.text
    project_id: int = created.json()["id"]
    added = people.owner.post(f"/projects/{project_id}/tasks", json=[{"data": {"text": t}} for t in TEXTS])
    assert added.status_code == 201, added.text
    return project_id


def register_in_browser(page: Page, llm: ModelServer, name: str) -> None:
    page.fill("#name", name)
    page.fill("#base_url", llm.base_url)
    page.fill("#model", "qwen-test")
    page.fill("#api_key", KEY)
    page.fill("#max_concurrency", "1")
    page.fill("#requests_per_minute", "60")  # one request a second: the job is seen running
    page.fill("#timeout_seconds", "2")
    page.fill("#price_input_per_1k", "1")
    click_and_wait(page, "#endpoint-submit")


def wait_job(page: Page, t: Translator, job: str, done: int, failed: int) -> None:
    row = page.locator(f"#job-{job}")
    expect(row.locator("[data-cell=status]")).to_have_text(t("gen_status.done"), timeout=20_000)
    expect(row.locator("[data-cell=done]")).to_have_text(str(done))
    expect(row.locator("[data-cell=failed]")).to_have_text(str(failed))
    expect(row.locator("[data-cell=handled]")).to_have_text(f"{done + failed} / {done + failed}")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_owner_registers_an_endpoint_and_runs_jobs(lang: str, page: Page, people: People, llm: ModelServer,
                                                      server: LiveServer) -> None:
    t = read_in(page, server, lang)
    project_id = classification_project(people)
    sign_in(page, people.owner_email, next_path="/console")
    click_and_wait(page, "#nav-models")
    assert page.url.endswith("/console/model-endpoints")
    expect(page.locator("#nav-models")).to_have_attribute("aria-current", "page")
    expect(page.locator("#no-endpoints")).to_have_text(t("endpoints.none"))
    expect(page.locator("#api_key")).to_have_attribute("type", "password")
    check_language(page, lang, "the endpoints page", "main")

    # A form with problems comes back with each next to its field; the key is never sent back.
    register_in_browser(page, llm, "local/vllm")
    page.fill("#max_concurrency", "0")
    page.fill("#api_key", KEY)
    click_and_wait(page, "#endpoint-submit")
    assert error_of(page, "name") == t("err.string_pattern_mismatch.name")
    assert error_of(page, "max_concurrency") == seen(t, "err.greater_than_equal", field=t("field.max_concurrency"),
                                                      ge=1)
    expect(page.locator("#name")).to_be_focused()
    assert page.input_value("#name") == "local/vllm" and page.input_value("#api_key") == ""
    assert KEY not in page.content()
    check_language(page, lang, "the endpoint form sent back", "main")
    shot(page, f"endpoints-errors-{lang}")

    register_in_browser(page, llm, "محلي")
    row = page.locator("#endpoints tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".endpoint-name")).to_have_text("محلي")
    expect(row.locator("[data-cell=key]")).to_have_text(t("endpoints.has_key"))
    expect(row.locator("[data-cell=concurrency]")).to_have_text("1")
    assert KEY not in page.content()
    (endpoint,) = people.owner.get("/model-endpoints").json()
    assert (endpoint["name"], endpoint["has_api_key"], endpoint["requests_per_minute"]) == ("محلي", True, 60)
    check_language(page, lang, "the endpoints page with one", "main")
    shot(page, f"endpoints-{lang}")

    # The project's models page: a template naming a field the spec lacks is refused next to it.
    page.goto(f"/console/projects/{project_id}")
    click_and_wait(page, "#models-link")
    assert page.url.endswith(f"/console/projects/{project_id}/models")
    expect(page.locator("#no-jobs")).to_have_text(t("prelabel.none"))
    expect(page.locator("#endpoint")).to_have_value(str(endpoint["id"]))  # the only one: chosen
    page.fill("#template_user", "Text: {body}")
    click_and_wait(page, "#prelabel-submit")
    assert error_of(page, "template_user") == seen(t, "err.template_field", field=t("field.template.user"),
                                                    name="body", fields="text")
    expect(page.locator("#template_user")).to_be_focused()
    check_language(page, lang, "the models page sent back", "main")

    # By keyboard: the prompt, then Enter on the button; the job is followed while it runs.
    page.fill("#template_system", "Answer with JSON: {{\"label\": ...}}.")
    page.fill("#template_user", "Text: {text}")
    page.focus("#prelabel-submit")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    job = page.locator("tbody.job").first.get_attribute("data-job")
    assert job and page.url.endswith(f"/models#job-{job}")
    page.wait_for_function("""() => { const p = document.querySelector('tbody.job [data-cell=progress]');
                                      return p.value > 0 && p.value < p.max; }""", timeout=15_000)
    expect(page.locator(f"#job-{job} [data-cell=status]")).to_have_text(t("gen_status.running"))
    shot(page, f"models-running-{lang}")
    wait_job(page, t, job, done=3, failed=1)
    reason = page.locator(f"#job-{job} [data-cell=failures] .reason")
    expect(reason).to_have_count(1)
    expect(reason).to_contain_text("text/html")
    expect(page.locator(f"#job-{job} [data-cell=failures] summary")).to_have_text(t("prelabel.failures", n=1))
    expect(page.locator("[data-usage=done]")).to_have_text("3")  # the usage, read again once it ended
    expect(page.locator("[data-usage=tokens]")).to_have_text("30 / 15")
    expect(page.locator("[data-usage=cost]")).to_have_text("0.0300")

    # As an annotator: the same tasks answered again, as the model's own annotations; the form
    # starts from the newest job's prompt.
    assert page.input_value("#template_user") == "Text: {text}"
    page.check("#as-annotations")
    click_and_wait(page, "#prelabel-submit")
    second = page.locator("tbody.job").first.get_attribute("data-job")
    assert second and second != job
    wait_job(page, t, second, done=3, failed=1)
    expect(page.locator(f"#job-{second} .job-as")).to_have_text(t("job_as.annotations"))
    expect(page.locator("[data-usage=jobs]")).to_have_text("2")
    check_language(page, lang, "the models page with two jobs", "main")
    shot(page, f"models-done-{lang}")
    jobs = people.owner.get(f"/projects/{project_id}/prelabel-jobs").json()
    assert [(j["as"], j["done"], j["failed"]) for j in jobs["items"]] == [("annotations", 3, 1), ("predictions", 3, 1)]
    tasks = {x["data"]["text"]: x for x in people.owner.get(f"/projects/{project_id}/tasks").json()["items"]}
    shown = people.owner.get(f"/tasks/{tasks['ok negative']['id']}").json()
    assert [a["source"] for a in shown["annotations"]] == ["model"]
    assert shown["predictions"][0]["answer"] == {"label": "negative"}
    page.reload()  # as the page says when loaded again
    expect(page.locator(f"#job-{job} [data-cell=failures] .reason")).to_contain_text("text/html")

    # The settings: a bad score is refused next to its field; a good one is saved.
    page.select_option("#prefill_mode", "above")
    page.fill("#prefill_min_score", "1.5")
    page.fill("#model_annotators_min_human_answers", "2")
    click_and_wait(page, "#settings-submit")
    assert error_of(page, "prefill_min_score") == t("err.invalid.prefill.min_score")
    assert page.input_value("#prefill_min_score") == "1.5"
    page.fill("#prefill_min_score", "0.8")
    page.check("#prefill_show_model")
    click_and_wait(page, "#settings-submit")
    expect(page.locator("#notice")).to_have_text(t("prelabel.saved"))
    expect(page.locator("#prefill_mode")).to_have_value("above")
    found = people.owner.get(f"/projects/{project_id}").json()
    assert found["prefill"] == {"mode": "above", "min_score": 0.8, "show_model": True}
    assert found["model_annotators"] == {"min_human_answers": 2}
    check_language(page, lang, "the models page's settings saved", "main")
    shot(page, f"models-settings-{lang}")

    # A standing job answers what there is, then waits for new tasks until it is stopped.
    page.check("#as-predictions")
    page.check("#standing")
    click_and_wait(page, "#prelabel-submit")
    standing = page.locator("tbody.job").first.get_attribute("data-job")
    assert standing and standing not in (job, second)
    expect(page.locator(f"#job-{standing} [data-cell=status]")).to_have_text(t("gen_status.waiting"), timeout=20_000)
    click_and_wait(page, f"#stop-{standing}")
    expect(page.locator(f"#job-{standing} [data-cell=status]")).to_have_text(t("gen_status.stopped"))
    expect(page.locator(f"#stop-{standing}")).to_have_count(0)
    assert people.owner.get(f"/prelabel-jobs/{standing}").json()["status"] == "stopped"

    # Deleting asks first; then the endpoint is gone and its jobs stay.
    page.goto("/console/model-endpoints")
    page.locator("details.confirm summary").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"button[data-delete='{endpoint['id']}']")).to_be_visible()
    shot(page, f"endpoints-delete-{lang}")
    click_and_wait(page, f"button[data-delete='{endpoint['id']}']")
    expect(page.locator("#notice")).to_contain_text("محلي")
    expect(page.locator("#no-endpoints")).to_be_visible()
    assert people.owner.get("/model-endpoints").json() == []
    assert len(people.owner.get(f"/projects/{project_id}/prelabel-jobs").json()["items"]) == 3


def test_the_pages_are_for_the_right_people(page: Page, people: People, llm: ModelServer, server: LiveServer,
                                            database: Database, password_hash: str) -> None:
    project_id = classification_project(people)
    mine = people.owner.post("/model-endpoints", json={"name": "acme-llm", "base_url": llm.base_url, "model": "m"})
    assert mine.status_code == 201, mine.text
    endpoint_id = mine.json()["id"]
    with database.writer.begin() as session:
        rival_org = users.create_org(session, name="Globex", slug="globex").id
    rival_token = person(database, password_hash, email="boss@globex.test", role="owner", org_id=rival_org)
    person(database, password_hash, email="member@acme.test", role="member", org_id=people.org_id)
    with client_for(server.url, rival_token) as rival:
        theirs = rival.post("/model-endpoints", json={"name": "globex-llm", "base_url": llm.base_url, "model": "m"})
        assert theirs.status_code == 201, theirs.text

    # A member: no link, the endpoints page is forbidden, the project's models page is theirs.
    sign_in(page, "member@acme.test")
    expect(page.locator("#nav-models")).to_have_count(0)
    assert page.goto("/console/model-endpoints").status == 403  # type: ignore[union-attr]
    page.goto(f"/console/projects/{project_id}/models")
    expect(page.locator("#endpoint option[value]:not([value=''])")).to_have_count(1)
    # A hand-made form naming another organization's endpoint is refused next to the field.
    page.evaluate("id => { document.querySelector('#endpoint option:last-child').value = String(id); }",
                  theirs.json()["id"])
    page.select_option("#endpoint", str(theirs.json()["id"]))
    page.fill("#template_user", "Text: {text}")
    click_and_wait(page, "#prelabel-submit")
    assert error_of(page, "endpoint") == Translator("en")("err.endpoint_unknown")
    csrf = page.get_attribute("input[name=csrf]", "value")
    answer = page.request.post(f"/console/model-endpoints/{endpoint_id}/delete", form={"csrf": csrf or ""})
    assert answer.status == 403
    page.context.clear_cookies()

    # Another tenant's owner: our project and our endpoint are not found.
    sign_in(page, "boss@globex.test")
    assert page.goto(f"/console/projects/{project_id}/models").status == 404  # type: ignore[union-attr]
    page.goto("/console/model-endpoints")
    expect(page.locator(".endpoint-name")).to_have_text(["globex-llm"])
    csrf = page.get_attribute("input[name=csrf]", "value")
    answer = page.request.post(f"/console/model-endpoints/{endpoint_id}/delete", form={"csrf": csrf or ""})
    assert answer.status == 404
    # Without the form's CSRF token, nothing is deleted.
    answer = page.request.post(f"/console/model-endpoints/{theirs.json()['id']}/delete", form={"csrf": "stale"})
    assert answer.status == 403
    page.context.clear_cookies()
    assert len(people.owner.get("/model-endpoints").json()) == 1

    # The admin sees every organization's endpoints, with the organization; the project's page is not theirs.
    sign_in(page, people.admin_email)
    page.goto("/console/model-endpoints")
    expect(page.locator(".endpoint-name")).to_have_count(2)
    expect(page.locator("#org")).to_be_visible()
    expect(page.locator("#allow_private")).to_be_visible()
    assert page.goto(f"/console/projects/{project_id}/models").status == 403  # type: ignore[union-attr]
    page.context.clear_cookies()
    sign_in(page, people.annotator_email)
    assert page.goto("/console/model-endpoints").status in (403, 404)  # type: ignore[union-attr]
    assert page.goto(f"/console/projects/{project_id}/models").status in (403, 404)  # type: ignore[union-attr]
