"""``qistas tasks audit`` through the SDK, against a real server; ``qistas status`` shows the review queue;
``qistas users create --reviewer`` makes a reviewer."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from qistas.cli import main
from qistas.db.engine import Database
from tests.cli.test_cli import run
from tests.conftest import LiveServer
from tests.factories import Tenant, client_for, label_everything, make_reviewer


def test_the_customer_audits_from_the_command_line(server: LiveServer, tenant: Tenant, rival: Tenant,
                                                   database: Database) -> None:
    common = ["--url", server.url, "--token", tenant.owner.headers["Authorization"].split()[1]]
    runner = CliRunner()
    plain = tenant.project()["id"]
    tenant.add_tasks(plain, [{"data": {"text": f"t{i}"}} for i in range(2)])
    label_everything(tenant, plain, {"label": "positive"})
    first, second = (t["id"] for t in tenant.owner.get(f"/projects/{plain}/tasks").json()["items"])

    accepted = runner.invoke(main, ["tasks", "audit", str(first), "--accept", *common])
    assert (accepted.exit_code, accepted.output) == (0, f"task {first} accepted\n")
    again = runner.invoke(main, ["tasks", "audit", str(first), "--reject", "--reason", "no", *common])
    assert again.exit_code == 1 and "error: this task was already audited" in again.output
    for args, said in ((["--reject"], "--reject needs --reason"), ([], "give --accept or --reject"),
                       (["--accept", "--reason", "fine"], "--reason goes with --reject")):
        refused = runner.invoke(main, ["tasks", "audit", str(second), *args, *common])
        assert refused.exit_code == 2 and said in refused.output, refused.output
    assert tenant.owner.get(f"/tasks/{second}").json()["review"]["audit"] == "none"  # nothing was sent

    rejected = runner.invoke(main, ["tasks", "audit", str(second), "--reject", "--reason", "mixed", *common])
    assert rejected.exit_code == 0, rejected.output
    assert rejected.output == f"task {second} rejected; reopened, it waits for one more annotation\n"
    task = tenant.owner.get(f"/tasks/{second}").json()
    assert (task["status"], task["required"], task["review"]["audit"]) == ("pending", 2, "rejected")

    reviewed = tenant.project(review={"share": 1, "reopen": "review"})["id"]
    tenant.add_tasks(reviewed, [{"data": {"text": "x"}}])
    label_everything(tenant, reviewed, {"label": "positive"})
    shown = runner.invoke(main, ["status", str(reviewed), *common])
    assert shown.exit_code == 0 and "in review 1" in shown.output, shown.output
    [held] = tenant.owner.get(f"/projects/{reviewed}/tasks").json()["items"]
    early = runner.invoke(main, ["tasks", "audit", str(held["id"]), "--accept", *common])
    assert early.exit_code == 1 and "only a delivered (completed) task can be audited" in early.output
    with make_reviewer(database, server.url, "rita") as reviewer:
        lease = reviewer.post(f"/projects/{reviewed}/reviews").json()
        assert reviewer.post(f"/reviews/{lease['id']}", json={"action": "accept"}).status_code == 201
    back = runner.invoke(main, ["tasks", "audit", str(held["id"]), "--reject", "--reason", "mixed", *common])
    assert back.output == f"task {held['id']} rejected; reopened, it waits for a reviewer\n", back.output

    theirs = runner.invoke(main, ["tasks", "audit", str(first), "--accept", "--url", server.url, "--token",
                                  rival.owner.headers["Authorization"].split()[1]])
    assert (theirs.exit_code, theirs.output) == (1, "error: task not found\n")


def test_users_create_makes_a_reviewer(server: LiveServer, tenant: Tenant, db_url: str, tmp_path: Path) -> None:
    pid = tenant.project(review={"share": 1})["id"]
    tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    label_everything(tenant, pid, {"label": "positive"})
    made = run(["users", "create", "rev@crowd.test", "--role", "annotator", "--reviewer", "--token"], tmp_path, db_url)
    assert made.exit_code == 0, made.output
    assert made.output.startswith("created annotator (reviewer) rev@crowd.test")
    plain = run(["users", "create", "plain@crowd.test", "--role", "annotator", "--token"], tmp_path, db_url)
    with client_for(server.url, made.output.splitlines()[-1]) as reviewer, \
            client_for(server.url, plain.output.splitlines()[-1]) as annotator:
        assert reviewer.get("/me").json()["is_reviewer"] is True
        assert reviewer.post(f"/projects/{pid}/reviews").status_code == 201
        assert annotator.post(f"/projects/{pid}/reviews").status_code == 403
