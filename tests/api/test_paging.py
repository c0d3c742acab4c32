"""Keyset pages: capped sizes, every row exactly once, filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import World
from tests.api.helpers import all_tasks, annotate, field_of

N_TASKS = 13


@pytest.fixture(scope="module")
def paged(tight: World) -> dict[str, Any]:
    """A project of 13 tasks on a server whose pages hold 3 by default and 5 at most; 4 completed."""
    tenant = tight.tenant
    pid = tenant.project(name="paged")["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}, "unique_id": f"u{i:02d}"} for i in range(N_TASKS)])
    for worker in (*tenant.annotators, tenant.inhouse):
        annotate(worker, pid, {"label": "positive"})
    ids = [t["id"] for t in tenant.owner.get(f"/projects/{pid}/tasks", params={"limit": 5}).json()["items"]]
    return {"pid": pid, "first_ids": ids}


def test_default_and_capped_page_sizes(tight: World, paged: dict[str, Any]) -> None:
    owner, pid = tight.tenant.owner, paged["pid"]
    default = owner.get(f"/projects/{pid}/tasks").json()
    assert len(default["items"]) == tight.settings.default_page_size == 3
    assert default["next"] == default["items"][-1]["id"]
    capped = owner.get(f"/projects/{pid}/tasks", params={"limit": 10_000}).json()
    assert len(capped["items"]) == tight.settings.max_page_size == 5
    results = owner.get(f"/projects/{pid}/results", params={"limit": 10_000}).json()
    assert len(results["items"]) == 4 and results["next"] is None


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 50])
def test_after_walks_every_task_exactly_once(tight: World, paged: dict[str, Any], limit: int) -> None:
    owner, pid = tight.tenant.owner, paged["pid"]
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        page = owner.get(f"/projects/{pid}/tasks", params=params).json()
        pages += 1
        assert len(page["items"]) <= min(limit, 5)
        seen.extend(t["id"] for t in page["items"])
        if page["next"] is None:
            break
        after = page["next"]
        assert pages < 50
    assert len(seen) == N_TASKS == len(set(seen))
    assert seen == sorted(seen)
    assert [t["unique_id"] for t in all_tasks(owner, pid, limit=limit)] == [f"u{i:02d}" for i in range(N_TASKS)]


def test_status_filter(tight: World, paged: dict[str, Any]) -> None:
    owner, pid = tight.tenant.owner, paged["pid"]
    completed = all_tasks(owner, pid, status="completed")
    pending = all_tasks(owner, pid, status="pending")
    assert len(completed) == 4 and {t["status"] for t in completed} == {"completed"}
    assert len(pending) == N_TASKS - 4 and {t["status"] for t in pending} == {"pending"}
    assert all_tasks(owner, pid, status="canceled") == []
    assert {t["id"] for t in completed} | {t["id"] for t in pending} == {t["id"] for t in all_tasks(owner, pid)}


@pytest.mark.parametrize(("params", "named"), [
    ({"status": "done"}, "status"), ({"status": ""}, "status"), ({"limit": 0}, "limit"), ({"limit": -3}, "limit"),
    ({"after": "x"}, "after"), ({"limit": "1.5"}, "limit"),
])
def test_bad_page_parameters_are_422(tight: World, paged: dict[str, Any], params: dict[str, Any],
                                     named: str) -> None:
    assert field_of(tight.tenant.owner.get(f"/projects/{paged['pid']}/tasks", params=params)) == named


def test_results_pages_walk_completed_tasks_once(tight: World, paged: dict[str, Any]) -> None:
    owner, pid = tight.tenant.owner, paged["pid"]
    first = owner.get(f"/projects/{pid}/results", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next"] == first["items"][-1]["task_id"]
    rest = owner.get(f"/projects/{pid}/results", params={"limit": 3, "after": first["next"]}).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    ids = [r["task_id"] for r in first["items"] + rest["items"]]
    assert ids == sorted(set(ids))
    assert all(set(r) == {"task_id", "unique_id", "response", "confidence", "method", "needs_review",
                                "details", "review"}
               for r in first["items"] + rest["items"])
    assert field_of(owner.get(f"/projects/{pid}/results", params={"limit": 0})) == "limit"
    beyond = owner.get(f"/projects/{pid}/results", params={"after": ids[-1]}).json()
    assert beyond == {"items": [], "next": None}


def test_lookup_by_unique_id(tight: World, paged: dict[str, Any]) -> None:
    owner, pid = tight.tenant.owner, paged["pid"]
    found = owner.get(f"/projects/{pid}/tasks", params={"unique_id": "u01"}).json()
    assert [t["unique_id"] for t in found["items"]] == ["u01"] and found["next"] is None
    assert owner.get(f"/projects/{pid}/tasks", params={"unique_id": "u1"}).json() == {"items": [], "next": None}
    assert owner.get(f"/projects/{pid}/tasks", params={"unique_id": "U01"}).json()["items"] == []  # exact
    # With the other filters: all must hold.
    status = found["items"][0]["status"]
    other = "pending" if status == "completed" else "completed"
    assert len(owner.get(f"/projects/{pid}/tasks", params={"unique_id": "u01", "status": status}).json()["items"]) == 1
    assert owner.get(f"/projects/{pid}/tasks", params={"unique_id": "u01", "status": other}).json()["items"] == []
    after = found["items"][0]["id"]
    assert owner.get(f"/projects/{pid}/tasks", params={"unique_id": "u01", "after": after}).json()["items"] == []
    assert field_of(owner.get(f"/projects/{pid}/tasks", params={"unique_id": ""})) == "unique_id"
    assert field_of(owner.get(f"/projects/{pid}/tasks", params={"unique_id": "x" * 256})) == "unique_id"


def test_another_projects_unique_id_is_not_found(tight: World, paged: dict[str, Any]) -> None:
    other = tight.tenant.project(name="other")["id"]
    tight.tenant.add_tasks(other, [{"data": {"text": "elsewhere"}, "unique_id": "only-here"}])
    owner = tight.tenant.owner
    assert owner.get(f"/projects/{paged['pid']}/tasks", params={"unique_id": "only-here"}).json()["items"] == []
    assert len(owner.get(f"/projects/{other}/tasks", params={"unique_id": "only-here"}).json()["items"]) == 1


@pytest.mark.parametrize("params", [{"uniqueid": "u01"}, {"unique_id": "u01", "statuss": "pending"},
                                    {"page": "2"}, {"LIMIT": "2"}])
def test_unknown_query_parameters_are_422_naming_them(tight: World, paged: dict[str, Any],
                                                       params: dict[str, Any]) -> None:
    response = tight.tenant.owner.get(f"/projects/{paged['pid']}/tasks", params=params)
    unknown = next(name for name in params if name not in ("unique_id", "status", "after", "limit"))
    assert field_of(response) == unknown
    assert repr(unknown) in response.json()["error"]["message"]
