"""The assignment engine: leasing tasks to annotators.

Invariants (DESIGN.md), and what keeps each one:

1. ``n_claimed`` (annotations + live leases) never exceeds ``required``: a claim increments
   it only with the guard ``n_claimed < required`` in the same UPDATE.
2. An annotator never gets the same task twice: the claim query excludes tasks they have an
   assignment for, and a unique (task, annotator) constraint backs it up.
3. Leases expire: every claim first sweeps the project's expired leases, freeing their slots:
   the ``SWEPT_PER_CLAIM`` that ran out first, and all the rest when it then finds no task (so
   a take after an outage does not end every lease of a large project in one transaction).
4. & 5. live in ``annotations.submit``.

Concurrency: on SQLite claims run in ``BEGIN IMMEDIATE`` transactions, one at a time; on
PostgreSQL the picked task row is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent claims
take different rows instead of queueing on one, and one annotator's claims in one project
queue on a transaction-scoped advisory lock: the second sees the first's lease and gets it back
instead of a second task (the rule of one live lease per annotator and project).

Speed: the claim is the hottest path of the server, and building or executing a statement
through SQLAlchemy costs far more CPU than SQLite takes to run it. Its statements are written
once against the tables (``db/queries/assignments.py``) and run as ``Prepared`` statements
(``db/prepared.py``): compiled once per dialect, executed on the driver's cursor, rows
returned as small named tuples. On PostgreSQL, where each statement is a round trip that
costs the server more than the statement costs the database, the whole claim is one call of
the function ``qistas_take`` (migrations 0024 and 0027), which runs the same steps in the same
order under the same locks; the statements below are SQLite's claim, and the exam's.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qistas.db.dialect import locks_claimed_rows
from qistas.db.enums import LeaseStatus, TaskStatus
from qistas.db.models import Assignment, Project, User
from qistas.db.queries import assignments as queries
from qistas.db.queries.assignments import Lease, WorkTask
from qistas.domain import active_learning, audit, pay, predictions
from qistas.domain import gold as gold_rules
from qistas.errors import Conflict, Forbidden, NotFound

# Expired leases a claim gives back before it looks for a task (all the rest when it finds none).
SWEPT_PER_CLAIM = 100


def expire_leases(session: Session, *, project_id: int, now: datetime, limit: int | None = None) -> int:
    """Mark the project's expired leases (the ``limit`` that ran out first; None: all) and give
    their slots back to their tasks."""
    locked = locks_claimed_rows(session)
    everyone = None if locked else -1  # LIMIT NULL on PostgreSQL, LIMIT -1 on SQLite
    rows = queries.STALE[locked].all(session, project_id=project_id, now=now,
                                     limit=everyone if limit is None else limit)
    if not rows:
        return 0
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([r.id for r in rows]), Assignment.status == LeaseStatus.ACTIVE)
        .values(status=LeaseStatus.EXPIRED, ended_at=now)
    )
    _release_slots(session, Counter(r.task_id for r in rows))
    return len(rows)


def release_all(session: Session, *, annotator_id: int, now: datetime, project_id: int | None = None) -> int:
    """End every active lease of an annotator (deactivated; or blocked in ``project_id``) and
    give their slots back.

    Each lease is ended by a guarded UPDATE, so a lease that a concurrent sweep expired
    first is not given back twice.
    """
    query = select(Assignment.id, Assignment.task_id).where(Assignment.annotator_id == annotator_id,
                                                            Assignment.status == LeaseStatus.ACTIVE)
    if project_id is not None:
        query = query.where(Assignment.project_id == project_id)
    leases = session.execute(query.order_by(Assignment.task_id)).all()
    per_task: Counter[int] = Counter()
    for lease_id, task_id in leases:
        ended = session.execute(
            update(Assignment).where(Assignment.id == lease_id, Assignment.status == LeaseStatus.ACTIVE)
            .values(status=LeaseStatus.RELEASED, ended_at=now)
        )
        if ended.rowcount:  # type: ignore[attr-defined]
            per_task[task_id] += 1
    _release_slots(session, per_task)
    return sum(per_task.values())


def _release_slots(session: Session, per_task: Counter[int]) -> None:
    # Sorted, so two transactions always lock tasks in the same order (no deadlock).
    for task_id in sorted(per_task):
        queries.GIVE_BACK_SLOTS.run(session, task_id=task_id, slots=per_task[task_id])


def load_project(session: Session, project_id: int) -> Project | None:
    """The project, read with one prepared statement: a detached object, complete."""
    return queries.PROJECT.first(session, project_id=project_id)


def active_lease(session: Session, *, project_id: int, annotator_id: int, now: datetime) -> Lease | None:
    return queries.HELD.first(session, project_id=project_id, annotator_id=annotator_id, now=now)


def claim(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int,
    events: audit.LoopEvents | None = None,
) -> tuple[Lease, WorkTask] | None:
    """Lease the next task to the annotator, or return None when nothing is left for them.

    An annotator holding a live lease in the project gets that lease back (a reload or a
    retried request must not hoard a second task). Order: tasks already started first
    (finish what is open), then import order, or active learning's order when the project
    has it on. ``events``: the lease handed out is recorded in the audit log (``task.take``:
    the answer carries the task's data, a read of customer data).
    """
    gold = gold_rules.draw_gold(gold_rules.parse_policy(project.gold_policy))
    if locks_claimed_rows(session):
        return claim_in_database(session, project=project, annotator=annotator, now=now, lease_seconds=lease_seconds,
                                 gold=gold, events=events)
    claimed = claim_by_statements(session, project=project, annotator=annotator, now=now,
                                  lease_seconds=lease_seconds, gold=gold)
    if claimed is not None and events is not None:
        record_take(session, events, project=project, lease=claimed[0], at=now)
    return claimed


TAKEN = "task.take"


def record_take(session: Session, events: audit.LoopEvents, *, project: Project, lease: Lease,
                at: datetime | None = None) -> None:
    """The audit event of a lease handed out (a statement of its own: SQLite, exams)."""
    events.record(session, project=project, action=TAKEN, object_type="task", object_id=lease.task_id,
                  details={"assignment": lease.id}, at=at)


def claim_by_statements(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int,
    gold: tuple[bool, bool]
) -> tuple[Lease, WorkTask] | None:
    """``claim``, a statement at a time (SQLite). ``gold``: whether to serve a gold task, for an
    annotator in good standing and for one on probation (``gold.draw_gold``)."""
    held = lease_in_hand(session, project=project, annotator=annotator, now=now)
    if held is not None:
        return held
    standing = gold_rules.standing(session, project_id=project.id, annotator_id=annotator.id)
    if standing.blocked:
        raise Forbidden(BLOCKED)
    if gold[1] if standing.fraud_status == gold_rules.PROBATION else gold[0]:
        served = claim_gold(session, project=project, annotator=annotator, now=now, lease_seconds=lease_seconds)
        if served is not None:
            return served
    claimed = _claim_open(session, project=project, annotator=annotator, now=now, lease_seconds=lease_seconds)
    if claimed is None and expire_leases(session, project_id=project.id, now=now):
        # Nothing open, but expired leases past the first sweep held slots: look again.
        claimed = _claim_open(session, project=project, annotator=annotator, now=now, lease_seconds=lease_seconds)
    return claimed


def _claim_open(session: Session, *, project: Project, annotator: User, now: datetime,
                lease_seconds: int) -> tuple[Lease, WorkTask] | None:
    """Lease the first open task of the project the annotator never had: started ones first."""
    locked = locks_claimed_rows(session)
    params = {"project_id": project.id, "annotator_id": annotator.id}
    ranked = active_learning.serves_ranked(project.active_learning)
    for variants in queries.NEXT_RANKED if ranked else queries.NEXT:
        task = variants[locked].first(session, **params)
        if task is None:
            continue
        if queries.TAKE_SLOT.run(session, task_id=task.id) != 1:  # pragma: no cover
            continue  # the row lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) prevents it
        return _lease(session, task=task, annotator=annotator, now=now, lease_seconds=lease_seconds), task
    return None


BLOCKED = "your answers to this project's quality checks are below its threshold"


def claim_in_database(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int,
    gold: tuple[bool, bool], events: audit.LoopEvents | None = None
) -> tuple[Lease, WorkTask] | None:
    """``claim`` on PostgreSQL: the same steps as ``claim_by_statements``, run by the database's
    ``qistas_take`` in one round trip, which writes the audit event too (``events``)."""
    params = {"project_id": project.id, "annotator_id": annotator.id, "now": now,
              "expires_at": now + timedelta(seconds=lease_seconds),
              "ranked": active_learning.serves_ranked(project.active_learning), "gold": gold[0],
              "gold_on_probation": gold[1], "annotator_key": _int4(annotator.id), "project_key": _int4(project.id),
              "sweep": SWEPT_PER_CLAIM}
    if events is None:
        taken = queries.TAKE.first(session, **params)
    else:
        taken = queries.TAKE_RECORDED.first(
            session, **params, **events.params(project=project, action=TAKEN, object_type="task", at=now))
    assert taken is not None
    if taken.outcome == "blocked":
        raise Forbidden(BLOCKED)
    if taken.outcome == "none":
        return None
    assert taken.lease_id is not None and taken.task_id is not None and taken.data is not None
    assert taken.lease_status is not None and taken.expires_at is not None and taken.created_at is not None
    assert taken.active_ms is not None and taken.task_status is not None
    return (Lease(taken.lease_id, taken.task_id, project.id, annotator.id, taken.lease_status, taken.expires_at,
                  taken.created_at, taken.seen_at, taken.active_ms),
            WorkTask(taken.task_id, project.id, taken.task_status, taken.data))


def lease_in_hand(
    session: Session, *, project: Project, annotator: User, now: datetime
) -> tuple[Lease, WorkTask] | None:
    """A claim's first steps: queue behind the annotator's other claims in the project
    (PostgreSQL), sweep its expired leases, and give back the live lease the annotator holds
    there, if any."""
    lock_claims(session, project_id=project.id, annotator_id=annotator.id)
    expire_leases(session, project_id=project.id, now=now, limit=SWEPT_PER_CLAIM)
    held = active_lease(session, project_id=project.id, annotator_id=annotator.id, now=now)
    if held is None:
        return None
    held_task = work_task(session, held.task_id)
    if held_task.status == TaskStatus.PENDING:
        return held, held_task
    # Its batch was canceled under the lease: handing it back would leave the annotator
    # stuck on a task they cannot submit until the lease runs out. End it, serve another.
    queries.END_LEASE.run(session, lease_id=held.id, status=LeaseStatus.EXPIRED, now=now)
    _release_slots(session, Counter({held_task.id: 1}))
    return None


def lock_claims(session: Session, *, project_id: int, annotator_id: int) -> None:
    """Queue behind the annotator's claims in the project until the transaction ends (PostgreSQL;
    SQLite's writers take turns already)."""
    if locks_claimed_rows(session):
        queries.CLAIMER_LOCK.first(session, annotator_key=_int4(annotator_id), project_key=_int4(project_id))


def claim_gold(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int
) -> tuple[Lease, WorkTask] | None:
    """Lease a gold task the annotator never had (call after ``lease_in_hand``): a quality check
    served among the project's tasks, or an exam's next question."""
    task = queries.NEXT_GOLD[locks_claimed_rows(session)].first(session, project_id=project.id,
                                                                annotator_id=annotator.id)
    if task is None:
        return None
    queries.TAKE_GOLD_SLOT.run(session, task_id=task.id)
    return _lease(session, task=task, annotator=annotator, now=now, lease_seconds=lease_seconds), task


def _int4(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _lease(session: Session, *, task: WorkTask, annotator: User, now: datetime, lease_seconds: int) -> Lease:
    expires_at = now + timedelta(seconds=lease_seconds)
    made = queries.NEW_LEASE.first(session, task_id=task.id, project_id=task.project_id, annotator_id=annotator.id,
                                   status=LeaseStatus.ACTIVE, created_at=now, expires_at=expires_at)
    assert made is not None
    return Lease(made.id, task.id, task.project_id, annotator.id, LeaseStatus.ACTIVE, expires_at, now, None, 0)


def get_own_assignment(session: Session, *, assignment_id: int, annotator: User, lock: bool = False) -> Lease:
    """An annotator's own assignment; anyone else's is 404."""
    lease = queries.OWN[lock].first(session, assignment_id=assignment_id)
    if lease is None or lease.annotator_id != annotator.id:
        raise NotFound("assignment not found")
    return lease


def work_task(session: Session, task_id: int) -> WorkTask:
    task = queries.WORK_TASK.first(session, task_id=task_id)
    assert task is not None  # tasks are never deleted
    return task


def prefill(session: Session, *, project: Project, task_id: int) -> dict[str, Any] | None:
    """The pre-fill an annotator sees on the task, if the project shows any: one read of the
    task row by its key, none at all when the project's mode is "never"."""
    if not predictions.shows_prefill(project.prefill):
        return None
    row = queries.PREDICTIONS.first(session, task_id=task_id)
    return predictions.prefill_view(project.prefill, row.predictions if row else None)


def skip(session: Session, *, assignment_id: int, annotator: User, now: datetime) -> Lease | None:
    """Give the lease back; the lease skipped (None when it had been already)."""
    lease = get_own_assignment(session, assignment_id=assignment_id, annotator=annotator, lock=True)
    if lease.status == LeaseStatus.SKIPPED:
        return None  # a repeated skip is harmless
    if lease.status != LeaseStatus.ACTIVE or lease.expires_at <= now:
        raise Conflict(f"this lease is no longer valid ({_state(lease, now)})")
    queries.END_LEASE.run(session, lease_id=lease.id, status=LeaseStatus.SKIPPED, now=now)
    _release_slots(session, Counter({lease.task_id: 1}))
    return lease


def renew(session: Session, *, assignment_id: int, annotator: User, now: datetime, lease_seconds: int,
          idle_seconds: int = pay.IDLE_SECONDS) -> Lease:
    """Extend a live lease while the annotator is still working on it (and count the time
    since the take or the last renewal, up to the idle limit: domain.pay)."""
    lease = get_own_assignment(session, assignment_id=assignment_id, annotator=annotator, lock=True)
    if lease.status != LeaseStatus.ACTIVE or lease.expires_at <= now:
        raise Conflict(f"this lease is no longer valid ({_state(lease, now)})")
    expires_at = now + timedelta(seconds=lease_seconds)
    counted = pay.active_ms(created_at=lease.created_at, seen_at=lease.seen_at, counted_ms=lease.active_ms, now=now,
                            idle_seconds=idle_seconds)
    queries.EXTEND_LEASE.run(session, lease_id=lease.id, expires_at=expires_at, now=now, active_ms=counted)
    return lease._replace(expires_at=expires_at, seen_at=now, active_ms=counted)


def _state(lease: Lease, now: datetime) -> str:
    if lease.status == LeaseStatus.ACTIVE and lease.expires_at <= now:
        return LeaseStatus.EXPIRED
    return lease.status
