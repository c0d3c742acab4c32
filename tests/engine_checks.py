"""The assignment engine's invariants (DESIGN.md), checked from what the database holds.

Shared by the concurrency, multi-process and property tests: each returns a list of
human-readable violations, empty when everything holds, so a failing test says exactly
which task broke which rule.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.models import Annotation, Assignment, Project, Task
from qistas.db.types import utcnow


def violations(session: Session, project_id: int) -> list[str]:
    """Every broken invariant of one project, read in one session."""
    project = session.get(Project, project_id)
    assert project is not None
    found: list[str] = []
    # The answers that count: one rejected in review or excluded with its annotator holds no slot.
    annotations = Counter(session.scalars(
        select(Annotation.task_id).where(Annotation.project_id == project_id, Annotation.rejected_at.is_(None))
    ))
    live = Counter(
        session.scalars(
            select(Assignment.task_id).where(Assignment.project_id == project_id, Assignment.status == "active")
        )
    )
    for task in session.scalars(select(Task).where(Task.project_id == project_id)):
        n = annotations[task.id]
        # 1. never more annotations than required, and never more than the policy's max (gold
        # tasks excepted: every annotator may answer one, and ``required`` follows them)
        if n > task.required or (n > project.redundancy_max and not task.is_gold):
            found.append(f"task {task.id}: {n} annotations, required {task.required}, max {project.redundancy_max}")
        if task.n_claimed > task.required:
            found.append(f"task {task.id}: n_claimed {task.n_claimed} > required {task.required}")
        # the counters the claim guard relies on must equal the real rows
        if task.n_annotations != n:
            found.append(f"task {task.id}: n_annotations {task.n_annotations} but {n} stored")
        # unswept expired leases still hold their slot until a claim sweeps them
        if task.n_claimed != n + live[task.id]:
            found.append(f"task {task.id}: n_claimed {task.n_claimed} but {n} annotations + {live[task.id]} leases")
        if task.status == "completed" and n < project.redundancy_min:
            found.append(f"task {task.id}: completed with {n} < min {project.redundancy_min} annotations")
        if task.status == "completed" and live[task.id]:
            found.append(f"task {task.id}: completed with {live[task.id]} live leases")
    # 2. one lease per (task, annotator), and so at most one annotation per pair
    pairs = session.execute(
        select(Annotation.task_id, Annotation.annotator_id, func.count())
        .where(Annotation.project_id == project_id)
        .group_by(Annotation.task_id, Annotation.annotator_id)
        .having(func.count() > 1)
    ).all()
    found += [f"task {t}: annotator {a} annotated it {c} times" for t, a, c in pairs]
    leases = session.execute(
        select(Assignment.task_id, Assignment.annotator_id, func.count())
        .where(Assignment.project_id == project_id)
        .group_by(Assignment.task_id, Assignment.annotator_id)
        .having(func.count() > 1)
    ).all()
    found += [f"task {t}: annotator {a} got it {c} times" for t, a, c in leases]
    # 4. & 5. an annotation belongs to exactly one submitted lease
    orphans = session.execute(
        select(Annotation.id, Assignment.status)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .where(Annotation.project_id == project_id, Assignment.status != "submitted")
    ).all()
    found += [f"annotation {i}: its lease is {s}, not submitted" for i, s in orphans]
    unstored = session.scalars(
        select(Assignment.id)
        .outerjoin(Annotation, Annotation.assignment_id == Assignment.id)
        .where(Assignment.project_id == project_id, Assignment.status == "submitted", Annotation.id.is_(None))
    ).all()
    found += [f"assignment {i}: submitted but no annotation stored" for i in unstored]
    return found


def check(database: Database, project_id: int) -> list[str]:
    with database.reader() as session:
        return violations(session, project_id)


def status_counts(database: Database, project_id: int) -> dict[str, int]:
    with database.reader() as session:
        rows = session.execute(
            select(Task.status, func.count()).where(Task.project_id == project_id).group_by(Task.status)
        )
        return {status: count for status, count in rows}


def annotation_count(database: Database, *, assignment_id: int) -> int:
    with database.reader() as session:
        return session.scalar(
            select(func.count()).select_from(Annotation).where(Annotation.assignment_id == assignment_id)
        ) or 0


def expire(database: Database, assignment_id: int) -> None:
    """Let a lease run out, as if its annotator had walked away for longer than the TTL."""
    with database.writer.begin() as session:
        session.execute(
            update(Assignment)
            .where(Assignment.id == assignment_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seen: dict[int, set[int]] = field(default_factory=dict)  # annotator -> tasks served

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def run_threads(targets: list[Any]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "an annotator thread hung"
