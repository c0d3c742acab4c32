"""Storage quotas per organization: task data at import, export files at a new export job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qistas.db.engine import Database
from qistas.domain import quotas
from tests.api.conftest import World, make_world
from tests.api.helpers import count_tasks, error_of
from tests.factories import Tenant, make_tenant

TASK_QUOTA = 4000


@pytest.fixture(scope="module")
def quota(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with make_world(template, tmp_path_factory.mktemp("quota"), max_task_bytes_per_org=TASK_QUOTA,
                    max_export_bytes_per_org=1, worker_poll_seconds=0.05, cursor_settle_seconds=0) as found:
        yield found


def _rows(n: int, size: int = 100, tag: str = "") -> list[dict[str, Any]]:
    return [{"data": {"text": f"{tag}{i}".ljust(size, "x")}} for i in range(n)]


def _used(database: Database, org_id: int) -> int:
    with database.reader() as session:
        return quotas.task_bytes(session, org_id=org_id)


def _over(response: httpx.Response, name: str) -> dict[str, Any]:
    error = error_of(response, 413)
    assert error["code"] == "quota_exceeded" and error["details"]["quota"] == name
    return error


def test_an_import_that_would_pass_the_task_quota_is_refused_whole(quota: World) -> None:
    tenant, rival = quota.tenant, quota.rival
    project = tenant.project()["id"]
    tenant.add_tasks(project, _rows(20))  # some 2,300 bytes of the 4,000
    used = _used(quota.database, tenant.org_id)
    assert 2000 < used < TASK_QUOTA
    refused = tenant.owner.post(f"/projects/{project}/tasks", json=_rows(20, tag="b"))
    error = _over(refused, "QISTAS_MAX_TASK_BYTES_PER_ORG")
    assert error["details"]["limit"] == TASK_QUOTA and error["details"]["used"] == used
    assert count_tasks(quota.database, project) == 20  # nothing of it was written
    # What fits is still taken, and another tenant has a quota of its own.
    tenant.add_tasks(project, _rows(5, tag="c"))
    other = rival.project()["id"]
    rival.add_tasks(other, _rows(20))
    # Once no room is left at all, an upload is refused before its body is read.
    # ('{"text": "' and '"}': 12 bytes around the text)
    tenant.add_tasks(project, _rows(1, size=TASK_QUOTA - _used(quota.database, tenant.org_id) - 12, tag="d"))
    assert _used(quota.database, tenant.org_id) == TASK_QUOTA
    full = tenant.owner.post(f"/projects/{project}/tasks", content=b"not even read",
                             headers={"content-type": "application/x-ndjson"})
    assert _over(full, "QISTAS_MAX_TASK_BYTES_PER_ORG")["details"]["adding"] == 0


def test_export_jobs_are_refused_while_the_export_files_reach_the_quota(quota: World) -> None:
    with make_tenant(quota.database, quota.url, "initech") as tenant, \
            make_tenant(quota.database, quota.url, "umbrella") as rival:
        _exports_over_quota(tenant, rival)


def _exports_over_quota(tenant: Tenant, rival: Tenant) -> None:
    project = tenant.project()["id"]
    tenant.add_tasks(project, [{"data": {"text": "one"}}])
    first = tenant.owner.post(f"/projects/{project}/exports", json={"format": "jsonl"})
    assert first.status_code == 202, first.text
    deadline = time.monotonic() + 20
    while tenant.owner.get(f"/exports/{first.json()['id']}").json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _over(tenant.owner.post(f"/projects/{project}/exports", json={"format": "jsonl"}),
          "QISTAS_MAX_EXPORT_BYTES_PER_ORG")
    # A streamed export keeps no file: still served.
    assert tenant.owner.get(f"/projects/{project}/export").status_code == 200
    other = rival.project()["id"]
    rival.add_tasks(other, [{"data": {"text": "one"}}])
    assert rival.owner.post(f"/projects/{other}/exports", json={"format": "jsonl"}).status_code == 202
