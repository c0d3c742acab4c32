"""The assignment engine: leasing tasks to annotators.

Invariants (DESIGN.md), and what keeps each one:

1. ``n_claimed`` (annotations + live leases) never exceeds ``required``: a claim increments
   it only with the guard ``n_claimed < required`` in the same UPDATE.
2. An annotator never gets the same task twice: the claim query excludes tasks they have an
   assignment for, and a unique (task, annotator) constraint backs it up.
3. Leases expire: every claim first sweeps the project's expired leases, freeing their slots.
4. & 5. live in ``annotations.submit``.

Concurrency: on SQLite claims run in ``BEGIN IMMEDIATE`` transactions, one at a time; on
PostgreSQL the picked task row is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent claims
take different rows instead of queueing on one.

Speed: the statements of a claim are built once, with bound parameters, and reused. Building
a SQLAlchemy statement and its cache key costs more CPU than SQLite takes to run it, and the
claim is the hottest path of the server. Statements that only read values or write rows are
written against the tables (``table(Task).c``), not the mapped classes: the ORM's execution
path costs about twice as much per statement, and is only worth it where an object is needed.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import CursorResult, Select, and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from qistas.db.dialect import locks_claimed_rows
from qistas.db.models import TASK_IN_FLIGHT, Assignment, Base, Batch, Project, Task, User, table
from qistas.domain import gold as gold_rules
from qistas.errors import Conflict, Forbidden, NotFound

T = TypeVar("T", bound=Base)


def _locked_variants(query: Any) -> dict[bool, Any]:
    """The statement as is, and with the claim row lock (for PostgreSQL)."""
    return {False: query, True: query.with_for_update(skip_locked=True)}


_leases = table(Assignment).c
_tasks = table(Task).c
_STALE = _locked_variants(
    select(_leases.id, _leases.task_id).where(
        _leases.project_id == bindparam("project_id"),
        _leases.status == "active",
        _leases.expires_at <= bindparam("now"),
    )
)
# Locked: a lease being submitted in another transaction right now must not be handed back
# (PostgreSQL re-checks the row once that transaction commits, and skips it if submitted).
_HELD = (
    select(_leases.id)
    .where(
        _leases.project_id == bindparam("project_id"),
        _leases.annotator_id == bindparam("annotator_id"),
        _leases.status == "active",
        _leases.expires_at > bindparam("now"),
    )
    .limit(1)
    .with_for_update()
)
_NEW_LEASE = insert(table(Assignment)).returning(_leases.id)
_TAKE_SLOT = (
    update(table(Task))
    .where(and_(_tasks.id == bindparam("task_id"), _tasks.n_claimed < _tasks.required, _tasks.status == "pending"))
    .values(n_claimed=_tasks.n_claimed + 1)
)
# A gold task takes any number of annotators, once each: its requirement grows with them.
_TAKE_GOLD_SLOT = (
    update(table(Task))
    .where(and_(_tasks.id == bindparam("task_id"), _tasks.status == "pending"))
    .values(n_claimed=_tasks.n_claimed + 1, required=_tasks.n_claimed + 1)
)


def insert_row(session: Session, entity: type[T], statement: Any, values: dict[str, Any]) -> T:
    """INSERT one row with a prepared statement; return it as a persistent object of the session.

    The same result as ``session.add`` + ``flush``, without the unit of work's bookkeeping,
    which cost a sixth of the server's CPU in the annotation loop.
    """
    row = entity(id=session.execute(statement, values).scalar_one(), **values)
    make_transient_to_detached(row)  # every column is set: nothing to load back
    session.add(row)
    return row


def expire_leases(session: Session, *, project_id: int, now: datetime) -> int:
    """Mark the project's expired leases and give their slots back to their tasks."""
    stale = _STALE[locks_claimed_rows(session)]
    rows = session.execute(stale, {"project_id": project_id, "now": now}).all()
    if not rows:
        return 0
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([r.id for r in rows]), Assignment.status == "active")
        .values(status="expired", ended_at=now)
    )
    _release_slots(session, Counter(r.task_id for r in rows))
    return len(rows)


def _release_slots(session: Session, per_task: Counter[int]) -> None:
    # Sorted, so two transactions always lock tasks in the same order (no deadlock).
    for task_id in sorted(per_task):
        session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(n_claimed=Task.n_claimed - per_task[task_id])
        )


def _candidates() -> Select[Task]:
    """Open tasks of ``:project_id`` that ``:annotator_id`` never had."""
    served_batch = or_(
        Task.batch_id.is_(None),
        Task.batch_id.in_(
            select(Batch.id).where(Batch.project_id == bindparam("project_id"), Batch.status == "in_progress")
        ),
    )
    seen = exists().where(Assignment.task_id == Task.id, Assignment.annotator_id == bindparam("annotator_id"))
    return select(Task).where(
        Task.project_id == bindparam("project_id"),
        Task.status == "pending",
        served_batch,
        ~seen,
    )


# Finish what is open: regular tasks with a free slot, already started first, then the rest,
# each in import order. The started ones are found through their partial index (its condition
# written as literals), the rest through ix_tasks_claim.
_NEXT = [
    _locked_variants(
        _candidates().where(Task.is_gold.is_(False), Task.n_claimed < Task.required, started)
        .order_by(Task.id).limit(1)
    )
    for started in (TASK_IN_FLIGHT, Task.n_claimed == 0)
]
_NEXT_GOLD = _locked_variants(_candidates().where(Task.is_gold.is_(True)).order_by(Task.id).limit(1))


def active_lease(session: Session, *, project_id: int, annotator_id: int, now: datetime) -> Assignment | None:
    # Usually there is none: ask for the id alone, load the object only when there is one.
    held = session.scalar(_HELD, {"project_id": project_id, "annotator_id": annotator_id, "now": now})
    return session.get(Assignment, held) if held is not None else None


def claim(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int
) -> tuple[Assignment, Task] | None:
    """Lease the next task to the annotator, or return None when nothing is left for them.

    An annotator holding a live lease in the project gets that lease back (a reload or a
    retried request must not hoard a second task). Order: tasks already started first
    (finish what is open), then import order.
    """
    expire_leases(session, project_id=project.id, now=now)
    held = active_lease(session, project_id=project.id, annotator_id=annotator.id, now=now)
    if held is not None:
        task = session.get(Task, held.task_id)
        assert task is not None
        if task.status == "pending":
            return held, task
        # Its batch was canceled under the lease: handing it back would leave the annotator
        # stuck on a task they cannot submit until the lease runs out. End it, serve another.
        held.status = "expired"
        held.ended_at = now
        _release_slots(session, Counter({task.id: 1}))
    if gold_rules.is_blocked(session, project_id=project.id, annotator_id=annotator.id):
        raise Forbidden("your answers to this project's quality checks are below its threshold")
    locked = locks_claimed_rows(session)
    params = {"project_id": project.id, "annotator_id": annotator.id}
    if gold_rules.serve_gold_now(gold_rules.parse_policy(project.gold_policy)):
        task = session.scalar(_NEXT_GOLD[locked], params)
        if task is not None:
            session.execute(_TAKE_GOLD_SLOT, {"task_id": task.id})
            return _lease(session, task=task, annotator=annotator, now=now, lease_seconds=lease_seconds), task
    for variants in _NEXT:
        task = session.scalar(variants[locked], params)
        if task is None:
            continue
        taken: CursorResult[Any] = session.execute(_TAKE_SLOT, {"task_id": task.id})  # type: ignore[assignment]
        if taken.rowcount != 1:  # pragma: no cover - the row lock or BEGIN IMMEDIATE prevents it
            continue
        return _lease(session, task=task, annotator=annotator, now=now, lease_seconds=lease_seconds), task
    return None


def _lease(session: Session, *, task: Task, annotator: User, now: datetime, lease_seconds: int) -> Assignment:
    values = {"task_id": task.id, "project_id": task.project_id, "annotator_id": annotator.id, "status": "active",
              "created_at": now, "expires_at": now + timedelta(seconds=lease_seconds), "ended_at": None}
    return insert_row(session, Assignment, _NEW_LEASE, values)


_OWN = {False: select(Assignment).where(Assignment.id == bindparam("assignment_id"))}
_OWN[True] = _OWN[False].with_for_update()


def get_own_assignment(
    session: Session, *, assignment_id: int, annotator: User, lock: bool = False
) -> Assignment:
    """An annotator's own assignment; anyone else's is 404."""
    assignment = session.scalar(_OWN[lock], {"assignment_id": assignment_id})
    if assignment is None or assignment.annotator_id != annotator.id:
        raise NotFound("assignment not found")
    return assignment


def skip(session: Session, *, assignment_id: int, annotator: User, now: datetime) -> None:
    assignment = get_own_assignment(session, assignment_id=assignment_id, annotator=annotator, lock=True)
    if assignment.status == "skipped":
        return  # a repeated skip is harmless
    if assignment.status != "active" or assignment.expires_at <= now:
        raise Conflict(f"this lease is no longer valid ({_state(assignment, now)})")
    assignment.status = "skipped"
    assignment.ended_at = now
    _release_slots(session, Counter({assignment.task_id: 1}))
    session.flush()


def renew(session: Session, *, assignment_id: int, annotator: User, now: datetime, lease_seconds: int) -> Assignment:
    """Extend a live lease while the annotator is still working on it."""
    assignment = get_own_assignment(session, assignment_id=assignment_id, annotator=annotator, lock=True)
    if assignment.status != "active" or assignment.expires_at <= now:
        raise Conflict(f"this lease is no longer valid ({_state(assignment, now)})")
    assignment.expires_at = now + timedelta(seconds=lease_seconds)
    session.flush()
    return assignment


def _state(assignment: Assignment, now: datetime) -> str:
    if assignment.status == "active" and assignment.expires_at <= now:
        return "expired"
    return assignment.status
