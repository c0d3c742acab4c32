"""Export jobs: large exports written in the background, claimed from the database.

A job is ``queued``, then ``running`` under a lease that the worker renews as it goes; a
running job whose lease ran out was left by a process that died, and is claimed again from
the start (up to ``MAX_ATTEMPTS``). The file is written to the worker's scratch folder, then
put whole into the store media files live in (the folder every server shares, or the bucket)
under a key of its own attempt, ``exports/<job>-<attempt>-<name>``; the job names that key
once it is done. So any server serves the download, a crash never leaves a truncated file
served as a finished export, and two attempts never write the same key.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from qistas.db.dialect import claim_lock
from qistas.db.models import ExportJob, Project, User
from qistas.domain.exportformats import check_format
from qistas.domain.results import ExportOptions, filters
from qistas.domain.tasktypes import parse_spec
from qistas.errors import NotFound
from qistas.policies import ensure_customer_access_to

MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=60)  # QISTAS_JOB_LEASE_SECONDS's default


def create_job(session: Session, *, project: Project, actor: User, fmt: str, options: ExportOptions) -> ExportJob:
    options = check_format(fmt, parse_spec(project.task_spec), options.validate())
    filters(session, project, options)  # an unknown batch is refused now, not when the job runs
    job = ExportJob(project_id=project.id, requested_by=actor.id, format=fmt, options=options.as_dict(),
                    status="queued", attempts=0, rows_done=0)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: int, actor: User) -> tuple[ExportJob, Project]:
    job = session.get(ExportJob, job_id)
    if job is None:
        raise NotFound("export not found")
    return job, ensure_customer_access_to(actor, session.get(Project, job.project_id), what="export")


def list_jobs(session: Session, *, project: Project, limit: int) -> list[ExportJob]:
    query = select(ExportJob).where(ExportJob.project_id == project.id).order_by(ExportJob.id.desc())
    return list(session.scalars(query.limit(limit)))


def claim_job(session: Session, *, now: datetime, lease: timedelta = LEASE) -> ExportJob | None:
    """Take a running job whose worker stopped renewing its lease, else the next queued job.

    The queue is fair between organizations: the next job is of the organization with the
    fewest jobs running now, then of the one whose last job started longest ago (one that
    never started any goes first), and within it the oldest. A tenant with ten large jobs
    queued therefore delays another's single job by at most the one of its jobs already
    running, on a server with one worker; every worker process follows the same order.
    """
    job = session.scalar(claim_lock(session, select(ExportJob).where(
        ExportJob.status == "running", ExportJob.lease_until < now).order_by(ExportJob.id).limit(1)))
    if job is None:
        job = session.scalar(claim_lock(session, _fair_queue(), of=ExportJob))
    if job is None:
        return None
    if job.attempts >= MAX_ATTEMPTS:
        job.status = "failed"
        job.error = f"gave up after {job.attempts} attempts"
        job.finished_at = now
        return job
    job.status = "running"
    job.attempts += 1
    job.lease_until = now + lease
    job.started_at = now
    job.rows_done = 0
    session.flush()
    return job


def _fair_queue() -> Select[ExportJob]:
    """The next queued job, in the fair order of ``claim_job``."""
    per_org = (
        select(Project.org_id.label("org_id"),
               func.count(case((ExportJob.status == "running", 1))).label("running"),
               func.max(ExportJob.started_at).label("last_started"))
        .join(Project, Project.id == ExportJob.project_id)
        .group_by(Project.org_id)
        .subquery()
    )
    return (
        select(ExportJob)
        .join(Project, Project.id == ExportJob.project_id)
        .join(per_org, per_org.c.org_id == Project.org_id)
        .where(ExportJob.status == "queued")
        .order_by(per_org.c.running, per_org.c.last_started.is_not(None), per_org.c.last_started, ExportJob.id)
        .limit(1)
    )


def still_mine(session: Session, *, job_id: int, attempt: int) -> ExportJob | None:
    """The job, if this attempt still holds it (another worker may have taken it over)."""
    job = session.get(ExportJob, job_id, with_for_update=True)
    if job is None or job.status != "running" or job.attempts != attempt:
        return None
    return job


EXPORTS = "exports/"


def file_key(job_id: int, attempt: int, name: str) -> str:
    """The store key of the file one attempt of a job writes."""
    return f"{EXPORTS}{job_id}-{attempt}-{name}"


def orphaned(session: Session, *, keys: list[str]) -> list[str]:
    """Of the store's export keys, those no job needs: neither a done job's file nor the one
    the attempt that holds a running job may be putting there right now (a process that died
    between putting its file and recording it, an attempt that had lost its job, an expired
    job's file whose deletion failed)."""
    owners: dict[str, tuple[int, int]] = {}
    for key in keys:
        parts = key[len(EXPORTS):].split("-", 2)
        if key.startswith(EXPORTS) and len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            owners[key] = int(parts[0]), int(parts[1])
    ids = sorted({job_id for job_id, _ in owners.values()})
    jobs = {job.id: job for chunk in range(0, len(ids), 500)
            for job in session.scalars(select(ExportJob).where(ExportJob.id.in_(ids[chunk:chunk + 500])))}
    doomed = []
    for key, (job_id, attempt) in owners.items():
        job = jobs.get(job_id)
        needed = job is not None and (job.file_key == key or (job.status == "running" and job.attempts == attempt))
        if not needed:
            doomed.append(key)
    return doomed
