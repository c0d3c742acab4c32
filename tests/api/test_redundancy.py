"""Redundancy: min and max honoured exactly, one more answer while below target."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import World
from tests.api.helpers import annotate, count_annotations, field_of, nothing_left, stats

POS, NEG = {"label": "positive"}, {"label": "negative"}
# Text answers are decided by a reliability-weighted word vote; with annotators the model
# knows nothing of, one-word answers give: yes/no 0.44, yes/no/yes 0.76, yes/no/yes/yes 0.93.
TEXT = {"type": "text"}
YES, NO = {"text": "yes"}, {"text": "no"}


def _workers(world: World) -> list[httpx.Client]:
    return [*world.tenant.annotators, world.tenant.inhouse]


def _task(world: World, pid: int) -> dict[str, Any]:
    items = world.tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]
    assert len(items) == 1
    return items[0]  # type: ignore[no-any-return]


def _project(world: World, task: dict[str, Any] | None = None, **redundancy: Any) -> int:
    pid = int(world.tenant.project(task=task, redundancy=redundancy)["id"])
    world.tenant.add_tasks(pid, [{"data": {"text": "x", "prompt": "x"}}])
    return pid


@pytest.mark.parametrize("n", [1, 2, 3])
def test_fixed_overlap_is_exact(world: World, n: int) -> None:
    pid = _project(world, min=n, max=n)
    workers = _workers(world)
    for i in range(n):
        assert _task(world, pid)["status"] == "pending"
        annotate(workers[i], pid, POS if i % 2 else NEG)
    task = _task(world, pid)
    assert task["status"] == "completed" and task["n_annotations"] == n and task["required"] == n
    assert all(nothing_left(w, pid) for w in workers[n:])
    assert count_annotations(world.database, pid) == n


def test_agreement_completes_at_min(world: World) -> None:
    pid = _project(world, min=2, max=4, target=0.7)
    a, b, c, d = _workers(world)
    annotate(a, pid, POS)
    annotate(b, pid, POS)
    task = _task(world, pid)
    assert (task["status"], task["n_annotations"], task["below_target"]) == ("completed", 2, False)
    assert 0.7 <= task["confidence"] <= 1.0
    assert nothing_left(c, pid)


def test_disagreement_asks_for_one_more_until_target(world: World) -> None:
    pid = _project(world, TEXT, min=2, max=4, target=0.9)
    a, b, c, d = _workers(world)
    annotate(a, pid, YES)
    annotate(b, pid, NO)
    assert (_task(world, pid)["status"], _task(world, pid)["required"]) == ("pending", 3)
    annotate(c, pid, YES)  # 0.76 < 0.9
    assert (_task(world, pid)["status"], _task(world, pid)["required"]) == ("pending", 4)
    annotate(d, pid, YES)  # 0.93 >= 0.9
    task = _task(world, pid)
    assert task["status"] == "completed" and task["response"] == YES
    assert task["confidence"] == pytest.approx(0.9275, abs=1e-3)
    assert task["below_target"] is False
    assert stats(world.tenant.owner, pid)["below_target"] == 0


def test_at_max_below_target_is_flagged(world: World) -> None:
    pid = _project(world, TEXT, min=2, max=3, target=0.9)
    a, b, c, d = _workers(world)
    annotate(a, pid, YES)
    annotate(b, pid, NO)
    annotate(c, pid, NO)
    task = _task(world, pid)
    assert task["status"] == "completed" and task["n_annotations"] == 3
    assert task["response"] == NO and task["below_target"] is True
    assert task["confidence"] == pytest.approx(0.7619, abs=1e-3) and task["needs_review"] is True
    assert nothing_left(d, pid)
    assert stats(world.tenant.owner, pid)["below_target"] == 1
    results = world.tenant.owner.get(f"/projects/{pid}/results").json()["items"]
    assert results[0]["response"] == NO


def test_without_target_a_range_asks_until_answers_agree(world: World) -> None:
    pid = _project(world, min=2, max=3)
    a, b, c, d = _workers(world)
    annotate(a, pid, POS)
    annotate(b, pid, NEG)
    assert _task(world, pid)["required"] == 3
    annotate(c, pid, POS)
    task = _task(world, pid)
    assert task["status"] == "completed" and task["response"] == POS and task["below_target"] is True


@pytest.mark.parametrize(("redundancy", "named"), [
    ({"min": 0}, "redundancy.min"), ({"min": 101}, "redundancy.min"), ({"min": 3, "max": 2}, "redundancy.max"),
    ({"min": 1, "max": 2, "target": 0}, "redundancy.target"), ({"target": 1.5}, "redundancy.target"),
    ({"min": "two"}, "redundancy.min"), ({"min": 1, "spare": 1}, "redundancy.spare"),
])
def test_bad_redundancy_is_refused(world: World, redundancy: dict[str, Any], named: str) -> None:
    response = world.tenant.owner.post("/projects", json={"name": "r", "task": {"type": "text"},
                                                          "redundancy": redundancy})
    assert field_of(response) == named


def test_project_read_shows_the_policy(world: World) -> None:
    project = world.tenant.project(redundancy={"min": 2, "max": 5, "target": 0.8}, priority=3,
                                   pay={"currency": "USD", "per_task": 5}, gold={"share": 0.1})
    assert project["redundancy"] == {"min": 2, "max": 5, "target": 0.8}
    assert (project["priority"], project["pay"], project["gold"], project["org"]) == (
        3, {"currency": "USD", "per_task": 5}, {"share": 0.1}, "acme")
    assert world.tenant.project(redundancy={"min": 2})["redundancy"] == {"min": 2, "max": 2, "target": None}
    assert field_of(world.tenant.owner.post("/projects", json={"name": "w", "task": {"type": "text"},
                                                               "workforce": "crowd"})) == "workforce"


@pytest.mark.parametrize("priority", [2**31, -(2**31) - 1, 2**70])
def test_priority_beyond_the_column_is_422(world: World, priority: int) -> None:
    response = world.tenant.owner.post("/projects", json={"name": "p", "task": {"type": "text"},
                                                          "priority": priority})
    assert field_of(response) == "priority"
    assert world.tenant.project(priority=2**31 - 1)["priority"] == 2**31 - 1
