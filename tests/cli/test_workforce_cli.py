"""``qistas pools create/list/import`` and ``qistas skills set/show``: an operator builds a
vendor pool of dialect speakers from a CSV, and routing then serves only them."""

from __future__ import annotations

from pathlib import Path

from qistas.db.engine import Database
from tests.cli.test_cli import run
from tests.conftest import LiveServer
from tests.factories import client_for, make_tenant


def test_an_operator_builds_a_pool_and_routing_serves_only_its_speakers(
        server: LiveServer, database: Database, db_url: str, tmp_path: Path) -> None:
    made = run(["pools", "create", "Cairo vendor", "--kind", "vendor"], tmp_path, db_url)
    assert made.exit_code == 0, made.output
    pool_id = int(made.output.split()[1])
    assert run(["pools", "create", "Cairo vendor", "--kind", "vendor"], tmp_path, db_url).exit_code == 1  # taken
    assert "an organization" in run(["pools", "create", "staff", "--kind", "in_house"], tmp_path, db_url).output

    bad = tmp_path / "bad.csv"
    bad.write_text("email,skills\nmona@vendor.test,language:ar-EG=4\nnot an email,\n")
    refused = run(["pools", "import", str(pool_id), str(bad)], tmp_path, db_url)
    assert refused.exit_code == 1 and "row 3" in refused.output
    assert " 0  Cairo vendor" in run(["pools", "list"], tmp_path, db_url).output  # nothing written
    good = tmp_path / "speakers.csv"
    good.write_text("email,skills\nmona@vendor.test,language:ar-eg=4\n")
    done = run(["pools", "import", str(pool_id), str(good)], tmp_path, db_url)
    assert done.output.strip() == f"1 annotator(s) in pool {pool_id}, 1 new account(s)"
    assert " 1  Cairo vendor" in run(["pools", "list"], tmp_path, db_url).output
    assert run(["skills", "show", "mona@vendor.test"], tmp_path, db_url).output.split() == ["language:ar-EG=4"]

    assert "skill" in run(["skills", "set", "mona@vendor.test", "language:not a tag=4"], tmp_path, db_url).output
    token_of = {}
    for email, skill in (("omar@crowd.test", "language:ar-SA=5"), ("mona@vendor.test", "language:ar-EG=5")):
        if email.startswith("omar"):
            created = run(["users", "create", email, "--role", "annotator", "--password", "long enough", "--token"],
                          tmp_path, db_url)
            token_of[email] = created.output.strip().splitlines()[-1]
        assert run(["skills", "set", email, skill], tmp_path, db_url).exit_code == 0
    with make_tenant(database, server.url, "acme") as tenant:
        project = tenant.project(routing={"pools": [pool_id],
                                          "all": [{"kind": "language", "tag": "ar-EG", "min_level": 3}]})["id"]
        tenant.add_tasks(project, [{"data": {"text": "إزيك"}}])
        with client_for(server.url, token_of["omar@crowd.test"]) as omar:
            assert omar.post(f"/projects/{project}/assignments").status_code == 404  # not in the pool
        mona = run(["tokens", "list", "mona@vendor.test"], tmp_path, db_url)
        assert mona.output.strip() == "no tokens"  # made by the import, without a password or token
