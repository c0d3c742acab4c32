"""Values no database stores faithfully (U+0000, lone surrogates, NaN, infinities) are 422, never 500.

PostgreSQL refuses U+0000 in text and JSONB and refuses NaN / Infinity in JSONB; no database
can encode a lone surrogate. Python's json module accepts all of them, so every body that
reaches a column must be checked.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import World
from tests.api.helpers import count_annotations, count_tasks, error_of, take

BAD_VALUES = ['"nul \\u0000 here"', '"half \\ud800 pair"']
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity"]


def _post_raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_text_fields_of_every_create(world: World, bad: str) -> None:
    owner, pid = world.tenant.owner, world.tenant.project()["id"]
    me = owner.get("/me").json()["id"]
    cases = [
        (world.admin, "/orgs", '{"name": %s, "slug": "nul-org"}', "name"),
        (owner, "/projects", '{"name": %s, "task": {"type": "text"}}', "name"),
        (owner, "/projects", '{"name": "p", "instructions": %s, "task": {"type": "text"}}', "instructions"),
        (owner, "/projects", '{"name": "p", "task": {"type": "classification", "labels": [%s]}}', "task.labels.0"),
        (owner, "/projects", '{"name": "p", "task": {"type": "text"}, "gold": {"note": %s}}', "gold.note"),
        (owner, f"/projects/{pid}/batches", '{"name": %s}', "name"),
        (owner, f"/projects/{pid}/batches", '{"name": "b", "callback_url": %s}', "callback_url"),
        (owner, "/users", '{"email": %s, "role": "member"}', "email"),
        (owner, "/users", '{"email": "pw@acme.test", "role": "member", "password": %s}', "password"),
        (owner, f"/users/{me}/tokens", '{"name": %s}', "name"),
    ]
    for client, path, template, field in cases:
        response = _post_raw(client, path, template % bad)
        error = error_of(response, 422)
        assert error["details"]["field"] == field, (path, response.text)
    assert [p["name"] for p in owner.get("/projects").json()].count("p") == 0


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_non_finite_numbers_in_json_columns(world: World, number: str) -> None:
    tenant = world.tenant
    body = '{"name": "p", "task": {"type": "text"}, "gold": {"share": NUMBER}}'
    gold = _post_raw(tenant.owner, "/projects", body.replace("NUMBER", number))
    assert error_of(gold, 422)["details"]["field"] == "gold.share"

    pid = tenant.project(task={"type": "boxes", "labels": ["car"]})["id"]
    for row in ('{"data": {"image": "i.png", "score": %s}}', '{"data": {"image": "i.png"}, "metadata": {"s": %s}}'):
        response = tenant.owner.post(f"/projects/{pid}/tasks", content=(row % number).encode(),
                                     headers={"content-type": "application/x-ndjson"})
        assert error_of(response, 422)["details"]["rows"][0]["row"] == 1
    assert count_tasks(world.database, pid) == 0

    tenant.add_tasks(pid, [{"data": {"image": "i.png"}}])
    taken = take(tenant.annotators[0], pid)
    box = '{"answer": {"boxes": [{"x": 0, "y": 0, "w": NUMBER, "h": 1, "label": "car"}]}}'.replace("NUMBER", number)
    response = _post_raw(tenant.annotators[0], f"/assignments/{taken['id']}/submit", box)
    assert error_of(response, 422)["details"]["field"].startswith("answer.boxes.0")
    assert count_annotations(world.database, pid) == 0
