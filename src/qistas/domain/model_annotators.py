"""Models as annotators: a model endpoint's answers stored as annotations by a worker of its own.

Each endpoint answers through one user of its organization, role ``model`` (never signs in,
has no token, is never served tasks). Its answers are annotations like anyone's, each with a
stand-in lease of status ``model``, so truth inference weighs the model by its own worker
model (confusion matrix or reliability), it is scored on gold tasks, blocked by the gold
policy and judged by reviewers like anyone, and the database's one-answer-per-annotator-per-task
constraint holds for it too.

A model's answer takes no person's place: a task's ``required``, ``n_claimed`` and
``n_annotations`` count people's answers and leases only, and ``redundancy.max`` bounds
people's answers. What a model's answer changes is the consensus, and, where the redundancy is
adaptive (a target, or max above min), the least number of people's answers a task with a
model's answer completes with: the project's ``model_annotators.min_human_answers`` (default 1)
instead of ``redundancy.min``. A fixed overlap (min = max, no target) asks every task of
``min`` people whatever the models say.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from qistas.db.enums import LeaseStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, ModelEndpoint, Project, User, WorkerStats
from qistas.db.queries import annotations as queries
from qistas.domain import gold as gold_rules
from qistas.errors import Invalid

MAX_HUMAN = 20  # the most ``min_human_answers`` may ask (redundancy's own bound)
SETTING_KEYS = {"min_human_answers"}
DEFAULT_MIN_HUMAN = 1


def parse_setting(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The project's ``model_annotators`` setting, checked: ``{"min_human_answers"?: 0..20}``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("model_annotators must be an object", details={"field": "model_annotators"})
    unknown = raw.keys() - SETTING_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"model_annotators.{name} is not a known field", details={"field": f"model_annotators.{name}"})
    value = raw.get("min_human_answers", DEFAULT_MIN_HUMAN)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_HUMAN:
        raise Invalid(f"model_annotators.min_human_answers must be an integer from 0 to {MAX_HUMAN}",
                      details={"field": "model_annotators.min_human_answers"})
    return dict(raw)


def adaptive(project: Project) -> bool:
    return project.redundancy_target is not None or project.redundancy_max > project.redundancy_min


def human_floor(project: Project) -> int:
    """The least people's answers a task with a model's answer completes with (adaptive projects)."""
    wanted = (project.model_annotators or {}).get("min_human_answers", DEFAULT_MIN_HUMAN)
    return min(int(wanted), project.redundancy_max)


def settle_floor(session: Session, *, project: Project, annotator_ids: Iterable[int]) -> int:
    """The ``redundancy.min`` a settle applies: the human floor when a model answered the task."""
    if not adaptive(project):
        return project.redundancy_min
    floor = human_floor(project)
    if floor == project.redundancy_min:
        return floor  # no need to ask whether a model answered
    ids = list(set(annotator_ids))
    found = session.scalar(select(User.id).where(User.id.in_(ids), User.role == Role.MODEL).limit(1)) if ids else None
    return floor if found is not None else project.redundancy_min


def model_user(session: Session, *, endpoint: ModelEndpoint, now: datetime) -> User:
    """The endpoint's annotator, made on first use."""
    user = session.scalar(select(User).where(User.endpoint_id == endpoint.id, User.role == Role.MODEL))
    if user is None:
        user = User(email=f"endpoint-{endpoint.id}@org-{endpoint.org_id}.model.invalid", role=Role.MODEL,
                    org_id=endpoint.org_id, password_hash=None, is_reviewer=False, is_active=False,
                    endpoint_id=endpoint.id, created_at=now)
        session.add(user)
        session.flush()
    return user


def is_model(session: Session, annotator_id: int) -> bool:
    return session.scalar(select(User.role).where(User.id == annotator_id)) == Role.MODEL


def model_names(session: Session, *, org_id: int) -> dict[int, str]:
    """The organization's model annotators: user id -> ``name/model`` of its endpoint."""
    rows = session.execute(
        select(User.id, ModelEndpoint.name, ModelEndpoint.model)
        .join(ModelEndpoint, ModelEndpoint.id == User.endpoint_id)
        .where(User.org_id == org_id, User.role == Role.MODEL))
    return {user_id: f"{name}/{model}"[:200] for user_id, name, model in rows}


def answered(session: Session, *, annotator_id: int, task_ids: list[int]) -> set[int]:
    """Which of the tasks the model annotator already answered."""
    if not task_ids:
        return set()
    return set(session.scalars(select(Assignment.task_id).where(Assignment.annotator_id == annotator_id,
                                                                Assignment.task_id.in_(task_ids))))


def blocked(session: Session, *, project_id: int, annotator_id: int) -> bool:
    return bool(session.scalar(select(WorkerStats.blocked).where(WorkerStats.project_id == project_id,
                                                                 WorkerStats.annotator_id == annotator_id)))


def record_answer(session: Session, *, task_id: int, project: Project, spec: Any, annotator_id: int,
                  answer: dict[str, Any], now: datetime) -> str | None:
    """Store the model's (validated) answer to the task and settle it as after a person's answer;
    None when stored, else why not (the task is no longer pending, or the model answered it)."""
    from qistas.domain.annotations import settle  # settle imports this module

    task = queries.TASK_LOCKED.first(session, task_id=task_id)
    if task is None or task.status != TaskStatus.PENDING:
        return f"the task is {task.status if task else 'gone'}: no longer open to answers"
    if answered(session, annotator_id=annotator_id, task_ids=[task.id]):
        return "the model already answered this task"
    correct = gold_rules.matches(spec, answer, task.gold) if task.is_gold else None
    lease_id = session.scalar(insert(Assignment).returning(Assignment.id), {
        "task_id": task.id, "project_id": project.id, "annotator_id": annotator_id, "status": LeaseStatus.MODEL,
        "created_at": now, "expires_at": now, "ended_at": now})
    session.execute(insert(Annotation), {
        "assignment_id": lease_id, "task_id": task.id, "project_id": project.id, "annotator_id": annotator_id,
        "answer": answer, "seconds": None, "gold_correct": correct, "created_at": now})
    gold_rules.record_answer(session, project=project, annotator_id=annotator_id, seconds=None, gold_correct=correct)
    if task.is_gold or not adaptive(project):
        return None  # gold tasks never complete; a fixed overlap waits for its people
    # The people the task now needs: the floor, and never fewer than hold a lease or answered.
    required = max(human_floor(project), task.n_claimed)
    if required != task.required:
        queries.SET_REQUIRED.run(session, task_id=task.id, required=required)
        set_committed_value(task, "required", required)
    if task.n_annotations >= task.required:
        settle(session, task=task, project=project, spec=spec, now=now)
    return None
