"""Large imports checked and written by the server's import process (``qistas.import_process``):
the same answers as an import in the server's threads, from another process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from qistas.db.models import StagedTask, TaskImport
from tests.api.conftest import World, make_world
from tests.api.helpers import all_tasks, children_named, count_tasks, error_of
from tests.factories import Tenant

TASK_QUOTA = 200_000


@pytest.fixture(scope="module")
def world(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every body-sent import goes to the import process (the least size is 0)."""
    with make_world(template, tmp_path_factory.mktemp("import-processes"), import_process_min_bytes=0,
                    max_task_bytes_per_org=TASK_QUOTA) as found:
        yield found


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows).encode()


def _post(tenant: Tenant, project_id: int, body: bytes, content_type: str = "application/x-ndjson",
          ) -> httpx.Response:
    return tenant.owner.post(f"/projects/{project_id}/tasks", content=body, headers={"content-type": content_type})


def _nothing_left(world: World) -> None:
    with world.database.reader() as session:
        assert session.scalar(select(func.count()).select_from(TaskImport)) == 0
        assert session.scalar(select(func.count()).select_from(StagedTask)) == 0


def test_an_import_is_written_by_the_import_process(world: World) -> None:
    project_id = world.tenant.project()["id"]
    rows = [{"data": {"text": f"نص {n} · row {n}"}, "unique_id": f"u{n}", "metadata": {"n": n}} for n in range(300)]
    rows.append({"data": {"text": "again"}, "unique_id": "u7"})  # already in this import: a duplicate
    response = _post(world.tenant, project_id, _jsonl(rows))
    assert response.status_code == 201, response.text
    assert response.json() == {"created": 300, "duplicates": 1}
    assert children_named(os.getpid(), "qistas-import"), "no import process ran it"
    tasks = all_tasks(world.tenant.owner, project_id)
    assert [(t["unique_id"], t["data"]["text"], t["metadata"]) for t in tasks[:2]] == [
        ("u0", "نص 0 · row 0", {"n": 0}), ("u1", "نص 1 · row 1", {"n": 1})]
    assert len(tasks) == 300
    _nothing_left(world)
    # Sent again (a retry without an Idempotency-Key): every row is a duplicate.
    assert _post(world.tenant, project_id, _jsonl(rows)).json() == {"created": 0, "duplicates": 301}
    # CSV and a JSON list too.
    assert _post(world.tenant, project_id, b"text\nfrom csv\n", "text/csv").json() == {"created": 1, "duplicates": 0}
    assert _post(world.tenant, project_id, b'[{"data": {"text": "from json"}}]', "application/json").json() == \
        {"created": 1, "duplicates": 0}
    audit = world.tenant.owner.get("/audit", params={"action": "tasks.import"})
    assert audit.status_code == 200, audit.text
    assert {e["details"]["created"] for e in audit.json()["items"] if e["object_id"] == project_id} >= {300, 1}


def test_bad_rows_are_listed_and_nothing_is_written(world: World) -> None:
    project_id = world.tenant.project()["id"]
    rows: list[Any] = [{"data": {"text": "fine"}}, {"data": {"txt": "no text"}}, {"data": {"text": "fine"}},
                       {"data": {"text": "fine"}, "batch": "nowhere"}]
    error = error_of(_post(world.tenant, project_id, _jsonl(rows) + b"\n{not json"), 422)
    assert [r["row"] for r in error["details"]["rows"]] == [2, 4, 5]
    assert error["details"]["invalid"] == 3 and error["details"]["total"] == 5
    assert count_tasks(world.database, project_id) == 0
    _nothing_left(world)


def test_the_quota_and_the_senders_access_hold_in_the_import_process(world: World) -> None:
    project_id = world.tenant.project()["id"]
    big = [{"data": {"text": f"{n}".ljust(1000, "x")}} for n in range(TASK_QUOTA // 1000 + 10)]
    error = error_of(_post(world.tenant, project_id, _jsonl(big)), 413)
    assert error["code"] == "quota_exceeded"
    assert count_tasks(world.database, project_id) == 0
    _nothing_left(world)
    # Another tenant's project is not found, whatever process would have checked it.
    assert error_of(_post(world.rival, project_id, _jsonl(big[:1])), 404)["code"] == "not_found"
