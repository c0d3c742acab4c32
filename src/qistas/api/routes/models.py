"""Model endpoints (an organization's OpenAI-compatible APIs) and the projects' pre-label jobs."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, AppSettings, Db, Id
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.models import (
    ModelEndpointCreate,
    ModelEndpointRead,
    ModelUsage,
    PrelabelCreate,
    PrelabelFailure,
    PrelabelJobPage,
    PrelabelJobRead,
)
from qistas.db.models import ModelEndpoint, PrelabelJob, Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import model_endpoints as endpoints
from qistas.domain.destinations import Policy
from qistas.domain.sealing import Keyring
from qistas.policies import (
    ensure_customer_access,
    ensure_endpoint_manager,
)

router = APIRouter(tags=["models"])


def endpoint_read(e: ModelEndpoint) -> ModelEndpointRead:
    return ModelEndpointRead(
        id=e.id, org_id=e.org_id, name=e.name, base_url=e.base_url, model=e.model,
        has_api_key=e.api_key_sealed is not None, max_concurrency=e.max_concurrency,
        requests_per_minute=e.requests_per_minute, timeout_seconds=e.timeout_seconds, allow_private=e.allow_private,
        price_input_per_1k=e.price_input_per_1k, price_output_per_1k=e.price_output_per_1k, created_at=e.created_at,
    )


def job_read(job: PrelabelJob, model: str) -> PrelabelJobRead:
    return PrelabelJobRead(
        id=job.id, project_id=job.project_id, endpoint_id=job.endpoint_id, model=model, standing=job.standing,
        status=job.status,
        tasks_total=job.tasks_total, done=job.done, failed=job.failed, skipped=job.skipped,
        failures=[PrelabelFailure(**f) for f in job.failures or []], requests=job.requests,
        input_tokens=job.input_tokens, output_tokens=job.output_tokens, cost=round(job.cost, 6), error=job.error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at, **{"as": job.mode},
    )


@router.post("/model-endpoints", status_code=201, response_model=ModelEndpointRead, dependencies=[IDEMPOTENT])
def create_endpoint(body: ModelEndpointCreate, actor: Actor, db: Db, settings: AppSettings) -> ModelEndpointRead:
    """Register an OpenAI-compatible endpoint; its API key is stored sealed and never returned."""

    def work(session: Session) -> ModelEndpointRead:
        org = endpoints.endpoint_org(session, actor=actor, slug=body.org, allow_private=body.allow_private)
        fields = body.model_dump(exclude={"org", "api_key"})
        endpoint = endpoints.create_endpoint(session, org=org, fields=fields, api_key=body.api_key,
                                             policy=Policy.from_settings(settings),
                                             keyring=Keyring.from_settings(settings), actor=actor)
        return endpoint_read(endpoint)

    return write(db, work)


@router.get("/model-endpoints", response_model=list[ModelEndpointRead])
def list_endpoints(actor: Actor, db: Db) -> list[ModelEndpointRead]:
    def work(session: Session) -> list[ModelEndpointRead]:
        return [endpoint_read(e) for e in endpoints.list_endpoints(session, actor=actor)]

    return write(db, work)


@router.get("/model-endpoints/{endpoint_id}", response_model=ModelEndpointRead)
def get_endpoint(endpoint_id: Id, actor: Actor, db: Db) -> ModelEndpointRead:
    def work(session: Session) -> ModelEndpointRead:
        endpoint = endpoints.get_endpoint(session, endpoint_id=endpoint_id)
        ensure_endpoint_manager(actor, endpoint.org_id)
        return endpoint_read(endpoint)

    return write(db, work)


@router.delete("/model-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: Id, actor: Actor, db: Db) -> Response:
    """Remove an endpoint and forget its key; its jobs stay readable, unfinished ones stop."""

    def work(session: Session) -> None:
        endpoint = endpoints.get_endpoint(session, endpoint_id=endpoint_id)
        ensure_endpoint_manager(actor, endpoint.org_id)
        endpoints.delete_endpoint(session, endpoint=endpoint, actor=actor)

    write(db, work)
    return Response(status_code=204)


@router.post("/projects/{project_id}/prelabel", status_code=202, response_model=PrelabelJobRead,
             dependencies=[IDEMPOTENT])
def create_prelabel_job(project_id: Id, body: PrelabelCreate, actor: Actor, db: Db) -> PrelabelJobRead:
    """Queue a job that sends the project's tasks to a model endpoint; answers become predictions,
    or the model's own annotations (``"as": "annotations"``)."""

    def work(session: Session) -> PrelabelJobRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        endpoint = endpoints.get_endpoint(session, endpoint_id=body.endpoint)
        job = endpoints.create_job(session, project=project, endpoint=endpoint, actor=actor,
                                   template=body.template, only_pending=body.only_pending, mode=body.as_,
                                   standing=body.standing)
        return job_read(job, endpoints.model_name(endpoint))

    return write(db, work)


@router.get("/projects/{project_id}/prelabel-jobs", response_model=PrelabelJobPage)
def list_prelabel_jobs(project_id: Id, actor: Actor, db: Db) -> PrelabelJobPage:
    """The project's newest pre-label jobs and its model accounting over all of them."""

    def work(session: Session) -> PrelabelJobPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        jobs = endpoints.list_jobs(session, project=project)
        return PrelabelJobPage(items=[job_read(j, endpoints.model_of(session, j)) for j in jobs],
                               usage=ModelUsage(**endpoints.usage(session, project=project)))

    return write(db, work)


@router.get("/prelabel-jobs/{job_id}", response_model=PrelabelJobRead)
def get_prelabel_job(job_id: Id, actor: Actor, db: Db) -> PrelabelJobRead:
    def work(session: Session) -> PrelabelJobRead:
        job = endpoints.get_job(session, job_id=job_id, actor=actor)
        return job_read(job, endpoints.model_of(session, job))

    return write(db, work)


@router.post("/prelabel-jobs/{job_id}/stop", response_model=PrelabelJobRead)
def stop_prelabel_job(job_id: Id, actor: Actor, db: Db) -> PrelabelJobRead:
    """Stop a job (a standing one above all): status ``stopped``; what it answered stays."""

    def work(session: Session) -> PrelabelJobRead:
        job = endpoints.get_job(session, job_id=job_id, actor=actor)
        endpoints.stop_job(session, job=job, actor=actor, now=utcnow())
        return job_read(job, endpoints.model_of(session, job))

    return write(db, work)
