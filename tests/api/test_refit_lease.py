"""Refits run once across processes: each claims the project's refit lease; a project another
process is refitting is skipped (the API answers 409), and a process that lost its lease
before writing (paused past it) writes nothing over the one that took it over."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Annotation, QualityModel, WorkerLease
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import leases, quality
from tests.factories import Tenant, label_everything


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refit_interval_seconds": 0})  # no background refits: the test runs them


def _answered(tenant: Tenant) -> int:
    pid = tenant.project(redundancy={"min": 3, "max": 3})["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}} for i in range(20)])
    label_everything(tenant, pid, lambda data, index: {"label": "positive" if index else "negative"}, workers=3)
    return pid


def _fitted(database: Database, pid: int) -> QualityModel | None:
    with database.reader() as session:
        return session.get(QualityModel, pid)


def _hold(database: Database, name: str, seconds: float) -> leases.Lease:
    lease = leases.Lease(name=name, holder=leases.new_holder(), seconds=seconds)
    assert write(database, lambda s: leases.claim(s, name=name, holder=lease.holder, seconds=seconds, now=utcnow()))
    return lease


def test_a_project_another_process_refits_is_left_to_it(tenant: Tenant, database: Database) -> None:
    pid = _answered(tenant)
    assert quality.projects_due_for_refit(database) == [pid]
    other = _hold(database, f"refit:{pid}", seconds=60)  # another process is fitting it
    assert quality.refit_step(database) is False
    assert _fitted(database, pid) is None
    busy = tenant.owner.post(f"/projects/{pid}/quality/refit")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
    # Its process died: the lease runs out and this one takes the refit over.
    with database.writer.begin() as session:
        row = session.get(WorkerLease, other.name)
        assert row is not None
        row.until = utcnow() - timedelta(seconds=1)
    quality.refit_step(database)
    fitted = _fitted(database, pid)
    assert fitted is not None and fitted.n_annotations == 60
    with database.reader() as session:
        assert session.get(WorkerLease, other.name) is None  # released when done
    assert quality.projects_due_for_refit(database) == []


def test_a_refit_that_lost_its_lease_writes_nothing(tenant: Tenant, database: Database) -> None:
    pid = _answered(tenant)
    stale = leases.Lease(name=f"refit:{pid}", holder=leases.new_holder(), seconds=60)  # its lease was taken over
    _hold(database, stale.name, seconds=60)
    assert quality._refit(database, project_id=pid, lease=stale) is None
    assert _fitted(database, pid) is None


def test_processes_refitting_at_once_fit_each_project_once(
    tenant: Tenant, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = _answered(tenant)
    fits: list[int] = []
    real = quality._refit

    def counted(db: Database, *, project_id: int, lease: leases.Lease,
                sample_answers: int) -> quality.RefitResult | None:
        fits.append(project_id)
        return real(db, project_id=project_id, lease=lease, sample_answers=sample_answers)

    monkeypatch.setattr(quality, "_refit", counted)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            quality.refit_step(database)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert fits == [pid]
    assert _fitted(database, pid) is not None


def test_a_lease_is_renewed_while_its_work_runs(database: Database) -> None:
    with leases.held(database, "renewed", seconds=2.1) as lease:
        assert lease is not None
        with database.reader() as session:
            first = session.get(WorkerLease, "renewed")
            assert first is not None
            until = first.until
        with leases.held(database, "renewed", seconds=2.1) as other:
            assert other is None  # held: nobody else gets it
        threading.Event().wait(1.2)  # past a third of its time: renewed since
        with database.reader() as session:
            later = session.get(WorkerLease, "renewed")
            assert later is not None and later.until > until
        with database.writer.begin() as session:
            assert leases.holds(session, lease=lease)
    with leases.held(database, "renewed", seconds=2.1) as again:
        assert again is not None  # released at the end


def test_a_project_with_many_rejected_answers_is_refitted_once_per_growth(tenant: Tenant, database: Database) -> None:
    """The pace compares like with like: answers counted as they were given (rejected ones too),
    then and now. Counted all now against the fitted (kept) ones then, a project with a sixth of
    its answers rejected stayed due and was refitted at every pass."""
    pid = _answered(tenant)
    with database.writer.begin() as session:
        kept = session.scalars(select(Annotation.id).where(Annotation.project_id == pid).order_by(Annotation.id)
                               .limit(20)).all()
        session.execute(update(Annotation).where(Annotation.id.in_(kept)).values(rejected_at=utcnow()))
    assert quality.projects_due_for_refit(database) == [pid]
    quality.refit_step(database)
    fitted = _fitted(database, pid)
    assert fitted is not None
    assert quality.projects_due_for_refit(database) == []  # until its answers grow by a fifth
    tenant.add_tasks(pid, [{"data": {"text": f"u{i}"}} for i in range(4)])
    assert label_everything(tenant, pid, {"label": "positive"}, workers=3) == 12
    assert quality.projects_due_for_refit(database) == [pid]  # 72 answers given against 60
