"""The export queue is fair between organizations: one tenant's many queued jobs do not hold
back another's single job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qistas.db.engine import Database
from qistas.db.models import ExportJob, Project, User
from qistas.domain import exportjobs, projects, users
from qistas.domain.results import ExportOptions

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _tenant(database: Database, slug: str) -> tuple[int, int]:
    with database.writer.begin() as session:
        org = users.create_org(session, name=slug.title(), slug=slug)
        owner = users.create_user(session, email=f"o@{slug}.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                          task={"type": "classification", "labels": ["x"]})
        return project.id, owner.id


def _queue(database: Database, project_id: int, owner_id: int, n: int) -> list[int]:
    with database.writer.begin() as session:
        owner = session.get(User, owner_id)
        project = session.get(Project, project_id)
        assert owner is not None and project is not None
        return [exportjobs.create_job(session, project=project, actor=owner, fmt="jsonl",
                                      options=ExportOptions()).id for _ in range(n)]


def _claim(database: Database, now: datetime) -> int | None:
    with database.writer.begin() as session:
        job = exportjobs.claim_job(session, now=now)
        return job.id if job is not None else None


def _finish(database: Database, job_id: int, now: datetime) -> None:
    with database.writer.begin() as session:
        job = session.get(ExportJob, job_id)
        assert job is not None
        job.status, job.finished_at, job.lease_until = "done", now, None


def test_one_worker_alternates_between_organizations(database: Database) -> None:
    big, big_owner = _tenant(database, "acme")
    small, small_owner = _tenant(database, "globex")
    many = _queue(database, big, big_owner, 10)
    (single,) = _queue(database, small, small_owner, 1)
    order = []
    for n in range(11):
        now = T0 + timedelta(seconds=n)
        claimed = _claim(database, now)
        assert claimed is not None
        order.append(claimed)
        _finish(database, claimed, now)
    assert _claim(database, T0 + timedelta(seconds=20)) is None
    # The small tenant's job runs second: after the one job that was first in line, before
    # nine of the large tenant's ten. Before, it ran last.
    assert order == [many[0], single, *many[1:]]


def test_several_workers_take_the_organization_with_fewest_running(database: Database) -> None:
    big, big_owner = _tenant(database, "acme")
    small, small_owner = _tenant(database, "globex")
    many = _queue(database, big, big_owner, 5)
    (single,) = _queue(database, small, small_owner, 1)
    # Two workers claim at once, none finished: one job of each tenant runs.
    assert [_claim(database, T0), _claim(database, T0)] == [many[0], single]
    assert _claim(database, T0) == many[1]


def test_a_job_whose_worker_died_is_taken_over_first(database: Database) -> None:
    big, big_owner = _tenant(database, "acme")
    small, small_owner = _tenant(database, "globex")
    (left,) = _queue(database, big, big_owner, 1)
    assert _claim(database, T0) == left  # its worker then dies: the lease is not renewed
    (single,) = _queue(database, small, small_owner, 1)
    assert _claim(database, T0 + exportjobs.LEASE + timedelta(seconds=1)) == left
    with database.reader() as session:
        job = session.get(ExportJob, left)
        assert job is not None and job.attempts == 2
    assert _claim(database, T0 + exportjobs.LEASE + timedelta(seconds=2)) == single
