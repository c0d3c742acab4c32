"""Exams from the SDK, against a real server: the organization sets one up, an annotator sits it."""

from __future__ import annotations

import httpx
import pytest

from qistas.client import Client, Conflict, Invalid
from tests.conftest import LiveServer
from tests.factories import CLASSIFICATION, Tenant


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


def test_an_exam_is_set_up_and_sat(server: LiveServer, tenant: Tenant) -> None:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as owner, \
            Client(server.url, token_of(tenant.annotators[0]), backoff=0.01) as worker:
        project = owner.projects.create(name="sdk exam", task=CLASSIFICATION)
        with pytest.raises(Invalid) as refused:
            project.set_exam(pass_mark=50, questions=1)
        assert refused.value.details["field"] == "project"  # no gold tasks yet
        project.tasks.add([{"data": {"text": f"q{n}"}, "gold": {"label": "mixed"}} for n in range(2)])
        assert project.set_exam(pass_mark=50, questions=2, max_attempts=1)["gold_tasks"] == 2
        mine = worker.projects.get(project.id)
        first = mine.start_attempt()
        assert mine.start_attempt()["id"] == first["id"]
        for label in ("mixed", "positive"):
            lease = mine.take()
            assert lease is not None
            assert mine.submit(lease["id"], {"label": label})["feedback"] is None
        assert mine.take() is None
        (done,) = mine.attempts()
        assert (done["status"], done["score"], done["passed"]) == ("passed", 50.0, True)
        with pytest.raises(Conflict):
            mine.start_attempt()
        assert [a["annotator"] is not None for a in project.attempts()] == [True]
        assert project.exam()["questions"] == 2
