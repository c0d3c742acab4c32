"""Every operation of the OpenAPI document, fuzzed against a real server (schemathesis).

Each operation gets a few generated requests, valid by its schema and not (derandomized, so a
run is repeatable), as an owner with a fresh token. No answer may be a server error, and every
error answers in the one shape ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from qistas.db.models import User
from qistas.domain import users
from tests.api.conftest import World, make_world

EXAMPLES = 8  # per operation and mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def fuzzed(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server of its own: the fuzzer deletes, revokes and deactivates what it finds."""
    with make_world(template, tmp_path_factory.mktemp("fuzz")) as world:
        pid = world.tenant.project()["id"]
        assert world.tenant.owner.post(f"/projects/{pid}/batches", json={"name": "b"}).status_code == 201
        world.tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}, "unique_id": f"u{i}"} for i in range(3)])
        yield world


def _existing(world: World) -> dict[str, Any]:
    """Ids of objects of the tenant, by the name of the path parameter that takes them."""
    owner = world.tenant.owner
    pid = owner.get("/projects").json()[0]["id"]
    task = owner.get(f"/projects/{pid}/tasks").json()["items"][0]
    batch = owner.get(f"/projects/{pid}/batches").json()["items"][0]
    with world.database.reader() as session:
        me = users.get_user_by_email(session, email="owner@acme.test", org_slug="acme").id
    return {"project_id": pid, "task_id": task["id"], "batch_id": batch["id"], "user_id": me,
            "action": "pause", "format": "jsonl"}


def _owner_token(world: World) -> str:
    """A new token for the tenant's owner, active again if the fuzzer deactivated them."""
    with world.database.writer.begin() as session:
        owner = users.get_user_by_email(session, email="owner@acme.test", org_slug="acme")
        assert isinstance(owner, User)
        if not owner.is_active:
            users.reactivate(session, user=owner)
        return users.create_token(session, user=owner)


def _problem(response: Any) -> str | None:
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return "an error that is not JSON"
    if not (isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], dict)
            and set(body["error"]) == {"code", "message", "details"}
            and isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)):
        return f"an error outside the one shape: {body!r:.200}"
    return None


def _fuzz(operation: Any, mode: GenerationMode, *, base_url: str, token: str, problems: list[str],
          path_parameters: dict[str, Any] | None = None) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        except requests.exceptions.InvalidHeader:
            return  # a header value the HTTP client itself refuses to send
        found = _problem(response)
        if found is not None:
            where = " on existing objects" if path_parameters else ""
            problems.append(f"{operation.label} ({mode.value}{where}): {found}\n    {case.as_curl_command()}")

    try:
        check()
    except Unsatisfiable:
        # Only for invalid requests: an operation without parameters or body has nothing to break.
        assert mode == GenerationMode.NEGATIVE, operation.label


def _operations_in(document: dict[str, Any]) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


def test_every_operation_answers_in_the_one_shape(fuzzed: World) -> None:
    schema = schemathesis.openapi.from_url(fuzzed.api + "/openapi.json")
    problems: list[str] = []
    operations = 0
    known = _existing(fuzzed)
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in MODES:
            _fuzz(operation, mode, base_url=fuzzed.url, token=_owner_token(fuzzed), problems=problems)
        # Random ids mostly miss: once more with the path naming objects that exist.
        names = re.findall(r"{(\w+)}", operation.path)
        if names and all(name in known for name in names):
            _fuzz(operation, GenerationMode.POSITIVE, base_url=fuzzed.url, token=_owner_token(fuzzed),
                  problems=problems, path_parameters={name: known[name] for name in names})
    assert operations == _operations_in(schema.raw_schema)  # the whole document was walked
    assert not problems, "\n".join(dict.fromkeys(problems))
