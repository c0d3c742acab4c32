"""Projects and batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from qistas.db.enums import BatchStatus, LeaseStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, Batch, Project, Task, TaskImport, User
from qistas.domain import active_learning as active_learning_rules
from qistas.domain import audit, outbox, predictions, review_policy
from qistas.domain import pay as pay_rules
from qistas.domain import workforce as workforce_rules
from qistas.domain.gold import parse_policy
from qistas.domain.media import parse_policy as parse_media_policy
from qistas.domain.model_annotators import parse_setting as parse_model_annotators
from qistas.domain.tasktypes import parse_spec, spec_dict
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import STAFF_ROLES, ensure_customer_access, ensure_customer_access_to, may_work_on

MAX_REDUNDANCY = 100
BATCH_TRANSITIONS: dict[str, dict[str, BatchStatus]] = {
    # action: {from status: to status}
    "finalize": {BatchStatus.STAGING: BatchStatus.IN_PROGRESS},
    "pause": {BatchStatus.IN_PROGRESS: BatchStatus.PAUSED},
    "resume": {BatchStatus.PAUSED: BatchStatus.IN_PROGRESS},
    "cancel": {BatchStatus.STAGING: BatchStatus.CANCELED, BatchStatus.IN_PROGRESS: BatchStatus.CANCELED,
               BatchStatus.PAUSED: BatchStatus.CANCELED},
}
# No move leaves these (an in-progress batch completes by itself once its tasks are done):
# no task may be added to a batch in them.
FINAL_BATCH_STATUSES = frozenset({BatchStatus.COMPLETED, BatchStatus.CANCELED})


def _redundancy(raw: dict[str, Any] | None) -> tuple[int, int, float | None]:
    raw = raw or {}
    lo = raw.get("min", 1)
    hi = raw.get("max", lo)
    target = raw.get("target")
    for name, value in (("min", lo), ("max", hi)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REDUNDANCY:
            raise Invalid(
                f"redundancy.{name} must be an integer from 1 to {MAX_REDUNDANCY}",
                details={"field": f"redundancy.{name}"}, reason="int_range", params={"lo": 1, "hi": MAX_REDUNDANCY},
            )
    if hi < lo:
        raise Invalid("redundancy.max must be at least min", details={"field": "redundancy.max"},
                      reason="redundancy_order")
    if target is not None and (
        not isinstance(target, int | float) or isinstance(target, bool) or not 0 < target <= 1
    ):
        raise Invalid("redundancy.target must be in (0, 1]", details={"field": "redundancy.target"},
                      reason="target_range")
    return lo, hi, None if target is None else float(target)


def create_project(
    session: Session,
    *,
    org_id: int,
    actor: User,
    name: str,
    task: dict[str, Any],
    instructions: str = "",
    redundancy: dict[str, Any] | None = None,
    gold: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
    prefill: dict[str, Any] | None = None,
    model_annotators: dict[str, Any] | None = None,
    media: dict[str, Any] | None = None,
    active_learning: dict[str, Any] | None = None,
    priority: int = 0,
    pay: dict[str, Any] | None = None,
    workforce: str = "shared",
    routing: dict[str, Any] | None = None,
    work_name: str | None = None,
) -> Project:
    spec = parse_spec(task)
    lo, hi, target = _redundancy(redundancy)
    parse_policy(gold)
    review_policy.parse_policy(review)
    predictions.parse_prefill(prefill)
    annotating = parse_model_annotators(model_annotators)
    media_policy = parse_media_policy(media)
    pay_setting = pay_rules.parse_pay(pay)
    active = active_learning_rules.check_setting(active_learning, spec_dict(spec))
    if workforce not in ("shared", "org"):
        raise Invalid("workforce must be 'shared' or 'org'", details={"field": "workforce"})
    project = Project(
        org_id=org_id,
        name=name,
        task_spec=spec_dict(spec),
        instructions=instructions,
        redundancy_min=lo,
        redundancy_max=hi,
        redundancy_target=target,
        gold_policy=gold or {},
        review_policy=review or {},
        prefill=prefill or {},
        model_annotators=annotating,
        media=media_policy,
        active_learning=active,
        priority=priority,
        pay=pay_setting,
        workforce=workforce,
        work_name=workforce_rules.work_name(work_name) if work_name is not None else workforce_rules.code_name(),
    )
    session.add(project)
    session.flush()
    if routing:
        project.routing = workforce_rules.parse_routing(session, project=project, raw=routing)
        session.flush()
    audit.record(session, actor=actor, action="project.create", object_type="project",
                 object_id=project.id, org_id=org_id)
    return project


# What PATCH may change; ``task`` only while no task of the project is answered.
UPDATABLE = ("name", "instructions", "redundancy", "gold", "review", "prefill", "model_annotators", "media",
             "active_learning", "priority", "pay", "workforce", "task", "archived", "routing", "work_name")


def update_project(session: Session, *, project: Project, actor: User, changes: dict[str, Any], now: datetime) -> None:
    """Change a project's settings (the keys of ``changes``, a subset of ``UPDATABLE``).

    An archived project takes no change but ``archived: false``. Raising ``redundancy.min``
    raises the tasks still open to it; lowering it applies to tasks imported afterwards.
    """
    if project.archived_at is not None and set(changes) - {"archived"}:
        raise Conflict("the project is archived: unarchive it first (archived: false)", details={"field": "archived"})
    if "task" in changes:
        answered = session.scalar(select(Annotation.id).where(Annotation.project_id == project.id).limit(1))
        if answered is not None:
            raise Conflict("the task spec can change only while no task of the project is answered",
                           details={"field": "task"})
        project.task_spec = spec_dict(parse_spec(changes["task"]))
    if "redundancy" in changes:
        lo, hi, target = _redundancy(changes["redundancy"])
        if lo > project.redundancy_min:
            session.execute(update(Task).where(Task.project_id == project.id, Task.status == TaskStatus.PENDING,
                                               Task.required < lo).values(required=lo))
        project.redundancy_min, project.redundancy_max, project.redundancy_target = lo, hi, target
    if "gold" in changes:
        parse_policy(changes["gold"])
        project.gold_policy = changes["gold"] or {}
    if "review" in changes:  # applies to tasks settled from now on
        review_policy.parse_policy(changes["review"])
        project.review_policy = changes["review"] or {}
    if "prefill" in changes:  # applies to tasks taken from now on
        predictions.parse_prefill(changes["prefill"])
        project.prefill = changes["prefill"] or {}
    if "model_annotators" in changes:  # applies to answers settled from now on
        project.model_annotators = parse_model_annotators(changes["model_annotators"])
    if "media" in changes:  # applies to imports from now on
        project.media = parse_media_policy(changes["media"])
    if "active_learning" in changes or "task" in changes:  # the setting must fit the (new) spec
        raw = changes.get("active_learning", project.active_learning)
        project.active_learning = active_learning_rules.check_setting(raw, project.task_spec)
    if "workforce" in changes:
        if changes["workforce"] not in ("shared", "org"):
            raise Invalid("workforce must be 'shared' or 'org'", details={"field": "workforce"})
        project.workforce = changes["workforce"]
    if "routing" in changes:  # applies to takes from now on; leases already out may be submitted
        project.routing = workforce_rules.parse_routing(session, project=project, raw=changes["routing"])
    if "work_name" in changes:
        project.work_name = workforce_rules.work_name(changes["work_name"])
    if "pay" in changes:  # applies to answers submitted from now on; the ledger's entries never change
        project.pay = pay_rules.parse_pay(changes["pay"])
    for name in ("name", "instructions", "priority"):
        if name in changes:
            setattr(project, name, changes[name])
    if "archived" in changes:
        project.archived_at = (project.archived_at or now) if changes["archived"] else None
    session.flush()
    audit.record(session, actor=actor, action="project.update", object_type="project", object_id=project.id,
                 org_id=project.org_id, details={"fields": sorted(changes)})


def ensure_writable(project: Project) -> Project:
    """An archived project is read-only: no import, batch or cancel."""
    if project.archived_at is not None:
        raise Conflict("the project is archived: it takes no new work (unarchive it with archived: false)",
                       details={"field": "archived"})
    return project


def cancel_task(session: Session, *, task: Task, project: Project, actor: User, now: datetime) -> Task:
    """Cancel a task not yet completed (Scale's cancel): it is served no more, leases on it end."""
    ensure_writable(project)
    # Locked in the order submits take them (leases, then the task), and the task read again:
    # an answer or a review that committed meanwhile wins, and the cancel answers 409 instead
    # of overwriting a task already delivered.
    session.execute(select(Assignment.id).where(Assignment.task_id == task.id, Assignment.status == LeaseStatus.ACTIVE)
                    .with_for_update())
    session.refresh(task, with_for_update=True)
    if task.status not in (TaskStatus.PENDING, TaskStatus.REVIEW):
        raise Conflict(f"only a task not yet completed can be canceled; this one is {task.status}",
                       details={"status": task.status})
    ended = session.execute(
        update(Assignment).where(Assignment.task_id == task.id, Assignment.status == LeaseStatus.ACTIVE)
        .values(status=LeaseStatus.RELEASED, ended_at=now)
    ).rowcount  # type: ignore[attr-defined]
    task.status = TaskStatus.CANCELED
    task.n_claimed -= ended
    task.review_until = None  # a review lease on it answers 409 at submit
    session.flush()
    if task.batch_id is not None:
        batch = session.get(Batch, task.batch_id)
        if batch is not None:
            complete_batch_if_done(session, batch=batch)
    audit.record(session, actor=actor, action="task.cancel", object_type="task", object_id=task.id,
                 org_id=project.org_id)
    return task


def get_project_for_customer(session: Session, *, project_id: int, actor: User) -> Project:
    return ensure_customer_access(actor, session.get(Project, project_id))


def list_projects(session: Session, *, actor: User) -> list[Project]:
    """The projects the actor sees; an annotator's are those open to them (their workforce and
    routing), highest ``priority`` first, then oldest."""
    query = select(Project).order_by(Project.id)
    if actor.role in STAFF_ROLES:
        query = query.where(Project.org_id == actor.org_id)
    elif actor.role == Role.ANNOTATOR:
        query = select(Project).order_by(Project.priority.desc(), Project.id).where(Project.archived_at.is_(None))
        if actor.org_id is not None:
            query = query.where(Project.org_id == actor.org_id)
        else:
            query = query.where(Project.workforce == "shared")
        return [p for p in session.scalars(query) if may_work_on(actor, p)]
    return list(session.scalars(query))


def create_batch(
    session: Session, *, project: Project, name: str, callback_url: str | None = None
) -> Batch:
    if not name.strip():
        raise Invalid("name must not be empty", details={"field": "name"})
    exists = session.scalar(
        select(Batch.id).where(Batch.project_id == project.id, Batch.name == name)
    )
    if exists is not None:
        raise Conflict(f"a batch named {name!r} exists in this project", details={"field": "name"})
    batch = Batch(project_id=project.id, name=name, callback_url=callback_url)
    session.add(batch)
    session.flush()
    return batch


def get_batch(session: Session, *, batch_id: int, actor: User) -> tuple[Batch, Project]:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound("batch not found")
    return batch, ensure_customer_access_to(actor, session.get(Project, batch.project_id), what="batch")


def list_batches(session: Session, *, project: Project, after: int | None = None,
                 limit: int | None = None) -> list[Batch]:
    """The project's batches in id order: up to ``limit`` after batch ``after``."""
    query = select(Batch).where(Batch.project_id == project.id).order_by(Batch.id).limit(limit)
    if after is not None:
        query = query.where(Batch.id > after)
    return list(session.scalars(query))


def batch_counts(session: Session, *, batch_id: int) -> dict[str, int]:
    return batch_counts_of(session, batch_ids=[batch_id]).get(batch_id, {})


def batch_counts_of(session: Session, *, batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each batch's tasks counted by status (a batch without tasks is absent), in one query."""
    if not batch_ids:
        return {}
    found: dict[int, dict[str, int]] = {}
    rows = session.execute(select(Task.batch_id, Task.status, func.count()).where(Task.batch_id.in_(batch_ids))
                           .group_by(Task.batch_id, Task.status))
    for batch_id, status, count in rows:
        if batch_id is not None:  # it is one of batch_ids; the column's type allows none
            found.setdefault(batch_id, {})[status] = count
    return found


def change_batch(session: Session, *, batch: Batch, action: str) -> Batch:
    moves = BATCH_TRANSITIONS.get(action)
    if moves is None:
        raise NotFound(f"unknown batch action {action!r}")
    if batch.status not in moves:
        raise Conflict(f"cannot {action} a batch that is {batch.status}")
    batch.status = moves[batch.status]
    if batch.status == BatchStatus.CANCELED:
        session.execute(
            update(Task)
            .where(Task.batch_id == batch.id, Task.status.in_([TaskStatus.PENDING, TaskStatus.REVIEW]))
            .values(status=TaskStatus.CANCELED)
        )
    elif batch.status == BatchStatus.IN_PROGRESS:
        complete_batch_if_done(session, batch=batch)
    session.flush()
    return batch


def complete_batch_if_done(session: Session, *, batch: Batch) -> bool:
    if batch.status != BatchStatus.IN_PROGRESS:
        return False
    open_task = session.scalar(
        select(Task.id).where(Task.batch_id == batch.id, Task.status.in_([TaskStatus.PENDING, TaskStatus.REVIEW]))
        .limit(1)
    )
    has_tasks = session.scalar(select(Task.id).where(Task.batch_id == batch.id).limit(1))
    if open_task is None and has_tasks is not None:
        if _import_moving(session, project_id=batch.project_id):
            return False  # more tasks are on their way; the import completes the batch when done
        batch.status = BatchStatus.COMPLETED
        outbox.enqueue(session, event="batch.completed", batch=batch)
        return True
    return False


def _import_moving(session: Session, *, project_id: int) -> bool:
    """Whether a committed import is still adding tasks to the project (domain/staged_imports.py)."""
    return session.scalar(select(TaskImport.id).where(TaskImport.project_id == project_id,
                                                      TaskImport.state == "committed").limit(1)) is not None
