"""Synthetic data verified by people: generation batches.

A batch asks one or more of the organization's model endpoints (domain.model_endpoints) for
``count`` candidate items through a template whose fields are the batch's parameters
(``{topic}``, ``{language}``, ``{index}``, ``{seed}``), and adds each valid, new candidate
to the project as a task for people: what they do is the project's task type.

* **One candidate per item** (``verify``, ``text``, ``chat`` with one endpoint, any type):
  the answer is a JSON object that becomes the task's ``data``, checked like an imported
  task's; endpoints take the items in turn.
* **A comparison** (``pairwise``, ``ranking``, ``chat`` with two endpoints or more): every
  endpoint answers the same prompt in plain text; the answers become the task's responses
  (``a`` / ``b``, ``responses``, or a chat's ``candidates``) in an order drawn from the seed,
  so no endpoint always stands first.

Each task carries ``metadata.provenance``: the models, the template, the parameters, the
batch and the item's index, and its ``unique_id`` is ``generated-{batch}-{index}``, so an
item written twice (a batch taken over) is one task. A candidate whose text nearly
duplicates one kept before (in this batch or among the project's latest tasks,
domain.near_duplicates) is dropped and counted in ``duplicates``; one the endpoint could not
give (a timeout, HTML, an answer outside the task's schema) is counted in ``failed`` with
its reason. A batch runs like a pre-label job: claimed under a lease, in chunks, each chunk
written with the cursor in one transaction (workers.generator).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.db.dialect import claim_lock
from qistas.db.models import GenerationBatch, ModelEndpoint, Project, Task, User
from qistas.domain import audit, imports
from qistas.domain.jsonsafe import check_storable
from qistas.domain.model_endpoints import model_name
from qistas.domain.prompts import check_template
from qistas.domain.tasktypes import Spec, parse_spec, validate_data
from qistas.errors import Invalid, NotFound
from qistas.policies import ensure_customer_access_to, ensure_endpoint_usable

FIELDS = frozenset({"topic", "language", "index", "seed"})
STATUSES = ("queued", "running", "done", "failed")
RUNNING = ("queued", "running")
MAX_COUNT = 1000
MAX_TOPICS = 100
MAX_TOPIC_CHARS = 200
MAX_BATCH_ENDPOINTS = 10
MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=120)
SAMPLE = 20
#: The project's latest tasks a batch compares its candidates with.
EXISTING = 20_000


def is_comparison(spec: Spec, endpoints: int) -> bool:
    return spec.type in ("pairwise", "ranking") or (spec.type == "chat" and endpoints >= 2)


def _check_endpoints(spec: Spec, count: int) -> None:
    if not 1 <= count <= MAX_BATCH_ENDPOINTS:
        raise Invalid(f"endpoints must name 1 to {MAX_BATCH_ENDPOINTS} model endpoints", details={"field": "endpoints"},
                      reason="too_short" if count < 1 else "too_long",
                      params={"min_length": 1, "max_length": MAX_BATCH_ENDPOINTS})
    if spec.type == "pairwise" and count != 2:
        raise Invalid("a pairwise project compares the answers of exactly 2 endpoints", details={"field": "endpoints"},
                      reason="endpoints_pairwise")
    if spec.type == "ranking" and count < 2:
        raise Invalid("a ranking project ranks the answers of 2 endpoints or more", details={"field": "endpoints"},
                      reason="endpoints_ranking")


def create_batch(session: Session, *, project: Project, endpoints: list[ModelEndpoint], actor: User,
                 template: Any, params: dict[str, Any], via: str | None = None) -> GenerationBatch:
    """Queue a batch, with its audit event (``via``: the way in when not the API); its
    endpoints must be the project's organization's (404 otherwise)."""
    spec = parse_spec(project.task_spec)
    for endpoint in endpoints:
        ensure_endpoint_usable(endpoint.org_id, project)
    if len({e.id for e in endpoints}) != len(endpoints):
        raise Invalid("endpoints must not name one endpoint twice", details={"field": "endpoints"})
    _check_endpoints(spec, len(endpoints))
    checked = check_template(template, None, fields=set(FIELDS))
    check_storable(params, "params")
    batch = GenerationBatch(
        project_id=project.id, endpoint_ids=[e.id for e in endpoints], requested_by=actor.id, template=checked,
        params=params, status="queued", attempts=0, next_index=0, generated=0, duplicates=0, failed=0,
        failures=[], dropped=[], requests=0, input_tokens=0, output_tokens=0, cost=0.0)
    session.add(batch)
    session.flush()
    details: dict[str, Any] = {"endpoints": list(batch.endpoint_ids), "count": params.get("count")}
    audit.record(session, actor=actor, action="generation.create", object_type="generation_batch",
                 object_id=batch.id, org_id=project.org_id, details={**details, "via": via} if via else details)
    return batch


def get_batch(session: Session, *, batch_id: int, actor: User) -> GenerationBatch:
    batch = session.get(GenerationBatch, batch_id)
    if batch is None:
        raise NotFound("generation batch not found")
    ensure_customer_access_to(actor, session.get(Project, batch.project_id), what="generation batch")
    return batch


def list_batches(session: Session, *, project: Project, limit: int = 50) -> list[GenerationBatch]:
    """The project's newest batches, newest first (the caller has checked access to the project)."""
    return list(session.scalars(select(GenerationBatch).where(GenerationBatch.project_id == project.id)
                                .order_by(GenerationBatch.id.desc()).limit(limit)))


def usable_endpoints(session: Session, *, project: Project) -> list[ModelEndpoint]:
    """The active model endpoints a batch of this project may ask: its organization's."""
    return list(session.scalars(select(ModelEndpoint).where(
        ModelEndpoint.org_id == project.org_id, ModelEndpoint.is_active.is_(True)).order_by(ModelEndpoint.id)))


def models_of(session: Session, batch: GenerationBatch) -> list[str]:
    found = {e.id: e for e in session.scalars(select(ModelEndpoint).where(ModelEndpoint.id.in_(batch.endpoint_ids)))}
    return [model_name(found[i]) for i in batch.endpoint_ids if i in found]


# --- the worker's steps -------------------------------------------------------------------


def claim_batch(session: Session, *, now: datetime) -> GenerationBatch | None:
    """A running batch whose worker stopped renewing its lease, else the oldest queued one."""
    batch = session.scalar(claim_lock(session, select(GenerationBatch).where(
        GenerationBatch.status == "running", GenerationBatch.lease_until < now).order_by(GenerationBatch.id).limit(1)))
    if batch is None:
        batch = session.scalar(claim_lock(session, select(GenerationBatch).where(
            GenerationBatch.status == "queued").order_by(GenerationBatch.id).limit(1)))
    if batch is None:
        return None
    if batch.attempts >= MAX_ATTEMPTS:
        finish(batch, now=now, error=f"gave up after {batch.attempts} attempts")
        return batch
    batch.status = "running"
    batch.attempts += 1
    batch.lease_until = now + LEASE
    batch.started_at = batch.started_at or now
    session.flush()
    return batch


def still_mine(session: Session, *, batch_id: int, attempt: int) -> GenerationBatch | None:
    batch = session.get(GenerationBatch, batch_id, with_for_update=True)
    if batch is None or batch.status != "running" or batch.attempts != attempt:
        return None
    return batch


def finish(batch: GenerationBatch, *, now: datetime, error: str | None = None) -> None:
    batch.status = "failed" if error else "done"
    batch.error = error[:500] if error else None
    batch.finished_at = now
    batch.lease_until = None


def record_failure(batch: GenerationBatch, *, index: int, reason: str) -> None:
    batch.failed += 1
    if len(batch.failures or []) < SAMPLE:
        batch.failures = [*(batch.failures or []), {"index": index, "reason": reason[:500]}]


def record_duplicate(batch: GenerationBatch, *, index: int, of: str) -> None:
    batch.duplicates += 1
    if len(batch.dropped or []) < SAMPLE:
        batch.dropped = [*(batch.dropped or []), {"index": index, "of": of[:300]}]


def inputs(params: dict[str, Any], index: int) -> dict[str, Any]:
    """The template's fields for item ``index``: the topics taken in turn from a place the seed draws."""
    topics = params.get("topics") or [""]
    seed = int(params.get("seed", 0))
    start = random.Random(seed).randrange(len(topics))
    return {"topic": topics[(start + index) % len(topics)], "language": params.get("language") or "",
            "index": index, "seed": seed}


def comparison_data(spec: Any, prompt: str, answers: list[str], *, seed: int, index: int) -> tuple[dict[str, Any],
                                                                                                 list[int]]:
    """A comparison task's data, and the order its responses are shown in (endpoint positions)."""
    order = list(range(len(answers)))
    random.Random(f"{seed}:{index}").shuffle(order)
    shown = [answers[i] for i in order]
    if spec.type == "pairwise":
        return {spec.prompt_field: prompt, spec.a_field: shown[0], spec.b_field: shown[1]}, order
    if spec.type == "ranking":
        return {spec.prompt_field: prompt, spec.responses_field: shown}, order
    return {spec.messages_field: [{"role": "user", "content": prompt}], spec.candidates_field: shown}, order


def check_candidate(spec: Spec, data: Any) -> dict[str, Any]:
    """A candidate's data, checked as an imported task's; ``Invalid`` says why not."""
    validate_data(spec, data)
    check_storable(data, "data")
    assert isinstance(data, dict)
    return data


def text_of(spec: Any, data: dict[str, Any], comparison: bool) -> str:
    """What near-duplicates are judged on: a comparison's prompt, else every text of the data."""
    if comparison:
        field = str(getattr(spec, "prompt_field", None) or getattr(spec, "messages_field", ""))
        value = data.get(field)
        if isinstance(value, list):
            return " ".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
        return value if isinstance(value, str) else ""
    return " ".join(v for _, v in sorted(data.items()) if isinstance(v, str))


def existing_texts(session: Session, *, project_id: int, spec: Spec, comparison: bool) -> list[tuple[str, str]]:
    """(text, key) of the project's latest tasks, which candidates must not nearly duplicate."""
    rows = session.execute(select(Task.id, Task.unique_id, Task.data).where(Task.project_id == project_id)
                           .order_by(Task.id.desc()).limit(EXISTING))
    return [(text_of(spec, data, comparison), unique_id or f"task {task_id}") for task_id, unique_id, data in rows
            if isinstance(data, dict)]


def unique_id(batch_id: int, index: int) -> str:
    return f"generated-{batch_id}-{index}"


def add_tasks(session: Session, *, project: Project, rows: list[dict[str, Any]]) -> int:
    """Add the kept candidates as pending tasks; an item written before (same unique_id) is skipped."""
    if not rows:
        return 0
    return imports.import_tasks(session, project=project, rows=enumerate(rows, start=1)).created


def parse_candidate(content: Any) -> Any:
    """A candidate's data from a message's content: one JSON object (a fenced block tolerated)."""
    if not isinstance(content, str):
        raise Invalid("the answer has no text content")
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        raise Invalid(f"the answer is not JSON: {content[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise Invalid("the answer is not a JSON object")
    return parsed
