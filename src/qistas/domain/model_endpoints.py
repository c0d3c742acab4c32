"""Models in the loop: an organization's model endpoints, and pre-label jobs that send a
project's tasks to one and store each valid answer as a prediction (domain.predictions).

An endpoint is an OpenAI-compatible chat-completions API (vLLM, llama.cpp's server, Ollama,
TGI, hosted APIs). Its API key is sealed at rest and never shown again. Its base URL passes
the SSRF guard (domain.destinations) when registered and at every connect; an admin may let
one endpoint reach private addresses, where self-hosted models live.

A job is ``queued``, then ``running`` under a lease that the worker renews (workers.prelabeler);
a running job whose lease ran out was left by a process that died and is claimed again. A
task that already carries this endpoint's prediction is skipped, so a job taken over goes on
where the other stopped. A task whose answer cannot be had (the template, the server, the
answer) is counted as failed with its reason; the task is served to people as usual.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from qistas.db.dialect import claim_lock
from qistas.db.enums import TaskStatus
from qistas.db.models import ModelEndpoint, Organization, PrelabelJob, Project, Task, User
from qistas.domain import audit, users
from qistas.domain.destinations import Policy, resolve
from qistas.domain.predictions import MAX_PREDICTIONS
from qistas.domain.prompts import check_template
from qistas.domain.sealing import Keyring
from qistas.domain.tasktypes import parse_spec
from qistas.errors import Invalid, NotFound
from qistas.policies import (
    ensure_customer_access_to,
    ensure_endpoint_manager,
    ensure_endpoint_usable,
    ensure_may_allow_private,
    ensure_org_reachable,
    is_admin,
)

MODEL_API_KEY = "model-api-key"
MAX_ENDPOINTS = 50
MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=120)
STANDING_EVERY = timedelta(seconds=5)  # how often a standing job looks for new tasks
FAILURE_SAMPLE = 20
JOB_PAGE = 50
STATUSES = ("queued", "running", "waiting", "done", "failed", "stopped")


def model_name(endpoint: ModelEndpoint) -> str:
    """The ``model`` of the predictions it makes: the endpoint's name and model id."""
    return f"{endpoint.name}/{endpoint.model}"[:200]


def endpoint_org(session: Session, *, actor: User, slug: str | None, allow_private: bool) -> Organization:
    """The organization a new endpoint of ``actor``'s belongs to: the one named (an admin's
    must be), else the actor's own; the actor must manage its endpoints, and only an admin
    may let one reach private addresses."""
    if slug is not None:
        org = ensure_org_reachable(actor, users.find_org(session, slug), slug)
    elif is_admin(actor):
        raise Invalid("org is required of an admin: the organization the endpoint belongs to",
                      details={"field": "org"}, reason="missing")
    else:
        ensure_endpoint_manager(actor, actor.org_id)
        own = session.get(Organization, actor.org_id)
        assert own is not None
        org = own
    ensure_endpoint_manager(actor, org.id)
    if allow_private:
        ensure_may_allow_private(actor)
    return org


def _via(details: dict[str, Any], via: str | None) -> dict[str, Any]:
    """An audit event's details, with the way in (``console``) when it was not the API."""
    return {**details, "via": via} if via else details


def create_endpoint(session: Session, *, org: Organization, fields: dict[str, Any], api_key: str | None,
                    policy: Policy, keyring: Keyring, actor: User, via: str | None = None) -> ModelEndpoint:
    """Register an endpoint, with its audit event; its base URL is checked now (and again at
    every connect)."""
    base_url = fields["base_url"].rstrip("/")
    allow = Policy(allow_private=policy.allow_private or fields["allow_private"],
                   allowed_networks=policy.allowed_networks)
    resolve(base_url, allow, field_name="base_url")
    active = session.scalar(select(func.count()).select_from(ModelEndpoint).where(
        ModelEndpoint.org_id == org.id, ModelEndpoint.is_active.is_(True)))
    if (active or 0) >= MAX_ENDPOINTS:
        raise Invalid(f"an organization has at most {MAX_ENDPOINTS} model endpoints", details={"field": "name"},
                      reason="too_many_endpoints", params={"max": MAX_ENDPOINTS})
    endpoint = ModelEndpoint(
        org_id=org.id, **{**fields, "base_url": base_url}, is_active=True,
        api_key_sealed=keyring.seal(api_key.encode(), purpose=MODEL_API_KEY) if api_key else None,
    )
    session.add(endpoint)
    session.flush()
    audit.record(session, actor=actor, action="model_endpoint.create", object_type="model_endpoint",
                 object_id=endpoint.id, org_id=org.id,
                 details=_via({"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model,
                               "allow_private": endpoint.allow_private}, via))
    return endpoint


def api_key(endpoint: ModelEndpoint, *, keyring: Keyring) -> str | None:
    if endpoint.api_key_sealed is None:
        return None
    return keyring.open(endpoint.api_key_sealed, purpose=MODEL_API_KEY).decode()


def reseal_keys(session: Session, *, keyring: Keyring) -> int:
    """Seal again with the current key every API key sealed with a previous one; how many."""
    changed = 0
    for endpoint in session.scalars(select(ModelEndpoint).where(ModelEndpoint.api_key_sealed.is_not(None))):
        sealed = endpoint.api_key_sealed
        if sealed is not None and not keyring.is_current(sealed):
            endpoint.api_key_sealed = keyring.seal(keyring.open(sealed, purpose=MODEL_API_KEY), purpose=MODEL_API_KEY)
            changed += 1
    session.flush()
    return changed


def list_endpoints(session: Session, *, actor: User) -> list[ModelEndpoint]:
    """The actor's organization's endpoints; an admin's: every organization's."""
    query = select(ModelEndpoint).where(ModelEndpoint.is_active.is_(True))
    if actor.org_id is not None:
        ensure_endpoint_manager(actor, actor.org_id)
        query = query.where(ModelEndpoint.org_id == actor.org_id)
    else:
        ensure_endpoint_manager(actor, None)
    return list(session.scalars(query.order_by(ModelEndpoint.id)))


def get_endpoint(session: Session, *, endpoint_id: int) -> ModelEndpoint:
    endpoint = session.get(ModelEndpoint, endpoint_id)
    if endpoint is None or not endpoint.is_active:
        raise NotFound("model endpoint not found")
    return endpoint


def delete_endpoint(session: Session, *, endpoint: ModelEndpoint, actor: User, via: str | None = None) -> None:
    """Deactivate, with its audit event: its jobs stay readable; queued and running ones stop
    with an error."""
    endpoint.is_active = False
    endpoint.api_key_sealed = None
    session.flush()
    audit.record(session, actor=actor, action="model_endpoint.delete", object_type="model_endpoint",
                 object_id=endpoint.id, org_id=endpoint.org_id, details=_via({}, via) or None)


MODES = ("predictions", "annotations")


def create_job(session: Session, *, project: Project, endpoint: ModelEndpoint, actor: User,
               template: Any, only_pending: bool, mode: str = "predictions", standing: bool = False,
               via: str | None = None) -> PrelabelJob:
    """Queue a job, with its audit event; its answers become predictions, or
    (``mode="annotations"``) the answers of the endpoint's model annotator
    (domain.model_annotators), on pending tasks only. A ``standing`` job does not end with its
    pass: it answers the tasks added afterwards too, checking for them every
    ``STANDING_EVERY``, until it is stopped (``stop_job``). Another organization's endpoint
    is not found."""
    ensure_endpoint_usable(endpoint.org_id, project)
    if mode not in MODES:
        raise Invalid(f"as must be one of {', '.join(MODES)}", details={"field": "as"})
    if mode == "annotations" and not only_pending:
        raise Invalid("a model answers as an annotator only tasks still pending (only_pending: true)",
                      details={"field": "only_pending"})
    checked = check_template(template, parse_spec(project.task_spec))
    job = PrelabelJob(project_id=project.id, endpoint_id=endpoint.id, requested_by=actor.id, template=checked,
                      only_pending=only_pending, mode=mode, standing=standing, status="queued", attempts=0, done=0,
                      failed=0, skipped=0, failures=[], requests=0, input_tokens=0, output_tokens=0, cost=0.0)
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="prelabel.create", object_type="prelabel_job", object_id=job.id,
                 org_id=project.org_id,
                 details=_via({"endpoint": endpoint.id, "as": job.mode, "standing": job.standing}, via))
    return job


def get_job(session: Session, *, job_id: int, actor: User) -> PrelabelJob:
    job = session.get(PrelabelJob, job_id)
    if job is None:
        raise NotFound("pre-label job not found")
    ensure_customer_access_to(actor, session.get(Project, job.project_id), what="pre-label job")
    return job


def list_jobs(session: Session, *, project: Project, limit: int = JOB_PAGE) -> list[PrelabelJob]:
    """The project's newest jobs, newest first (the caller has checked access to the project)."""
    return list(session.scalars(select(PrelabelJob).where(PrelabelJob.project_id == project.id)
                                .order_by(PrelabelJob.id.desc()).limit(limit)))


def model_of(session: Session, job: PrelabelJob) -> str:
    """The ``model`` of the job's predictions (its endpoint's, deleted or not)."""
    endpoint = session.get(ModelEndpoint, job.endpoint_id)
    assert endpoint is not None
    return model_name(endpoint)


def usage(session: Session, *, project: Project) -> dict[str, Any]:
    """The project's model accounting, over all its pre-label jobs."""
    row = session.execute(select(
        func.count(), func.coalesce(func.sum(PrelabelJob.requests), 0),
        func.coalesce(func.sum(PrelabelJob.input_tokens), 0), func.coalesce(func.sum(PrelabelJob.output_tokens), 0),
        func.coalesce(func.sum(PrelabelJob.cost), 0.0), func.coalesce(func.sum(PrelabelJob.done), 0),
        func.coalesce(func.sum(PrelabelJob.failed), 0),
    ).where(PrelabelJob.project_id == project.id)).one()
    jobs, requests, tokens_in, tokens_out, cost, done, failed = row
    return {"jobs": jobs, "requests": int(requests), "input_tokens": int(tokens_in),
            "output_tokens": int(tokens_out), "cost": round(float(cost), 6), "done": int(done),
            "failed": int(failed)}


def claim_job(session: Session, *, now: datetime) -> PrelabelJob | None:
    """A running job whose worker stopped renewing its lease, else the oldest queued one of
    an endpoint no live job uses: one job at a time per endpoint, so its concurrency and rate
    limits hold across server processes."""
    job = session.scalar(claim_lock(session, select(PrelabelJob).where(
        PrelabelJob.status == "running", PrelabelJob.lease_until < now).order_by(PrelabelJob.id).limit(1)))
    if job is None:
        busy = select(PrelabelJob.endpoint_id).where(PrelabelJob.status == "running", PrelabelJob.lease_until >= now)
        job = session.scalar(claim_lock(session, select(PrelabelJob).where(
            due(now), PrelabelJob.endpoint_id.not_in(busy)).order_by(PrelabelJob.id).limit(1)))
    if job is None:
        return None
    if job.attempts >= MAX_ATTEMPTS:
        finish(job, now=now, error=f"gave up after {job.attempts} attempts")
        return job
    job.status = "running"
    job.attempts += 1
    job.lease_until = now + LEASE
    job.started_at = job.started_at or now
    session.flush()
    return job


def due(now: datetime) -> ColumnElement[bool]:
    """Jobs waiting to run: queued ones, and standing ones whose wait is over."""
    return (PrelabelJob.status == "queued") | ((PrelabelJob.status == "waiting") & (PrelabelJob.lease_until <= now))


def end_pass(job: PrelabelJob, *, now: datetime) -> None:
    """A pass over the project's tasks is over: a standing job waits for more, any other is done."""
    if not job.standing:
        finish(job, now=now)
        return
    job.status = "waiting"
    job.lease_until = now + STANDING_EVERY
    job.attempts = 0  # the attempts of one pass: a standing job gives up only on one that fails thrice
    job.tasks_total = None


def stop_job(session: Session, *, job: PrelabelJob, actor: User, now: datetime, via: str | None = None) -> None:
    """Stop a job, with its audit event: a running one ends after the chunk in hand (its worker
    finds it no longer its own); its counts and accounting stay. A job already over is left as
    it is."""
    if job.status in ("done", "failed", "stopped"):
        return
    job.status, job.finished_at, job.lease_until = "stopped", now, None
    session.flush()
    project = session.get(Project, job.project_id)
    assert project is not None
    audit.record(session, actor=actor, action="prelabel.stop", object_type="prelabel_job", object_id=job.id,
                 org_id=project.org_id, details=_via({}, via) or None)


def still_mine(session: Session, *, job_id: int, attempt: int) -> PrelabelJob | None:
    job = session.get(PrelabelJob, job_id, with_for_update=True)
    if job is None or job.status != "running" or job.attempts != attempt:
        return None
    return job


def finish(job: PrelabelJob, *, now: datetime, error: str | None = None) -> None:
    job.status = "failed" if error else "done"
    job.error = error[:500] if error else None
    job.finished_at = now
    job.lease_until = None


def tasks_to_label(session: Session, *, job: PrelabelJob, limit: int) -> list[Task]:
    """The next tasks the job sends, in id order, after the last one sent."""
    query = select(Task).where(Task.project_id == job.project_id, Task.id > (job.last_task_id or 0))
    if job.only_pending:
        query = query.where(Task.status == TaskStatus.PENDING)
    else:
        query = query.where(Task.status != TaskStatus.CANCELED)
    return list(session.scalars(query.order_by(Task.id).limit(limit)))


def count_tasks(session: Session, *, job: PrelabelJob) -> int:
    query = select(func.count()).select_from(Task).where(Task.project_id == job.project_id)
    status = Task.status == TaskStatus.PENDING if job.only_pending else Task.status != TaskStatus.CANCELED
    return int(session.scalar(query.where(status)) or 0)


def has_prediction(task: Task, model: str) -> bool:
    return any(p.get("model") == model for p in task.predictions or ())


def add_prediction(task: Task, *, model: str, answer: dict[str, Any], score: float | None) -> bool:
    """Add ``model``'s prediction to the task; False when it already has the most it may carry."""
    kept = [p for p in task.predictions or () if p.get("model") != model]
    if len(kept) >= MAX_PREDICTIONS:
        return False
    task.predictions = [*kept, {"model": model, "answer": answer, "score": score}]
    return True


def record_failure(job: PrelabelJob, *, task_id: int, reason: str) -> None:
    job.failed += 1
    if len(job.failures or []) < FAILURE_SAMPLE:
        job.failures = [*(job.failures or []), {"task_id": task_id, "reason": reason[:500]}]
