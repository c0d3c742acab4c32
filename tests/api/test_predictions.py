"""Models' predictions over real HTTP: imported with tasks, shown to annotators as a pre-fill
by the project's setting, anchoring measured per model version, invisible to other tenants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from qistas.db.engine import Database
from qistas.db.models import Task
from tests.api.helpers import error_of, field_of, take
from tests.factories import Tenant


def _row(i: int, *predictions: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"text": f"t {i}"}, "unique_id": f"t{i}", "predictions": list(predictions)}


def _pred(label: str, model: str = "sent-v1", score: float | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"model": model, "answer": {"label": label}}
    if score is not None:
        made["score"] = score
    return made


def _tasks(database: Database) -> int:
    with database.writer.begin() as session:
        return int(session.scalar(select(func.count()).select_from(Task)) or 0)


def test_import_keeps_predictions_normalised_and_shows_them_to_the_customer(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [_row(0, _pred("positive", score=0.9), _pred("negative", model="sent-v2")),
                           {"data": {"text": "none"}}])
    items = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]
    assert items[0]["predictions"] == [{"model": "sent-v1", "answer": {"label": "positive"}, "score": 0.9},
                                       {"model": "sent-v2", "answer": {"label": "negative"}, "score": None}]
    assert items[1]["predictions"] is None
    assert tenant.owner.get(f"/tasks/{items[0]['id']}").json()["predictions"][0]["model"] == "sent-v1"
    exported = tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"})
    assert exported.status_code == 200, exported.text
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines[0]["predictions"] == items[0]["predictions"] and lines[1]["predictions"] is None


@pytest.mark.parametrize(("prediction", "fragment"), [
    ({"model": "m", "answer": {"label": "bogus"}}, "predictions[0].answer"),
    ({"model": "", "answer": {"label": "positive"}}, "predictions[0].model"),
    ({"model": "m" * 201, "answer": {"label": "positive"}}, "predictions[0].model"),
    ({"model": "m", "answer": {"label": "positive"}, "score": 1.5}, "predictions[0].score"),
    ({"model": "m", "answer": {"label": "positive"}, "why": 1}, "predictions[0].why"),
    ({"model": "m"}, "predictions[0].answer"),
])
def test_a_bad_prediction_refuses_the_import_naming_the_row(
        tenant: Tenant, database: Database, prediction: dict[str, Any], fragment: str) -> None:
    pid = tenant.project()["id"]
    before = _tasks(database)
    response = tenant.owner.post(f"/projects/{pid}/tasks", json=[_row(0, _pred("positive")), _row(1, prediction)])
    error = error_of(response, 422)
    assert error["details"]["rows"][0]["row"] == 2
    assert fragment in error["details"]["rows"][0]["message"], error
    assert _tasks(database) == before  # nothing written


def test_too_many_predictions_are_refused(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    response = tenant.owner.post(f"/projects/{pid}/tasks", json=[_row(0, *[_pred("positive")] * 21)])
    assert "at most 20" in error_of(response, 422)["details"]["rows"][0]["message"]


def test_jsonl_and_csv_imports_carry_predictions(tenant: Tenant) -> None:
    pid = tenant.project()["id"]
    csv = 'text,unique_id,predictions\nhello,c1,"[{""model"": ""m"", ""answer"": {""label"": ""mixed""}}]"\n'
    response = tenant.owner.post(f"/projects/{pid}/tasks", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    task = tenant.owner.get(f"/projects/{pid}/tasks", params={"unique_id": "c1"}).json()["items"][0]
    assert task["predictions"] == [{"model": "m", "answer": {"label": "mixed"}, "score": None}]


@pytest.mark.parametrize(("prefill", "field"), [
    ({"mode": "sometimes"}, "prefill.mode"),
    ({"mode": "above", "min_score": 2}, "prefill.min_score"),
    ({"mode": "always", "show_model": "yes"}, "prefill.show_model"),
    ({"colour": 1}, "prefill.colour"),
])
def test_the_prefill_setting_is_validated(tenant: Tenant, prefill: dict[str, Any], field: str) -> None:
    response = tenant.owner.post("/projects", json={"name": "p", "task": {"type": "classification",
                                 "labels": ["a", "b"], "text_field": "text"}, "prefill": prefill})
    assert field_of(response) == field
    pid = tenant.project()["id"]
    assert field_of(tenant.owner.patch(f"/projects/{pid}", json={"prefill": prefill})) == field


def test_modes_decide_what_the_take_shows(tenant: Tenant) -> None:
    project = tenant.project()
    pid = project["id"]
    assert project["prefill"] == {}
    tenant.add_tasks(pid, [_row(0, _pred("positive", score=0.4), _pred("negative", model="sent-v2", score=0.8))])
    worker = tenant.annotators[0]
    assert take(worker, pid).get("prefill") is None  # the default: never
    # The same lease comes back on the next take, read again under the new setting.
    patched = tenant.owner.patch(f"/projects/{pid}", json={"prefill": {"mode": "always"}})
    assert patched.json()["prefill"] == {"mode": "always"}
    assert take(worker, pid)["prefill"] == {"answer": {"label": "negative"}, "model": None}  # best score, no name
    tenant.owner.patch(f"/projects/{pid}", json={"prefill": {"mode": "above", "min_score": 0.9}})
    assert take(worker, pid).get("prefill") is None
    tenant.owner.patch(f"/projects/{pid}", json={"prefill": {"mode": "above", "min_score": 0.3, "show_model": True}})
    lease = take(worker, pid)
    assert lease["prefill"] == {"answer": {"label": "negative"}, "model": "sent-v2"}
    renewed = worker.post(f"/assignments/{lease['id']}/renew")
    assert renewed.json()["prefill"] == lease["prefill"]
    # An annotator reading the task learns nothing of the predictions.
    assert "predictions" not in worker.get(f"/tasks/{lease['task']['id']}").json()


def test_unscored_predictions_are_shown_always_but_never_above_a_score(tenant: Tenant) -> None:
    pid = tenant.project(prefill={"mode": "above", "min_score": 0})["id"]
    tenant.add_tasks(pid, [_row(0, _pred("mixed"))])
    assert take(tenant.annotators[0], pid).get("prefill") is None
    tenant.owner.patch(f"/projects/{pid}", json={"prefill": {"mode": "always"}})
    assert take(tenant.annotators[0], pid)["prefill"]["answer"] == {"label": "mixed"}


def test_report_measures_agreement_per_label_and_anchoring_per_model(tenant: Tenant) -> None:
    pid = tenant.project(prefill={"mode": "always"}, redundancy={"min": 1})["id"]
    tenant.add_tasks(pid, [
        _row(0, _pred("positive", score=0.9), _pred("negative", model="sent-v2", score=0.1)),
        _row(1, _pred("negative", score=0.9), _pred("negative", model="sent-v2", score=0.1)),
        _row(2, _pred("mixed", score=0.9)),
        {"data": {"text": "no prediction"}, "unique_id": "plain"},
    ])
    worker = tenant.annotators[0]
    answers = {"t 0": "positive", "t 1": "positive", "t 2": "mixed", "no prediction": "negative"}
    for _ in range(4):
        lease = take(worker, pid)
        assert (lease.get("prefill") is None) == (lease["task"]["data"]["text"] == "no prediction")
        label = answers[lease["task"]["data"]["text"]]
        response = worker.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": label}})
        assert response.status_code == 201, response.text
    report = tenant.owner.get(f"/projects/{pid}/quality").json()["predictions"]
    v1, v2 = report
    assert v1["model"] == "sent-v1" and v2["model"] == "sent-v2"
    assert (v1["tasks"], v1["compared"], v1["agreement"]) == (3, 3, round(2 / 3, 4))
    # sent-v1 scored higher everywhere: it was the pre-fill of all three, kept on two.
    assert (v1["prefilled"], v1["kept"], v1["kept_share"]) == (3, 2, round(2 / 3, 4))
    assert (v2["tasks"], v2["agreement"], v2["prefilled"], v2["kept_share"]) == (2, 0.0, 0, None)
    per_label = {item["label"]: item for item in v1["labels"]}
    assert per_label["positive"] == {"label": "positive", "compared": 2, "agreement": 0.5}
    assert per_label["mixed"] == {"label": "mixed", "compared": 1, "agreement": 1.0}
    assert per_label["negative"]["compared"] == 0


def test_another_tenants_task_and_its_predictions_are_not_found(tenant: Tenant, rival: Tenant) -> None:
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [_row(0, _pred("positive"))])
    task_id = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"][0]["id"]
    error_of(rival.owner.get(f"/tasks/{task_id}"), 404)
    error_of(rival.owner.get(f"/projects/{pid}/quality"), 404)
    error_of(rival.owner.patch(f"/projects/{pid}", json={"prefill": {"mode": "always"}}), 404)


def test_the_take_has_a_prefill_key_only_when_it_shows_one(tenant: Tenant) -> None:
    pid = tenant.project(prefill={"mode": "always"})["id"]
    tenant.add_tasks(pid, [_row(0, _pred("positive")), {"data": {"text": "plain"}}])
    first = take(tenant.annotators[0], pid)
    assert set(first) == {"id", "project_id", "task", "expires_at", "prefill"}
    # The task without a prediction: the take as it always was.
    assert set(take(tenant.annotators[1], pid)) == {"id", "project_id", "task", "expires_at"}
