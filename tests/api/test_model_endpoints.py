"""Model endpoints and pre-label jobs, against a real OpenAI-compatible server on loopback
(tests/model_server.py) and the server's own background worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from qistas.db.models import ModelEndpoint, Task
from tests.api.conftest import World, make_world
from tests.api.helpers import error_of, field_of, take
from tests.model_server import ModelServer, model_server

KEY = "sk-test-secret-4f1c"
TEMPLATE = {"system": "Answer with JSON: {{\"label\": ...}}.", "user": "Text: {text}"}
SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}


@pytest.fixture(scope="module")
def models(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server whose worker polls often and retries soon: two requests per task at most."""
    with make_world(template, tmp_path_factory.mktemp("models"), worker_poll_seconds=0.1,
                    model_retry_base_seconds=0.05, model_max_attempts=2) as found:
        yield found


@pytest.fixture(scope="module")
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


def register(world: World, llm: ModelServer, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "base_url": llm.base_url, "model": "qwen-test", "api_key": KEY, "allow_private": True,
            "org": "acme", "timeout_seconds": 1.0, **fields}
    answer = world.admin.post("/model-endpoints", json=body)
    assert answer.status_code == 201, answer.text
    assert KEY not in answer.text
    return answer.json()  # type: ignore[no-any-return]


def wait_done(world: World, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = world.tenant.owner.get(f"/prelabel-jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"the job did not finish: {job}")


def tasks_of(world: World, project_id: int) -> dict[str, Task]:
    with world.database.reader() as session:
        found = session.scalars(select(Task).where(Task.project_id == project_id)).all()
        return {t.data.get("text", t.data.get("body", str(t.id))): t for t in found}


def test_answers_become_predictions_and_every_failure_has_its_reason(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "local-vllm", price_input_per_1k=0.5, price_output_per_1k=1.0)
    project = models.tenant.project(SPEC, prefill={"mode": "always"})
    good = ["ok positive", "ok negative", "slow mixed", "flaky positive", "limited negative"]
    bad = {"html positive": "did not answer JSON (text/html)", "outside positive": "the answer was refused",
           "malformed positive": "the answer is not JSON", "hang positive": "no answer within 1 seconds"}
    models.tenant.add_tasks(project["id"], [{"data": {"text": text}} for text in [*good, *bad]])
    answer = models.tenant.owner.post(f"/projects/{project['id']}/prelabel",
                                      json={"endpoint": endpoint["id"], "template": TEMPLATE})
    assert answer.status_code == 202, answer.text
    job = wait_done(models, answer.json()["id"])

    assert job["status"] == "done", job
    assert (job["tasks_total"], job["done"], job["failed"], job["skipped"]) == (9, 5, 4, 0)
    reasons = {f["task_id"]: f["reason"] for f in job["failures"]}
    tasks = tasks_of(models, project["id"])
    for text, reason in bad.items():
        assert reason in reasons[tasks[text].id], (text, reasons)
        assert tasks[text].predictions is None and tasks[text].status == "pending"
    assert "after 2 requests" in reasons[tasks["hang positive"].id]
    for text in good:
        assert tasks[text].predictions == [{"model": "local-vllm/qwen-test", "answer": {"label": text.split()[1]},
                                            "score": 0.9}]
        assert tasks[text].data == {"text": text} and tasks[text].status == "pending"
    # Requests: one each, two for the 500, the 429 and the hang; usage from the 7 answers that had one.
    assert job["requests"] == 12 == len([a for a in llm.received if a.body["model"] == "qwen-test"])
    assert (job["input_tokens"], job["output_tokens"]) == (70, 35)
    assert job["cost"] == pytest.approx(7 * 10 / 1000 * 0.5 + 7 * 5 / 1000 * 1.0)
    limited = llm.asked("limited")
    assert len(limited) == 2 and limited[1].at - limited[0].at >= 0.9  # Retry-After: 1 was honoured
    asked = [a for a in llm.received if a.body["model"] == "qwen-test"]
    assert {a.headers["authorization"] for a in asked} == {f"Bearer {KEY}"}
    assert asked[0].body["response_format"] == {"type": "json_object"}
    users = sorted(a.body["messages"][1]["content"] for a in llm.asked("ok"))
    assert users == ["Text: ok negative", "Text: ok positive"]
    assert asked[0].body["messages"][0] == {"role": "system", "content": 'Answer with JSON: {"label": ...}.'}
    usage = models.tenant.owner.get(f"/projects/{project['id']}/prelabel-jobs").json()
    assert usage["usage"]["input_tokens"] == 70 and usage["items"][0]["id"] == job["id"]
    # The tasks are served to people as usual, a stored prediction as the pre-fill.
    lease = take(models.tenant.annotators[0], project["id"])
    assert lease["task"]["id"] in {t.id for t in tasks.values()}
    for path in ("/model-endpoints", f"/model-endpoints/{endpoint['id']}", f"/prelabel-jobs/{job['id']}"):
        shown = models.tenant.owner.get(path)
        assert shown.status_code == 200 and KEY not in shown.text
    with models.database.reader() as session:
        stored = session.get(ModelEndpoint, endpoint["id"])
        assert stored is not None and stored.api_key_sealed and KEY not in stored.api_key_sealed


def test_a_second_job_skips_tasks_that_carry_the_prediction(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "again", max_concurrency=3, model="again-model")
    project = models.tenant.project(SPEC)
    models.tenant.add_tasks(project["id"], [{"data": {"text": f"slow positive-{i}"}} for i in range(6)])
    body = {"endpoint": endpoint["id"], "template": {"user": "Text: {text}"}}
    first = wait_done(models, models.tenant.owner.post(f"/projects/{project['id']}/prelabel", json=body).json()["id"])
    assert first["failed"] == 6  # positive-0 is not a label: every answer is refused
    assert all("the answer was refused" in f["reason"] for f in first["failures"])
    assert llm.peak["again-model"] == 3
    project2 = models.tenant.project(SPEC)
    models.tenant.add_tasks(project2["id"], [{"data": {"text": "ok mixed"}}, {"data": {"text": "slow negative"}}])
    body["only_pending"] = False
    one = wait_done(models, models.tenant.owner.post(f"/projects/{project2['id']}/prelabel", json=body).json()["id"])
    two = wait_done(models, models.tenant.owner.post(f"/projects/{project2['id']}/prelabel", json=body).json()["id"])
    assert (one["done"], one["skipped"], two["done"], two["skipped"]) == (2, 0, 0, 2)


def test_concurrency_stays_within_the_endpoint_limit(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "narrow", max_concurrency=2, model="narrow-model")
    project = models.tenant.project(SPEC)
    rows = [{"data": {"text": "slow " + label}, "unique_id": f"u{i}"}
            for i, label in enumerate(["positive", "negative", "mixed"] * 3)]
    models.tenant.add_tasks(project["id"], rows)
    job = wait_done(models, models.tenant.owner.post(
        f"/projects/{project['id']}/prelabel", json={"endpoint": endpoint["id"], "template": {"user": "Text: {text}"}},
    ).json()["id"])
    assert job["done"] == 9
    assert llm.peak["narrow-model"] == 2


def test_a_missing_field_fails_that_task_only(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "free-form")
    project = models.tenant.project({"type": "classification", "labels": ["positive", "negative"]})
    models.tenant.add_tasks(project["id"], [{"data": {"body": "ok positive"}}, {"data": {"other": 1}}])
    job = wait_done(models, models.tenant.owner.post(
        f"/projects/{project['id']}/prelabel", json={"endpoint": endpoint["id"], "template": {"user": "T: {body}"}},
    ).json()["id"])
    assert (job["done"], job["failed"]) == (1, 1)
    assert job["failures"][0]["reason"] == "the task's data has no field 'body'"


@pytest.mark.parametrize(("prompt", "field"), [
    ({"user": "Text: {title}"}, "template.user"),
    ({"system": "{text.upper}", "user": "{text}"}, "template.system"),
    ({"user": "{text!r}"}, "template.user"),
    ({"user": "{"}, "template.user"),
    ({"user": "{text}", "assistant": "x"}, "template.assistant"),
    ({"system": "only"}, "template.user"),
])
def test_a_template_is_checked_against_the_spec(models: World, llm: ModelServer, prompt: dict[str, str],
                                                field: str) -> None:
    endpoint = register(models, llm, f"check-{field}")
    project = models.tenant.project(SPEC)
    answer = models.tenant.owner.post(f"/projects/{project['id']}/prelabel",
                                      json={"endpoint": endpoint["id"], "template": prompt})
    assert field_of(answer) == field


def test_private_hosts_need_an_admin(models: World, llm: ModelServer) -> None:
    owner = models.tenant.owner
    body = {"name": "mine", "base_url": llm.base_url, "model": "m", "api_key": KEY}
    assert field_of(owner.post("/model-endpoints", json=body)) == "base_url"
    assert field_of(owner.post("/model-endpoints", json={**body, "base_url": "http://10.0.0.7:8000/v1"})) == "base_url"
    error_of(owner.post("/model-endpoints", json={**body, "allow_private": True}), 403)
    error_of(models.tenant.member.post("/model-endpoints", json={**body, "base_url": "http://8.8.8.8/v1"}), 403)
    assert field_of(models.admin.post("/model-endpoints", json={**body, "allow_private": True})) == "org"
    assert owner.get("/model-endpoints").status_code == 200


def test_endpoints_and_jobs_are_scoped_to_their_organization(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "tenant-a")
    project = models.tenant.project(SPEC)
    models.tenant.add_tasks(project["id"], [{"data": {"text": "ok positive"}}])
    job = models.tenant.owner.post(f"/projects/{project['id']}/prelabel",
                                   json={"endpoint": endpoint["id"], "template": {"user": "{text}"}}).json()
    rival = models.rival.owner
    error_of(rival.get(f"/model-endpoints/{endpoint['id']}"), 404)
    error_of(rival.delete(f"/model-endpoints/{endpoint['id']}"), 404)
    error_of(rival.get(f"/prelabel-jobs/{job['id']}"), 404)
    assert endpoint["id"] not in [e["id"] for e in rival.get("/model-endpoints").json()]
    theirs = models.rival.project(SPEC)
    error_of(rival.post(f"/projects/{theirs['id']}/prelabel",
                        json={"endpoint": endpoint["id"], "template": {"user": "{text}"}}), 404)
    error_of(rival.post("/model-endpoints", json={"name": "x", "base_url": "http://8.8.8.8/v1", "model": "m",
                                                  "org": "acme"}), 404)
    error_of(models.tenant.member.get(f"/model-endpoints/{endpoint['id']}"), 403)
    wait_done(models, job["id"])
    assert models.tenant.owner.delete(f"/model-endpoints/{endpoint['id']}").status_code == 204
    error_of(models.tenant.owner.get(f"/model-endpoints/{endpoint['id']}"), 404)
    assert models.tenant.owner.get(f"/prelabel-jobs/{job['id']}").json()["status"] == "done"
