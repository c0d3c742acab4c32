"""docs/task-types.md's worked example: a new type is one module, and it works end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import qistas.domain.tasktypes as registry
from tests.api.conftest import World
from tests.api.helpers import error_of, take

DOC = Path(__file__).resolve().parents[2] / "docs" / "task-types.md"


@pytest.fixture
def count_type(tmp_path: Path) -> Iterator[None]:
    """The example module, saved beside the package's own types, as the docs say to."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None, "the worked example's module is missing from docs/task-types.md"
    (tmp_path / "count.py").write_text(code.group(1))
    registry.__path__.append(str(tmp_path))
    registry._registry.cache_clear()
    registry._spec_adapter.cache_clear()
    try:
        yield
    finally:
        registry.__path__.remove(str(tmp_path))
        registry._registry.cache_clear()
        registry._spec_adapter.cache_clear()


def test_the_documented_type_works_through_the_api(world: World, count_type: None) -> None:
    assert "count" in registry.type_names()
    tenant = world.tenant
    made = tenant.owner.post("/projects", json={"name": "cars", "task": {"type": "count"},
                                                "redundancy": {"min": 2, "max": 2}})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    refused_task = error_of(tenant.owner.post(f"/projects/{pid}/tasks", json=[{"data": {"text": "x"}}]), 422)
    assert refused_task["details"]["rows"] == [{"row": 1, "message": "data.prompt is missing"}]
    tenant.add_tasks(pid, [{"unique_id": "p1", "data": {"prompt": "cars in street.jpg"}}])
    first = take(tenant.annotators[0], pid)
    refused = tenant.annotators[0].post(f"/assignments/{first['id']}/submit", json={"answer": {"count": -1}})
    assert error_of(refused, 422)["details"]["field"] == "answer.count"
    for worker, held in ((tenant.annotators[0], first), (tenant.annotators[1], take(tenant.annotators[1], pid))):
        done = worker.post(f"/assignments/{held['id']}/submit", json={"answer": {"count": 3}})
        assert done.status_code == 201, done.text
    result = tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert [(r["response"], r["confidence"], r["method"]) for r in result] == [({"count": 3}, 1.0, "exact_match_vote")]
    lines = tenant.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text.splitlines()
    assert json.loads(lines[0])["response"] == {"count": 3}
