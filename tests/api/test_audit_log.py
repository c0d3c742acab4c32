"""The audit log through the API: every read of customer data and the annotation loop leave
an event; owners read their organization's chain (filtered, paged), no one else's; its
export verifies offline with the published key and a tampered one is caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qistas.cli import main
from qistas.domain.audit_chain import GENESIS, event_hash
from qistas.domain.security import pseudonym
from tests.api.conftest import World
from tests.api.helpers import error_of, field_of, take
from tests.conftest import SECRET


@pytest.fixture(scope="module")
def worked(world: World) -> dict[str, Any]:
    """A project that was worked on and read in every way a customer reads one."""
    tenant = world.tenant
    pid = tenant.project(name="Audited", redundancy={"min": 1, "max": 1})["id"]
    batch = tenant.owner.post(f"/projects/{pid}/batches", json={"name": "audited-b1"}).json()
    tenant.add_tasks(pid, [{"data": {"text": "one"}, "unique_id": "a1"},
                           {"data": {"text": "two"}, "unique_id": "a2"}])
    lease = take(tenant.annotators[0], pid)
    assert tenant.annotators[0].get(f"/tasks/{lease['task']['id']}").status_code == 200
    answered = tenant.annotators[0].post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}})
    assert answered.status_code == 201
    skipped = take(tenant.annotators[0], pid)
    assert tenant.annotators[0].post(f"/assignments/{skipped['id']}/skip").status_code == 204
    # Refused in the loop: nothing was done, nothing is recorded.
    assert tenant.annotators[0].post(f"/assignments/{skipped['id']}/submit",
                                     json={"answer": {"label": "positive"}}).status_code == 409
    for path in (f"/projects/{pid}/results", f"/projects/{pid}/stats", f"/projects/{pid}/batches",
                 f"/batches/{batch['id']}", f"/projects/{pid}/deliveries", f"/projects/{pid}/tasks",
                 f"/tasks/{lease['task']['id']}", f"/projects/{pid}/quality", f"/projects/{pid}/export",
                 f"/projects/{pid}/exports", f"/projects/{pid}/callback-secret"):
        response = tenant.member.get(path)
        assert response.status_code == 200, (path, response.text)
    assert tenant.owner.post(f"/projects/{pid}/quality/refit").status_code == 200
    return {"project": pid, "batch": batch["id"], "lease": lease, "skipped": skipped, "annotation": answered.json()}


def _events(world: World, **params: Any) -> list[dict[str, Any]]:
    response = world.tenant.owner.get("/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def test_reads_and_the_loop_are_recorded(world: World, worked: dict[str, Any]) -> None:
    pid = worked["project"]
    about_project = {e["action"] for e in _events(world, object_type="project", object_id=pid)}
    assert {"results.read", "stats.read", "batches.read", "deliveries.read", "tasks.read", "quality.read",
            "export", "exports.read", "callback_secret.read", "tasks.import", "project.create",
            "quality.refit"} <= about_project
    assert [e["action"] for e in _events(world, object_type="batch", object_id=worked["batch"])] == [
        "batch.create", "batch.read"]
    task_id = worked["lease"]["task"]["id"]
    on_task = _events(world, object_type="task", object_id=task_id)
    assert [e["action"] for e in on_task] == ["task.take", "task.read", "annotation.create", "task.read"]
    # The annotator appears under their pseudonym in the project, never their account.
    worker = pseudonym(SECRET, pid, world.tenant.annotator_ids[0])
    assert [e["actor"] for e in on_task[:3]] == [worker] * 3
    assert on_task[0]["details"] == {"assignment": worked["lease"]["id"]}
    assert on_task[2]["details"] == {"annotation": worked["annotation"]["id"]}
    assert on_task[0]["at"] <= on_task[2]["at"] == worked["annotation"]["created_at"]
    assert on_task[3]["actor"].startswith("member:")
    skipped = _events(world, object_type="task", object_id=worked["skipped"]["task"]["id"], actor=worker)
    assert [e["action"] for e in skipped] == ["task.take", "task.skip"]
    # A take that hands out nothing records nothing.
    before = _events(world, actor=worker)
    assert world.tenant.annotators[0].post(f"/projects/{pid}/assignments").status_code == 204
    assert _events(world, actor=worker) == before


def test_the_chain_is_linear_paged_and_filtered(world: World, worked: dict[str, Any]) -> None:
    first = world.tenant.owner.get("/audit", params={"limit": 5}).json()
    assert [e["seq"] for e in first["items"]] == [1, 2, 3, 4, 5] and first["next"] == 5
    assert first["items"][0]["prev_hash"] == GENESIS
    rest = _events(world, after=first["next"])
    chain = first["items"] + rest
    assert [e["seq"] for e in chain] == list(range(1, len(chain) + 1))
    for previous, event in zip(chain, chain[1:], strict=False):
        assert event["prev_hash"] == previous["hash"] and event["hash"] == event_hash(event)
    assert all(e["org"] == world.tenant.org_id for e in chain)
    assert chain[-1]["action"] == "audit.read"  # reading the log is recorded too
    # A time range
    middle = chain[len(chain) // 2]["at"]
    later = _events(world, since=middle)
    assert later and all(e["at"] >= middle for e in later)
    assert all(e["at"] < middle for e in _events(world, until=middle))
    assert field_of(world.tenant.owner.get("/audit", params={"since": "2026-01-01T00:00:00"})) == "since"
    assert field_of(world.tenant.owner.get("/audit", params={"after": "-1"})) == "after"


def test_only_owners_read_their_own_organization(world: World, worked: dict[str, Any]) -> None:
    tenant, rival = world.tenant, world.rival
    for client in (tenant.member, tenant.inhouse, tenant.annotators[0]):
        assert error_of(client.get("/audit"), 403)["code"] == "forbidden"
        assert client.get("/audit/export").status_code == 403
    missing = error_of(tenant.owner.get("/audit", params={"org": "no-such-org"}), 404)
    other = error_of(tenant.owner.get("/audit", params={"org": rival.slug}), 404)
    assert other["message"].replace(rival.slug, "x") == missing["message"].replace("no-such-org", "x")
    assert tenant.owner.post("/audit/checkpoints", params={"org": rival.slug}).status_code == 404
    # The rival's own chain holds nothing of the tenant's.
    theirs = rival.owner.get("/audit", params={"limit": 500}).json()["items"]
    assert all(e["org"] == rival.org_id for e in theirs)
    assert worked["project"] not in {e["object_id"] for e in theirs if e["object_type"] == "project"}
    # Admins read any organization's chain, and without one the instance's own.
    named = world.admin.get("/audit", params={"org": tenant.slug, "limit": 3}).json()["items"]
    assert [e["seq"] for e in named] == [1, 2, 3] and named[0]["org"] == tenant.org_id
    instance = world.admin.get("/audit").json()["items"]
    assert all(e["org"] is None for e in instance)


def test_an_export_verifies_offline_and_tampering_is_named(world: World, worked: dict[str, Any],
                                                           tmp_path: Path) -> None:
    owner = world.tenant.owner
    key = world.tenant.member.get("/audit/public-key").json()
    signed = owner.post("/audit/checkpoints")
    assert signed.status_code == 201, signed.text
    assert signed.json()["key_id"] == key["key_id"]
    exported = owner.get("/audit/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(exported.content)
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "verify", str(path), "--public-key", key["public_key"]])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    pem = tmp_path / "key.pem"
    pem.write_text(key["pem"])
    assert runner.invoke(main, ["audit", "verify", str(path), "--public-key", str(pem)]).exit_code == 0

    lines = exported.text.splitlines(keepends=True)
    row = json.loads(lines[3])  # event 3
    row["actor"] = "system"
    lines[3] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    result = runner.invoke(main, ["audit", "verify", str(path), "--public-key", key["public_key"]])
    assert result.exit_code == 1
    assert "line 4: event 3 was changed" in result.output
