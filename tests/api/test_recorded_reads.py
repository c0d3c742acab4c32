"""A report (a project's quality, its fraud signals, its statistics, its likely label errors,
the payouts, the console's project page) is read in a read transaction and its reading
recorded in a short write of its own: on SQLite the write lock, which every answer of every
tenant waits for, is held for the audit event alone, not for the seconds a large project's
report takes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import AuditEvent
from tests.conftest import LiveServer
from tests.factories import Tenant, label_everything, new_user
from tests.sqlite_trace import written_during

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.sqlite_only  # the write lock taken up front (BEGIN IMMEDIATE) is SQLite's

# A report's own reads: any of these inside a write transaction holds the lock for the report.
REPORT_TABLES = re.compile(r"\b(FROM|JOIN)\s+(annotations|tasks|worker_stats|pay_entries|assignments|reviews)\b")


def _events(database: Database, action: str) -> int:
    with database.reader() as session:
        return len(session.scalars(select(AuditEvent.id).where(AuditEvent.action == action)).all())


@pytest.mark.parametrize(("path", "action"), [
    ("/projects/{pid}/quality", "quality.read"),
    ("/projects/{pid}/fraud", "fraud.read"),
    ("/projects/{pid}/stats", "stats.read"),
    ("/projects/{pid}/label-errors", "label_errors.read"),
    ("/payouts", "payouts.read"),
])
def test_a_report_is_read_outside_the_write_lock_and_its_reading_recorded(
        tenant: Tenant, database: Database, path: str, action: str) -> None:
    pid = tenant.project(redundancy={"min": 2, "max": 2}, pay={"currency": "EGP", "per_task": 100})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(12)])
    label_everything(tenant, pid, lambda data, index: {"label": "positive" if index % 3 else "negative"}, workers=2)
    before = _events(database, action)
    found: list[Any] = []
    written = written_during(database, lambda: found.append(tenant.owner.get(path.format(pid=pid))))
    assert found[0].status_code == 200, found[0].text
    assert _events(database, action) == before + 1  # recorded, once
    assert written and not [s for s in written if REPORT_TABLES.search(s)], written


@pytest.mark.parametrize(("path", "action"), [
    ("/console/projects/{pid}", "stats.read"),
    ("/console/projects/{pid}/label-errors", "label_errors.read"),
])
def test_the_consoles_reports_are_read_outside_the_write_lock(
        tenant: Tenant, database: Database, server: LiveServer, path: str, action: str) -> None:
    pid = tenant.project(redundancy={"min": 2, "max": 2})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(6)])
    label_everything(tenant, pid, lambda data, index: {"label": "positive" if index % 2 else "negative"}, workers=2)
    email = f"reader-{action}@{tenant.slug}.test"
    new_user(database, email=email, role="member", org_id=tenant.org_id, password=PASSWORD)
    with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
        form = browser.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        assert browser.post("/login", data={"csrf": csrf, "email": email, "password": PASSWORD,
                                            "next": ""}).status_code == 303
        before = _events(database, action)
        found: list[Any] = []
        written = written_during(database, lambda: found.append(browser.get(path.format(pid=pid))))
    assert found[0].status_code == 200, found[0].text[:500]
    assert _events(database, action) == before + 1
    assert written and not [s for s in written if REPORT_TABLES.search(s)], written
