"""A large project's quality report and fraud signals read by the server's report process
(``qistas.report_process``): the same reports as read in the server's threads, from another
process; the reader's access checked before, the reading recorded once after."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select

from qistas import report_process
from qistas.db.models import AuditEvent
from qistas.db.unit_of_work import read
from qistas.domain import leases
from qistas.domain.security import pseudonyms
from qistas.report_process import ProjectReport
from tests.api.conftest import World, make_world
from tests.api.helpers import children_named, error_of, process_alive
from tests.factories import Tenant, label_everything


@pytest.fixture(scope="module")
def world(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every project's reports go to the report process (the least number of answers is 0)."""
    with make_world(template, tmp_path_factory.mktemp("report-processes"), report_process_min_answers=0) as found:
        yield found


def _answered(tenant: Tenant) -> int:
    project_id = tenant.project(redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(project_id, [{"data": {"text": f"نص {n}"}} for n in range(10)])
    label_everything(tenant, project_id, lambda data, index: {"label": "positive" if index != 1 else "negative"},
                     workers=3)
    return project_id


def _in_a_thread(world: World, job: ProjectReport) -> Any:
    return read(world.database, partial(report_process.read_report, job=job))


def _events(world: World, action: str) -> int:
    with world.database.reader() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def test_the_reports_are_read_by_the_report_process(world: World) -> None:
    project_id = _answered(world.tenant)
    secret = world.settings.secret_key or ""
    assert not children_named(os.getpid(), report_process.PROCESS_NAME)  # started at the first report
    before = _events(world, "quality.read"), _events(world, "fraud.read")
    quality = world.tenant.owner.get(f"/projects/{project_id}/quality")
    assert quality.status_code == 200, quality.text
    assert children_named(os.getpid(), report_process.PROCESS_NAME), "no report process read it"
    expected = _in_a_thread(world, ProjectReport("quality", project_id, secret))
    assert quality.json() == json.loads(json.dumps(expected))
    assert len(quality.json()["annotators"]) == 3 and "@" not in quality.text

    fraud = world.tenant.owner.get(f"/projects/{project_id}/fraud", params={"min_seconds": 1.5})
    assert fraud.status_code == 200, fraud.text
    found, floor = _in_a_thread(world, ProjectReport("fraud", project_id, secret, min_seconds=1.5))
    name = pseudonyms(secret, project_id)
    assert fraud.json()["floor_seconds"] == round(floor, 3) == 1.5
    assert [(a["annotator"], a["answers"], a["flags"]) for a in fraud.json()["annotators"]] == \
           [(name(a.annotator_id), a.answers, a.flags) for a in found]
    assert sum(a["answers"] for a in fraud.json()["annotators"]) == 30
    assert (_events(world, "quality.read"), _events(world, "fraud.read")) == (before[0] + 1, before[1] + 1)


def test_another_tenants_project_is_not_found_before_any_report_is_read(world: World) -> None:
    project_id = _answered(world.tenant)
    before = _events(world, "quality.read"), _events(world, "fraud.read")
    for kind in ("quality", "fraud"):
        error_of(world.rival.owner.get(f"/projects/{project_id}/{kind}"), 404)
    error_of(world.tenant.owner.get("/projects/999999999/quality"), 404)
    assert (_events(world, "quality.read"), _events(world, "fraud.read")) == before


def test_a_refit_on_request_runs_in_the_report_process(world: World) -> None:
    """``POST .../quality/refit`` of a large project fits and writes in the report process; the
    project's refit lease held elsewhere is a 409 raised there, and nothing is fitted."""
    project_id = _answered(world.tenant)
    before = _events(world, "quality.refit")
    with leases.held(world.database, f"refit:{project_id}", seconds=60) as lease:
        assert lease is not None
        busy = error_of(world.tenant.owner.post(f"/projects/{project_id}/quality/refit"), 409)
        assert "refit of this project is running" in busy["message"]
    assert world.tenant.owner.get(f"/projects/{project_id}/quality").json()["fitted_at"] is None
    refit = world.tenant.owner.post(f"/projects/{project_id}/quality/refit")
    assert refit.status_code == 200, refit.text
    assert refit.json()["answers"] == 30 and refit.json()["workers"] == 3 and refit.json()["method"]
    assert children_named(os.getpid(), report_process.PROCESS_NAME)
    fitted = world.tenant.owner.get(f"/projects/{project_id}/quality").json()
    assert fitted["method"] == refit.json()["method"] and fitted["fitted_at"] is not None
    assert _events(world, "quality.refit") == before + 1
    error_of(world.rival.owner.post(f"/projects/{project_id}/quality/refit"), 404)


def test_a_report_whose_process_ended_is_refused_and_the_next_is_read(world: World) -> None:
    """A report process that dies (killed, out of memory) fails the report it had, or the next
    one, with 503; the report after that starts a new process."""
    project_id = _answered(world.tenant)
    assert world.tenant.owner.get(f"/projects/{project_id}/quality").status_code == 200
    (reader,) = children_named(os.getpid(), report_process.PROCESS_NAME)
    os.kill(reader, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(reader) and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = error_of(world.tenant.owner.get(f"/projects/{project_id}/quality"), 503)
    assert "ask for it again" in refused["message"]
    again = world.tenant.owner.get(f"/projects/{project_id}/fraud")
    assert again.status_code == 200, again.text
    assert children_named(os.getpid(), report_process.PROCESS_NAME) - {reader}
