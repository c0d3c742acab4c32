"""The console's audit log in a real browser: an owner reads their organization's events newest
first, filters them, pages back and forth, downloads the log and verifies it with the command
shown; a bad filter is named next to its input; a member and an annotator are refused, and an
admin reads another organization's log by its slug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, expect

from qistas.cli import main as cli
from qistas.db.engine import Database
from tests.conftest import LiveServer
from tests.web.conftest import People, click_and_wait, person, sign_in
from tests.web.test_review import check_language, read_in, shot

pytestmark = pytest.mark.sqlite_only


def make_projects(people: People, count: int) -> list[int]:
    ids = []
    for n in range(count):
        made = people.owner.post("/projects", json={"name": f"مشروع {n}", "task": {"type": "classification",
                                                                                   "labels": ["a", "b"]}})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_owner_reads_filters_pages_and_verifies_the_log(lang: str, page: Page, people: People,
                                                          server: LiveServer, tmp_path: Path) -> None:
    t = read_in(page, server, lang)
    project_ids = make_projects(people, 60)  # more than a page of events
    sign_in(page, people.owner_email, next_path="/console")
    click_and_wait(page, "#nav-audit")
    check_language(page, lang, "the audit log", "#audit-filters")
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(50)
    seqs = [int(s) for s in rows.evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    assert page.locator(f"#event-{seqs[0]} code").first.inner_text() == "audit.read"  # this reading
    shot(page, f"audit-log-{lang}")

    # Older, then newer again: the pages meet without a gap or an overlap.
    click_and_wait(page, "#audit-older")
    older = [int(s) for s in rows.evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert older[0] == seqs[-1] - 1 and older == sorted(older, reverse=True)
    click_and_wait(page, "#audit-newer")
    newer = [int(s) for s in rows.evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert newer[-1] == older[0] + 1

    # A filter: one project's events only.
    page.goto("/console/audit")
    page.fill("#object_type", "project")
    page.fill("#object_id", str(project_ids[7]))
    click_and_wait(page, "#audit-filter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("project.create")
    assert "object_id=" in page.url

    # A bad filter is named next to its input, and nothing is listed.
    page.goto("/console/audit?since=yesterday")
    expect(page.locator("#since-error")).to_be_visible()
    assert page.get_attribute("#since", "aria-invalid") == "true"
    assert page.locator("#events").count() == 0

    # The log as downloaded verifies with the command the page shows; its last checkpoint is named.
    page.goto("/console/audit")
    expect(page.locator("#audit-checkpoint")).to_have_text(t("auditlog.no_checkpoint"))
    signed = people.owner.post("/audit/checkpoints")
    assert signed.status_code == 201, signed.text
    page.goto("/console/audit")
    expect(page.locator("#audit-checkpoint")).to_contain_text(str(signed.json()["seq"]))
    command = page.inner_text("#audit-command").split()
    with page.expect_download() as download:
        page.click("#audit-export")
    saved = tmp_path / "audit.jsonl"
    download.value.save_as(saved)
    kinds = [json.loads(line)["type"] for line in saved.read_text().splitlines()]
    assert kinds[0] == "audit-log" and kinds.count("event") > 60
    verdict = CliRunner().invoke(cli, ["audit", "verify", str(saved), "--public-key", command[-1]])
    assert verdict.exit_code == 0, verdict.output
    lines = saved.read_text().splitlines()
    changed = json.loads(lines[5])
    changed["action"] = "project.delete"
    lines[5] = json.dumps(changed)
    saved.write_text("\n".join(lines) + "\n")
    broken = CliRunner().invoke(cli, ["audit", "verify", str(saved), "--public-key", command[-1]])
    assert broken.exit_code != 0


def test_the_log_is_for_owners_and_admins(page: Page, people: People, server: LiveServer, database: Database,
                                         password_hash: str) -> None:
    make_projects(people, 1)
    person(database, password_hash, email="member@acme.test", role="member", org_id=people.org_id)
    sign_in(page, "member@acme.test", next_path="/console")
    assert page.locator("#nav-audit").count() == 0
    assert page.goto("/console/audit").status == 403  # type: ignore[union-attr]
    page.context.clear_cookies()
    sign_in(page, people.annotator_email)
    assert page.goto("/console/audit").status == 403  # type: ignore[union-attr]
    page.context.clear_cookies()

    sign_in(page, people.admin_email, next_path="/console")
    page.goto("/console/audit?org=acme")
    expect(page.locator("#events tbody tr").filter(has_text="project.create")).to_have_count(1)
    assert "org=acme" in (page.get_attribute("#audit-export", "href") or "")
    assert page.goto("/console/audit?org=nobody").status == 404  # type: ignore[union-attr]
    page.goto("/console/audit")  # the instance's own chain: no organization's events
    expect(page.locator("#events tbody tr").filter(has_text="project.create")).to_have_count(0)
