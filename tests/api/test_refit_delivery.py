"""A refit that changes results re-delivers them as result.changed events."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from qistas.config import Settings
from qistas.db.models import Delivery
from tests.api.helpers import answer_label, take_if_any
from tests.factories import Tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The events are checked in the outbox: no dispatcher, so nothing is ever sent anywhere.
    return settings.model_copy(update={"background_workers": False})


def test_a_refit_that_changes_a_result_announces_it(tenant: Tenant, database: Any) -> None:
    """Two annotators who always say "positive" outvote an honest one until a refit, with gold
    tasks to learn from, shows who is right; the changed results go out as result.changed."""
    project = tenant.project(redundancy={"min": 3, "max": 3}, gold={"share": 0.5})
    pid = project["id"]
    hook = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": "https://93.184.215.14/hook",
                                                                "events": ["result.changed"]})
    assert hook.status_code == 201, hook.text
    truth = {f"t{i}": ("negative" if i % 2 else "mixed") for i in range(6)}
    truth.update({f"g{i}": ("negative" if i % 2 else "mixed") for i in range(6)})
    regular = [{"data": {"text": key}, "unique_id": key} for key in truth if key.startswith("t")]
    golds = [{"data": {"text": key}, "gold": {"label": label}} for key, label in truth.items() if key.startswith("g")]

    def work_through(expected: int) -> None:
        for n, worker in enumerate(tenant.annotators):
            done = 0
            for _ in range(200):  # gold is drawn at random: a draw may find nothing to serve
                lease = take_if_any(worker, pid)
                if lease is None:
                    continue
                text = lease["task"]["data"]["text"]
                assert answer_label(worker, lease, truth[text] if n == 2 else "positive").status_code == 201
                done += 1
                if done == expected:
                    break
            assert done == expected

    tenant.add_tasks(pid, regular)
    work_through(len(regular))  # no gold yet: the two "positive" annotators carry every vote
    tenant.add_tasks(pid, golds)
    work_through(len(golds))
    before = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert {r["response"]["label"] for r in before} == {"positive"}
    refit = tenant.owner.post(f"/projects/{pid}/quality/refit").json()
    assert refit["changed"] == 6
    after = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert all(r["response"]["label"] == truth[r["unique_id"]] for r in after)
    with database.reader() as session:
        events = session.scalars(select(Delivery.event).where(Delivery.project_id == pid)).all()
    assert events.count("result.changed") == 6
