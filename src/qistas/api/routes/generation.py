"""Generation batches: candidate items a project's model endpoints generate for people to verify."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from qistas.api.deps import Actor, Db, Id
from qistas.api.idempotency import IDEMPOTENT
from qistas.api.schemas.generation import (
    GenerationBatchPage,
    GenerationBatchRead,
    GenerationCreate,
    GenerationDuplicate,
    GenerationFailure,
)
from qistas.db.models import GenerationBatch, Project
from qistas.db.unit_of_work import write
from qistas.domain import generation
from qistas.domain import model_endpoints as endpoints
from qistas.policies import ensure_customer_access

router = APIRouter(tags=["models"])
PAGE = 50


def batch_read(batch: GenerationBatch, models: list[str]) -> GenerationBatchRead:
    return GenerationBatchRead(
        id=batch.id, project_id=batch.project_id, endpoint_ids=list(batch.endpoint_ids), models=models,
        template=dict(batch.template), params=dict(batch.params), status=batch.status, count=batch.params["count"],
        next_index=batch.next_index, generated=batch.generated, duplicates=batch.duplicates, failed=batch.failed,
        failures=[GenerationFailure(**f) for f in batch.failures or []],
        dropped=[GenerationDuplicate(**d) for d in batch.dropped or []], requests=batch.requests,
        input_tokens=batch.input_tokens, output_tokens=batch.output_tokens, cost=round(batch.cost, 6),
        error=batch.error, created_at=batch.created_at, started_at=batch.started_at, finished_at=batch.finished_at,
    )


@router.post("/projects/{project_id}/generate", status_code=202, response_model=GenerationBatchRead,
             dependencies=[IDEMPOTENT])
def create_generation_batch(project_id: Id, body: GenerationCreate, actor: Actor, db: Db) -> GenerationBatchRead:
    """Queue a batch that asks model endpoints for candidate items; each new one becomes a task."""

    def work(session: Session) -> GenerationBatchRead:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        found = [endpoints.get_endpoint(session, endpoint_id=i) for i in body.endpoints]
        params = body.model_dump(exclude={"endpoints", "template"})
        batch = generation.create_batch(session, project=project, endpoints=found, actor=actor,
                                        template=body.template, params=params)
        return batch_read(batch, [endpoints.model_name(e) for e in found])

    return write(db, work)


@router.get("/projects/{project_id}/generation-batches", response_model=GenerationBatchPage)
def list_generation_batches(project_id: Id, actor: Actor, db: Db) -> GenerationBatchPage:
    """The project's newest generation batches."""

    def work(session: Session) -> GenerationBatchPage:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        found = generation.list_batches(session, project=project, limit=PAGE)
        return GenerationBatchPage(items=[batch_read(b, generation.models_of(session, b)) for b in found])

    return write(db, work)


@router.get("/generation-batches/{batch_id}", response_model=GenerationBatchRead)
def get_generation_batch(batch_id: Id, actor: Actor, db: Db) -> GenerationBatchRead:
    def work(session: Session) -> GenerationBatchRead:
        batch = generation.get_batch(session, batch_id=batch_id, actor=actor)
        return batch_read(batch, generation.models_of(session, batch))

    return write(db, work)
