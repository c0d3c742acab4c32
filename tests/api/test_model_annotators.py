"""Models as annotators: a pre-label job with ``"as": "annotations"`` against a real
OpenAI-compatible server on loopback (tests/model_server.py), run by the server's own worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from qistas.db.models import Annotation, Assignment, Task, User, WorkerStats
from qistas.domain.model_endpoints import STANDING_EVERY
from tests.api.conftest import World, make_world
from tests.api.helpers import error_of, field_of, submit, take, take_if_any
from tests.api.test_model_endpoints import SPEC, register, wait_done
from tests.model_server import ModelServer, model_server

TEMPLATE = {"user": "Text: {text}"}
ADAPTIVE = {"min": 1, "max": 3, "target": 0.9}


@pytest.fixture(scope="module")
def models(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with make_world(template, tmp_path_factory.mktemp("annotators"), worker_poll_seconds=0.1,
                    model_retry_base_seconds=0.05, model_max_attempts=2) as found:
        yield found


@pytest.fixture(scope="module")
def llm() -> Iterator[ModelServer]:
    with model_server() as found:
        yield found


def answer_as_model(world: World, project_id: int, endpoint_id: int) -> dict[str, Any]:
    answer = world.tenant.owner.post(f"/projects/{project_id}/prelabel",
                                     json={"endpoint": endpoint_id, "template": TEMPLATE, "as": "annotations"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["as"] == "annotations"
    return wait_done(world, answer.json()["id"])


def by_text(world: World, project_id: int) -> dict[str, Task]:
    with world.database.reader() as session:
        return {t.data["text"]: t for t in session.scalars(select(Task).where(Task.project_id == project_id))}


def answer_everything(world: World, client: Any, project_id: int) -> list[int]:
    """Take and answer each task the annotator is served with its text's label; the task ids."""
    served = []
    while (lease := take_if_any(client, project_id)) is not None:
        served.append(lease["task"]["id"])
        text = lease["task"]["data"]["text"]
        submit(client, lease["id"], {"label": text.split()[1]})
    return served


def test_a_models_answers_count_as_a_workers_and_failures_keep_their_reason(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "judge", model="judge-model")
    project = models.tenant.project(SPEC, redundancy=ADAPTIVE, workforce="org")
    pid = project["id"]
    good, bad = ["ok positive", "ok negative"], ["html positive", "outside negative", "malformed mixed", "hang mixed"]
    models.tenant.add_tasks(pid, [{"data": {"text": t}} for t in [*good, *bad]]
                            + [{"data": {"text": "ok mixed"}, "gold": {"label": "mixed"}}])
    job = answer_as_model(models, pid, endpoint["id"])
    assert (job["done"], job["failed"], job["skipped"]) == (3, 4, 0), job
    tasks = by_text(models, pid)
    reasons = {f["task_id"]: f["reason"] for f in job["failures"]}
    assert "did not answer JSON" in reasons[tasks["html positive"].id]
    assert "the answer was refused" in reasons[tasks["outside negative"].id]
    assert "not JSON" in reasons[tasks["malformed mixed"].id]
    assert "no answer within 1 seconds" in reasons[tasks["hang mixed"].id]
    with models.database.reader() as session:
        model = session.scalars(select(User).where(User.endpoint_id == endpoint["id"])).one()
        assert (model.role, model.is_active, model.password_hash, model.org_id) == ("model", False, None,
                                                                                    endpoint["org_id"])
        stored = session.scalars(select(Annotation).where(Annotation.project_id == pid)).all()
        assert {(a.task_id, a.annotator_id, json.dumps(a.answer)) for a in stored} == {
            (tasks[t].id, model.id, json.dumps({"label": t.split()[1]})) for t in [*good, "ok mixed"]}
        leases = session.scalars(select(Assignment.status).where(Assignment.project_id == pid)).all()
        assert leases == ["model"] * 3
        stats = session.get(WorkerStats, (pid, model.id))
        assert stats is not None and (stats.n_annotations, stats.n_gold, stats.n_gold_correct) == (3, 1, 1)
    # No person's slot was taken and nothing completed on a model's answer alone.
    for task in by_text(models, pid).values():
        assert (task.status, task.n_annotations, task.n_claimed, task.required) == ("pending", 0, 0, 1), task.data

    # People are served every task as usual, the failed ones too.
    annotator = models.tenant.inhouse
    served = answer_everything(models, annotator, pid)
    assert sorted(served) == sorted(tasks[t].id for t in [*good, *bad])
    tasks = by_text(models, pid)
    # The model agreeing with one person reaches the target; a task the model failed on needs a second person.
    for text in good:
        assert (tasks[text].status, tasks[text].n_annotations) == ("completed", 1), text
        assert tasks[text].confidence is not None and tasks[text].confidence >= 0.9
    for text in bad:
        assert (tasks[text].status, tasks[text].required) == ("pending", 2), text

    # Owners see which answers came from the model; annotators never do.
    shown = models.tenant.owner.get(f"/tasks/{tasks['ok positive'].id}").json()
    sources = sorted((a["source"], a["model"]) for a in shown["annotations"])
    assert sources == [("human", None), ("model", "judge/judge-model")]
    exported = [json.loads(line) for line in models.tenant.owner.get(
        f"/projects/{pid}/export", params={"format": "jsonl", "completed": "true"}).text.splitlines()]
    record = next(r for r in exported if r["task_id"] == tasks["ok positive"].id)
    assert sorted(a["source"] for a in record["annotations"]) == ["human", "model"]
    assert [a["model"] for a in record["annotations"] if a["source"] == "model"] == ["judge/judge-model"]
    assert (record["provenance"]["annotators"], record["provenance"]["models"]) == (1, 1)
    report = models.tenant.owner.get(f"/projects/{pid}/quality").json()
    assert [m["model"] for m in report["models"]] == ["judge/judge-model"]
    assert report["models"][0]["gold_correct"] == 1
    assert len(report["annotators"]) == 1 and "model" not in report["annotators"][0]
    seen = annotator.get(f"/tasks/{tasks['ok positive'].id}")
    assert seen.status_code == 200 and seen.json() == {"id": tasks["ok positive"].id, "data": {"text": "ok positive"}}
    assert "judge" not in seen.text


def test_min_human_answers_zero_lets_a_confident_model_close_a_task(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "closer", model="closer-model")
    project = models.tenant.project(SPEC, redundancy={"min": 2, "max": 3, "target": 0.6}, workforce="org",
                                    model_annotators={"min_human_answers": 0})
    assert project["model_annotators"] == {"min_human_answers": 0}
    models.tenant.add_tasks(project["id"], [{"data": {"text": "ok positive"}}, {"data": {"text": "html negative"}}])
    answer_as_model(models, project["id"], endpoint["id"])
    tasks = by_text(models, project["id"])
    closed = tasks["ok positive"]
    assert (closed.status, closed.response, closed.n_annotations) == ("completed", {"label": "positive"}, 0)
    # The task the model failed on is served to people, at the project's own redundancy.
    assert (tasks["html negative"].status, tasks["html negative"].required) == ("pending", 2)
    lease = take(models.tenant.inhouse, project["id"])
    assert lease["task"]["id"] == tasks["html negative"].id


def test_a_fixed_overlap_still_asks_every_person(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "fixed", model="fixed-model")
    project = models.tenant.project(SPEC, redundancy={"min": 2, "max": 2}, model_annotators={"min_human_answers": 0})
    models.tenant.add_tasks(project["id"], [{"data": {"text": "ok positive"}}])
    answer_as_model(models, project["id"], endpoint["id"])
    task = by_text(models, project["id"])["ok positive"]
    assert (task.status, task.required) == ("pending", 2)
    for client in models.tenant.annotators[:2]:
        submit(client, take(client, project["id"])["id"], {"label": "positive"})
    assert by_text(models, project["id"])["ok positive"].status == "completed"


def test_a_second_job_skips_what_the_model_answered_and_closed_tasks(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "twice", model="twice-model")
    project = models.tenant.project(SPEC, redundancy=ADAPTIVE, workforce="org")
    models.tenant.add_tasks(project["id"], [{"data": {"text": "ok positive"}}, {"data": {"text": "ok mixed"}}])
    first = answer_as_model(models, project["id"], endpoint["id"])
    second = answer_as_model(models, project["id"], endpoint["id"])
    assert (first["done"], second["done"], second["skipped"]) == (2, 0, 2)
    with models.database.reader() as session:
        assert len(session.scalars(select(Annotation).where(Annotation.project_id == project["id"])).all()) == 2


def test_bad_settings_and_other_tenants_endpoints_are_refused(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "guarded", model="guarded-model")
    project = models.tenant.project(SPEC)
    owner = models.tenant.owner
    body = {"endpoint": endpoint["id"], "template": TEMPLATE}
    assert field_of(owner.post(f"/projects/{project['id']}/prelabel", json={**body, "as": "guesses"})) == "as"
    assert field_of(owner.post(f"/projects/{project['id']}/prelabel",
                               json={**body, "as": "annotations", "only_pending": False})) == "only_pending"
    for setting, field in (({"min_human_answers": -1}, "model_annotators.min_human_answers"),
                           ({"min_human_answers": True}, "model_annotators.min_human_answers"),
                           ({"endpoints": [1]}, "model_annotators.endpoints")):
        assert field_of(owner.patch(f"/projects/{project['id']}", json={"model_annotators": setting})) == field
        assert field_of(owner.post("/projects", json={"name": "x", "task": SPEC, "model_annotators": setting})) == field
    assert owner.patch(f"/projects/{project['id']}", json={"model_annotators": {"min_human_answers": 2}}).json()[
        "model_annotators"] == {"min_human_answers": 2}
    theirs = models.rival.project(SPEC)
    models.rival.add_tasks(theirs["id"], [{"data": {"text": "ok positive"}}])
    error_of(models.rival.owner.post(f"/projects/{theirs['id']}/prelabel", json={**body, "as": "annotations"}), 404)
    with models.database.reader() as session:
        assert session.scalars(select(Annotation).where(Annotation.project_id == theirs["id"])).all() == []


def _wait_for(world: World, job_id: int, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = world.tenant.owner.get(f"/prelabel-jobs/{job_id}").json()
        if job["status"] == status:
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_standing_job_answers_each_task_as_it_comes_until_stopped(models: World, llm: ModelServer) -> None:
    endpoint = register(models, llm, "standing", model="standing-model")
    pid = models.tenant.project(SPEC, redundancy=ADAPTIVE, workforce="org")["id"]
    models.tenant.add_tasks(pid, [{"data": {"text": "ok positive"}}])
    made = models.tenant.owner.post(f"/projects/{pid}/prelabel", json={
        "endpoint": endpoint["id"], "template": TEMPLATE, "as": "annotations", "standing": True})
    assert made.status_code == 202, made.text
    assert made.json()["standing"] is True
    job_id = made.json()["id"]
    first = _wait_for(models, job_id, "waiting")  # its pass is over; it waits for more
    assert (first["done"], first["tasks_total"]) == (1, None)
    models.tenant.add_tasks(pid, [{"data": {"text": "ok negative"}}, {"data": {"text": "html mixed"}}])
    deadline = time.monotonic() + 30
    while (job := models.tenant.owner.get(f"/prelabel-jobs/{job_id}").json())["done"] + job["failed"] < 3:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert (job["done"], job["failed"]) == (2, 1)  # the new tasks were answered, none twice
    with models.database.reader() as session:
        answered = session.scalars(select(Annotation.task_id).where(Annotation.project_id == pid)).all()
    assert len(answered) == len(set(answered)) == 2
    stopped = models.tenant.owner.post(f"/prelabel-jobs/{job_id}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert models.tenant.owner.post(f"/prelabel-jobs/{job_id}/stop").json()["status"] == "stopped"  # repeatable
    logged = models.tenant.owner.get("/audit", params={"action": "prelabel.stop"}).json()["items"]
    assert [e["object_id"] for e in logged] == [job_id]  # one stop, recorded once
    made_events = models.tenant.owner.get("/audit", params={"action": "prelabel.create"}).json()["items"]
    assert made_events[-1]["details"] == {"endpoint": endpoint["id"], "as": "annotations", "standing": True}
    models.tenant.add_tasks(pid, [{"data": {"text": "ok mixed"}}])
    time.sleep(STANDING_EVERY.total_seconds() + 1)  # longer than it would have waited
    after = models.tenant.owner.get(f"/prelabel-jobs/{job_id}").json()
    assert (after["status"], after["done"]) == ("stopped", 2)  # stopped: no more answers
    assert error_of(models.rival.owner.post(f"/prelabel-jobs/{job_id}/stop"), 404)
