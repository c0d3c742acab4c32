"""``qistas payouts export``: the payout CSV of a period, from the server's database."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from qistas.db.engine import Database
from tests.api.helpers import take
from tests.cli.test_cli import run
from tests.conftest import LiveServer
from tests.factories import make_tenant


def test_payouts_export_writes_what_each_annotator_is_owed(server: LiveServer, database: Database, db_url: str,
                                                           tmp_path: Path) -> None:
    with make_tenant(database, server.url, "acme") as tenant:
        project = tenant.project(pay={"currency": "JPY", "per_task": 40})["id"]
        tenant.add_tasks(project, [{"data": {"text": f"t{n}"}} for n in range(3)])
        for worker in (tenant.annotators[0], tenant.annotators[0], tenant.inhouse):
            lease = take(worker, project)
            assert worker.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": "positive"}}
                               ).status_code == 201

    everyone = run(["payouts", "export", "--from", "2020-01-01"], tmp_path, db_url)
    assert everyone.exit_code == 0, everyone.output
    lines = list(csv.DictReader(io.StringIO(everyone.output)))
    assert [(r["email"], r["org"], r["currency"], r["answers"], r["total_minor"], r["total"]) for r in lines] == [
        ("worker0-acme@crowd.test", "", "JPY", "2", "80", "80"), ("inhouse@acme.test", "acme", "JPY", "1", "40", "40")]
    out = tmp_path / "acme.csv"
    done = run(["payouts", "export", "--org", "acme", "--output", str(out)], tmp_path, db_url)
    assert done.output.strip() == f"1 line(s) written to {out}: JPY 40 (minor units)"
    assert [r["email"] for r in csv.DictReader(io.StringIO(out.read_text()))] == ["inhouse@acme.test"]
    # A period before the answers: nothing owed; a bad date is refused.
    assert run(["payouts", "export", "--to", "2020-01-01"], tmp_path, db_url).output.count("\n") == 1
    refused = run(["payouts", "export", "--from", "last week"], tmp_path, db_url)
    assert refused.exit_code == 2 and "--from" in refused.output
