"""Active learning over real HTTP: the project setting (create, read, PATCH, refused naming the
field), the take served in the ranks a training pass wrote, its prediction shown as a pre-fill."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Task
from qistas.domain import active_learning
from tests.api.helpers import field_of, submit, take
from tests.factories import Tenant

SPEC = {"type": "classification", "labels": ["pos", "neg"], "text_field": "text"}
LABELED = [("good great lovely", "pos"), ("awful bad boring", "neg"), ("great good fun", "pos"),
           ("bad awful dull", "neg")]
PENDING = ["good great", "bad awful", "good bad great awful"]


@pytest.mark.parametrize(("setting", "field"), [
    ({"enabled": "yes"}, "active_learning.enabled"),
    ({"enabled": True, "random_share": 1.5}, "active_learning.random_share"),
    ({"enabled": True, "seed_labels": -1}, "active_learning.seed_labels"),
    ({"enabled": True, "order": "x"}, "active_learning.order"),
])
def test_the_setting_is_validated(tenant: Tenant, setting: dict[str, Any], field: str) -> None:
    assert field_of(tenant.owner.post("/projects", json={"name": "p", "task": SPEC,
                                                         "active_learning": setting})) == field
    pid = tenant.project(SPEC)["id"]
    assert field_of(tenant.owner.patch(f"/projects/{pid}", json={"active_learning": setting})) == field


def test_it_needs_single_label_text_classification(tenant: Tenant) -> None:
    rating = {"type": "rating", "min": 1, "max": 5, "prompt_field": "text"}
    response = tenant.owner.post("/projects", json={"name": "p", "task": rating,
                                                    "active_learning": {"enabled": True}})
    assert field_of(response) == "active_learning"
    on = tenant.project(SPEC, active_learning={"enabled": True})
    assert on["active_learning"] == {"enabled": True}
    # a new spec the setting no longer fits is refused while it is on
    assert field_of(tenant.owner.patch(f"/projects/{on['id']}", json={"task": rating})) == "active_learning"
    off = tenant.owner.patch(f"/projects/{on['id']}", json={"active_learning": {"enabled": False}})
    assert off.status_code == 200 and off.json()["active_learning"] == {"enabled": False}
    assert tenant.project(SPEC)["active_learning"] == {}


def test_the_take_follows_the_ranks_and_shows_the_models_prefill(tenant: Tenant, database: Database) -> None:
    pid = tenant.project(SPEC, active_learning={"enabled": True, "random_share": 0, "seed_labels": 0},
                         prefill={"mode": "always", "show_model": True})["id"]
    tenant.add_tasks(pid, [{"data": {"text": t}} for t, _ in LABELED] + [{"data": {"text": t}} for t in PENDING])
    first, second = tenant.annotators[:2]
    for text, label in LABELED:  # no pass yet: import order
        lease = take(first, pid)
        assert lease["task"]["data"]["text"] == text
        submit(first, lease["id"], {"label": label})
    assert active_learning.train(database, project_id=pid, every=len(LABELED)) == 1
    lease = take(second, pid)
    assert lease["task"]["data"]["text"] == "good bad great awful"  # the most uncertain first
    assert lease["prefill"]["model"] == "qistas-active-v1"
    with database.reader() as session:
        stored = session.scalar(select(Task.predictions).where(Task.id == lease["task"]["id"]))
    assert stored[0]["answer"] == lease["prefill"]["answer"]
    # the customer sees the prediction with the task, like an imported one
    shown = tenant.owner.get(f"/tasks/{lease['task']['id']}").json()["predictions"]
    assert [p["model"] for p in shown] == ["qistas-active-v1"]
