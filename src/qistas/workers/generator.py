"""Runs generation batches: claim one, ask its endpoints for each item, drop near-duplicates,
add the rest to the project as tasks and count the failures with their reason
(domain.generation).

Items go in index order, a chunk at a time (two rounds of the endpoints' smallest
``max_concurrency``); each chunk's tasks, counts and cursor are written in one transaction
that also renews the lease, so a batch taken over goes on after the last chunk written. The
near-duplicate index is built from the project's latest tasks when the batch is claimed,
and grows with each chunk once written.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qistas.db.models import GenerationBatch, ModelEndpoint, Project
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import generation
from qistas.domain import model_endpoints as endpoints
from qistas.domain.near_duplicates import Index
from qistas.domain.prompts import TemplateError, render
from qistas.domain.tasktypes import Spec, parse_spec
from qistas.errors import ConfigError, Invalid
from qistas.workers.chat import Endpoint, Limiter, Reply, Stopped, ask
from qistas.workers.model_jobs import ROUNDS, Abandoned, ModelJobWorker, chunk_lease, endpoint_call
from qistas.workers.outbound import deadline_client

log = logging.getLogger("qistas.workers")


@dataclass
class Asked:
    """One endpoint of a batch: where to send, how fast, at what price."""

    endpoint: Endpoint
    model: str
    per_minute: int | None
    prices: tuple[float, float]


@dataclass
class Item:
    index: int
    replies: list[Reply] = field(default_factory=list)
    data: dict[str, Any] | None = None
    reason: str | None = None
    models: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    batch_id: int
    attempt: int
    project_id: int
    asked: tuple[Asked, ...]
    concurrency: int
    template: dict[str, str]
    params: dict[str, Any]
    spec: Spec
    comparison: bool
    lease: timedelta

    @property
    def chunk(self) -> int:
        return self.concurrency * ROUNDS


class Generator(ModelJobWorker[Plan]):
    def _waiting(self, session: Session, *, now: datetime) -> bool:
        return session.scalar(select(GenerationBatch.id).where(or_(
            GenerationBatch.status == "queued",
            (GenerationBatch.status == "running") & (GenerationBatch.lease_until < now),
        )).limit(1)) is not None

    def _claim(self, session: Session) -> tuple[int, int] | None:
        batch = generation.claim_batch(session, now=utcnow())
        if batch is None or batch.status != "running":
            return None
        return batch.id, batch.attempts

    def _plan(self, session: Session, *, job_id: int, attempt: int) -> Plan | None:
        batch = generation.still_mine(session, batch_id=job_id, attempt=attempt)
        if batch is None:
            raise Abandoned
        project = session.get(Project, batch.project_id)
        assert project is not None
        asked = []
        longest = endpoints.LEASE
        for endpoint_id in batch.endpoint_ids:
            endpoint = session.get(ModelEndpoint, endpoint_id)
            if endpoint is None or not endpoint.is_active:
                generation.finish(batch, now=utcnow(), error="a model endpoint of the batch was deleted")
                return None
            try:
                call = endpoint_call(endpoint, keyring=self.keyring, policy=self.policy)
            except ConfigError as exc:
                generation.finish(batch, now=utcnow(), error=f"the endpoint's API key cannot be opened: {exc.message}")
                return None
            asked.append(Asked(
                call, endpoints.model_name(endpoint), endpoint.requests_per_minute,
                (endpoint.price_input_per_1k or 0.0, endpoint.price_output_per_1k or 0.0)))
            longest = max(longest, chunk_lease(endpoint, self.retrying))
        spec = parse_spec(project.task_spec)
        batch.lease_until = utcnow() + longest
        return Plan(batch_id=batch.id, attempt=attempt, project_id=project.id, asked=tuple(asked),
                    concurrency=min(session.get(ModelEndpoint, i).max_concurrency  # type: ignore[union-attr]
                                    for i in batch.endpoint_ids),
                    template=dict(batch.template), params=dict(batch.params), spec=spec,
                    comparison=generation.is_comparison(spec, len(asked)), lease=longest)

    def _index(self, session: Session, *, plan: Plan) -> Index:
        index = Index(float(plan.params.get("dedup_threshold", 0.8)))
        for text, key in generation.existing_texts(session, project_id=plan.project_id, spec=plan.spec,
                                                   comparison=plan.comparison):
            index.add(text, key)
        return index

    def run(self, plan: Plan) -> None:
        limiters = [Limiter(a.per_minute, self.stopping) for a in plan.asked]
        count = int(plan.params["count"])
        with ExitStack() as stack:
            clients = [stack.enter_context(deadline_client(a.endpoint.timeout)) for a in plan.asked]
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=plan.concurrency,
                                                          thread_name_prefix="qistas-generate"))
            seen = write(self.db, partial(self._index, plan=plan))
            while True:
                if self.stopping.is_set():
                    raise Stopped
                start = write(self.db, partial(self._cursor, plan=plan))
                if start >= count:
                    break
                indexes = range(start, min(start + plan.chunk, count))
                items = list(pool.map(lambda i: self._one(clients, limiters, plan, i), indexes))
                kept = write(self.db, partial(self._record, plan=plan, items=items, seen=seen, end=indexes[-1] + 1))
                for text, key in kept:  # the index grows only with what was written
                    seen.add(text, key)
        write(self.db, partial(self._done, plan=plan))

    def _cursor(self, session: Session, *, plan: Plan) -> int:
        batch = generation.still_mine(session, batch_id=plan.batch_id, attempt=plan.attempt)
        if batch is None:
            raise Abandoned
        return batch.next_index

    def _one(self, clients: list[httpx.Client], limiters: list[Limiter], plan: Plan, index: int) -> Item:
        item = Item(index)
        fields = generation.inputs(plan.params, index)
        try:
            messages = render(plan.template, fields)
        except TemplateError as exc:
            item.reason = str(exc)
            return item
        seed = int(plan.params.get("seed", 0)) + index
        temperature = float(plan.params.get("temperature", 0.7))
        chosen = range(len(plan.asked)) if plan.comparison else [index % len(plan.asked)]
        for k in chosen:
            reply = ask(clients[k], plan.asked[k].endpoint, messages, limiter=limiters[k], retrying=self.retrying,
                        stopping=self.stopping, temperature=temperature, seed=seed, json_mode=not plan.comparison)
            item.replies.append(reply)
            item.models.append(plan.asked[k].model)
            if reply.content is None:
                item.reason = (f"{plan.asked[k].model}: " if plan.comparison else "") + (reply.reason or "no answer")
                return item
        try:
            if plan.comparison:
                prompt = messages[-1]["content"]
                answers = [r.content or "" for r in item.replies]
                if any(not a.strip() for a in answers):
                    raise Invalid("an endpoint answered with empty text")
                data, order = generation.comparison_data(plan.spec, prompt, answers,
                                                         seed=int(plan.params.get("seed", 0)), index=index)
                item.models = [item.models[i] for i in order]
            else:
                data = generation.parse_candidate(item.replies[0].content)
            item.data = generation.check_candidate(plan.spec, data)
        except Invalid as exc:
            item.reason = f"the answer was refused: {exc.message}"[:500]
        return item

    def _record(self, session: Session, *, plan: Plan, items: list[Item], seen: Index,
                end: int) -> list[tuple[str, str]]:
        batch = generation.still_mine(session, batch_id=plan.batch_id, attempt=plan.attempt)
        if batch is None:
            raise Abandoned
        project = session.get(Project, plan.project_id)
        assert project is not None
        rows, kept = [], []
        fresh = Index(seen.threshold)  # near-duplicates within this chunk
        for item in items:
            for k, reply in enumerate(item.replies):
                asked = plan.asked[k if plan.comparison else item.index % len(plan.asked)]
                batch.requests += reply.requests
                batch.input_tokens += reply.input_tokens
                batch.output_tokens += reply.output_tokens
                batch.cost += reply.input_tokens / 1000 * asked.prices[0] + reply.output_tokens / 1000 * asked.prices[1]
            if item.data is None:
                generation.record_failure(batch, index=item.index, reason=item.reason or "no answer")
                continue
            text = generation.text_of(plan.spec, item.data, plan.comparison)
            key = generation.unique_id(batch.id, item.index)
            twin = seen.find(text) or fresh.find(text)
            if twin is not None:
                generation.record_duplicate(batch, index=item.index, of=twin)
                continue
            fresh.add(text, key)
            kept.append((text, key))
            rows.append({"data": item.data, "unique_id": key, "metadata": {"provenance": {
                "model": item.models, "template": plan.template, "params": plan.params, "batch": batch.id,
                "index": item.index, "inputs": generation.inputs(plan.params, item.index)}}})
        batch.generated += generation.add_tasks(session, project=project, rows=rows)
        batch.next_index = end
        batch.lease_until = utcnow() + plan.lease
        return kept

    def _done(self, session: Session, *, plan: Plan) -> None:
        batch = generation.still_mine(session, batch_id=plan.batch_id, attempt=plan.attempt)
        if batch is not None:
            generation.finish(batch, now=utcnow())

    def _fail(self, session: Session, *, job_id: int, attempt: int, error: str) -> None:
        batch = generation.still_mine(session, batch_id=job_id, attempt=attempt)
        if batch is not None:
            generation.finish(batch, now=utcnow(), error=error)
