"""Runs pre-label jobs: claim one, send its tasks to the endpoint, store valid answers as
predictions, or as the model annotator's annotations (domain.model_annotators), and count the
rest as failed with their reason (domain.model_endpoints).

Tasks go in id order, a chunk at a time (two rounds of ``max_concurrency`` requests); each
chunk's outcomes are written in one transaction that also moves the job's cursor and renews
its lease, so a job taken over by another process goes on after the last chunk written. The
lease covers the longest a chunk may take (every request timing out and retried after the
longest delay, at the endpoint's rate limit), so a live worker never loses its job.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qistas.db.models import ModelEndpoint, PrelabelJob, Project, Task
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import model_annotators
from qistas.domain import model_endpoints as endpoints
from qistas.domain.prompts import TemplateError, parse_answer, render
from qistas.domain.tasktypes import Spec, parse_spec
from qistas.errors import ConfigError, Invalid
from qistas.workers.chat import Endpoint, Limiter, Reply, Stopped, ask
from qistas.workers.model_jobs import ROUNDS, Abandoned, ModelJobWorker, chunk_lease, endpoint_call
from qistas.workers.outbound import deadline_client

log = logging.getLogger("qistas.workers")


@dataclass
class Outcome:
    task_id: int
    reply: Reply
    answer: dict[str, Any] | None = None
    score: float | None = None


@dataclass(frozen=True)
class Plan:
    job_id: int
    attempt: int
    endpoint: Endpoint
    model: str
    concurrency: int
    per_minute: int | None
    prices: tuple[float, float]
    template: dict[str, str]
    spec: Spec
    lease: timedelta
    annotator_id: int | None = None  # the model annotator, when the answers become annotations

    @property
    def chunk(self) -> int:
        return self.concurrency * ROUNDS


class Prelabeler(ModelJobWorker[Plan]):
    def _waiting(self, session: Session, *, now: datetime) -> bool:
        return session.scalar(select(PrelabelJob.id).where(or_(
            endpoints.due(now), (PrelabelJob.status == "running") & (PrelabelJob.lease_until < now),
        )).limit(1)) is not None

    def _claim(self, session: Session) -> tuple[int, int] | None:
        job = endpoints.claim_job(session, now=utcnow())
        if job is None or job.status != "running":
            return None
        return job.id, job.attempts

    def _plan(self, session: Session, *, job_id: int, attempt: int) -> Plan | None:
        job = endpoints.still_mine(session, job_id=job_id, attempt=attempt)
        if job is None:
            raise Abandoned
        endpoint = session.get(ModelEndpoint, job.endpoint_id)
        project = session.get(Project, job.project_id)
        assert endpoint is not None and project is not None
        if not endpoint.is_active:
            endpoints.finish(job, now=utcnow(), error="the model endpoint was deleted")
            return None
        try:
            call = endpoint_call(endpoint, keyring=self.keyring, policy=self.policy)
        except ConfigError as exc:  # sealed with a key this server lacks, or altered
            endpoints.finish(job, now=utcnow(), error=f"the endpoint's API key cannot be opened: {exc.message}")
            return None
        if job.tasks_total is None and not job.standing:  # a standing job's tasks are still coming
            job.tasks_total = endpoints.count_tasks(session, job=job)
        job.lease_until = utcnow() + self._lease(endpoint)
        annotator = model_annotators.model_user(session, endpoint=endpoint, now=utcnow()) \
            if job.mode == "annotations" else None
        return Plan(
            job_id=job.id, attempt=attempt, model=endpoints.model_name(endpoint),
            endpoint=call,
            concurrency=endpoint.max_concurrency, per_minute=endpoint.requests_per_minute,
            prices=(endpoint.price_input_per_1k or 0.0, endpoint.price_output_per_1k or 0.0),
            template=dict(job.template), spec=parse_spec(project.task_spec), lease=self._lease(endpoint),
            annotator_id=annotator.id if annotator else None,
        )

    def _lease(self, endpoint: ModelEndpoint) -> timedelta:
        return max(endpoints.LEASE, chunk_lease(endpoint, self.retrying))

    def run(self, plan: Plan) -> None:
        limiter = Limiter(plan.per_minute, self.stopping)
        with deadline_client(plan.endpoint.timeout) as client, \
                ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="qistas-model") as pool:
            while True:
                if self.stopping.is_set():
                    raise Stopped
                tasks = write(self.db, partial(self._next_tasks, plan=plan, limit=plan.chunk))
                if not tasks:
                    break
                work = [(task_id, data, skip) for task_id, data, skip in tasks if not skip]
                outcomes = list(pool.map(lambda item: self._one(client, plan, limiter, item[0], item[1]), work))
                skipped = len(tasks) - len(work)
                write(self.db, partial(self._record, plan=plan, outcomes=outcomes, skipped=skipped,
                                       last=tasks[-1][0]))
        write(self.db, partial(self._done, plan=plan))

    def _next_tasks(self, session: Session, *, plan: Plan, limit: int) -> list[tuple[int, dict[str, Any], bool]]:
        job = endpoints.still_mine(session, job_id=plan.job_id, attempt=plan.attempt)
        if job is None:
            raise Abandoned
        found = endpoints.tasks_to_label(session, job=job, limit=limit)
        if plan.annotator_id is not None:
            done = model_annotators.answered(session, annotator_id=plan.annotator_id, task_ids=[t.id for t in found])
            return [(t.id, dict(t.data), t.id in done) for t in found]
        return [(t.id, dict(t.data), endpoints.has_prediction(t, plan.model)) for t in found]

    def _one(self, client: Any, plan: Plan, limiter: Limiter, task_id: int, data: dict[str, Any]) -> Outcome:
        try:
            messages = render(plan.template, data)
        except TemplateError as exc:
            return Outcome(task_id, Reply(reason=str(exc)))
        reply = ask(client, plan.endpoint, messages, limiter=limiter, retrying=self.retrying, stopping=self.stopping)
        outcome = Outcome(task_id, reply)
        if reply.content is not None:
            try:
                outcome.answer, outcome.score = parse_answer(reply.content, plan.spec, data)
            except Invalid as exc:
                reply.reason = f"the answer was refused: {exc.message}"[:500]
        return outcome

    def _record(self, session: Session, *, plan: Plan, outcomes: list[Outcome], skipped: int, last: int) -> None:
        job = endpoints.still_mine(session, job_id=plan.job_id, attempt=plan.attempt)
        if job is None:
            raise Abandoned
        project = session.get(Project, job.project_id) if plan.annotator_id is not None else None
        stopped = project is not None and plan.annotator_id is not None and model_annotators.blocked(
            session, project_id=project.id, annotator_id=plan.annotator_id)
        for outcome in outcomes:
            reply = outcome.reply
            job.requests += reply.requests
            job.input_tokens += reply.input_tokens
            job.output_tokens += reply.output_tokens
            job.cost += reply.input_tokens / 1000 * plan.prices[0] + reply.output_tokens / 1000 * plan.prices[1]
            if project is not None and plan.annotator_id is not None:
                self._annotate(session, job, plan, project, outcome, stopped=stopped)
                continue
            task = session.get(Task, outcome.task_id)
            if outcome.answer is None or task is None:
                endpoints.record_failure(job, task_id=outcome.task_id, reason=reply.reason or "no answer")
            elif endpoints.add_prediction(task, model=plan.model, answer=outcome.answer, score=outcome.score):
                job.done += 1
            else:
                endpoints.record_failure(job, task_id=outcome.task_id, reason="the task carries the most "
                                         "predictions it may")
        job.skipped += skipped
        job.last_task_id = last
        job.lease_until = utcnow() + plan.lease

    @staticmethod
    def _annotate(session: Session, job: PrelabelJob, plan: Plan, project: Project, outcome: Outcome, *,
                  stopped: bool) -> None:
        """Store one answer as the model annotator's; a task closed meanwhile is skipped."""
        if outcome.answer is None:
            endpoints.record_failure(job, task_id=outcome.task_id, reason=outcome.reply.reason or "no answer")
        elif stopped:
            endpoints.record_failure(job, task_id=outcome.task_id, reason="the model is blocked in this project "
                                     "by the gold policy: its answers are not stored")
        elif model_annotators.record_answer(session, task_id=outcome.task_id, project=project, spec=plan.spec,
                                            annotator_id=plan.annotator_id or 0, answer=outcome.answer,
                                            now=utcnow()) is None:
            job.done += 1
        else:
            job.skipped += 1

    def _done(self, session: Session, *, plan: Plan) -> None:
        job = endpoints.still_mine(session, job_id=plan.job_id, attempt=plan.attempt)
        if job is not None:
            endpoints.end_pass(job, now=utcnow())

    def _fail(self, session: Session, *, job_id: int, attempt: int, error: str) -> None:
        job = endpoints.still_mine(session, job_id=job_id, attempt=attempt)
        if job is not None:
            endpoints.finish(job, now=utcnow(), error=error)
