"""Importing answers made elsewhere (another tool, a vendor): all or nothing.

Each row is ``{"task": <unique_id>, "annotator": <their id there>, "answer": {...}}`` (and
optionally ``"seconds"``). Every answer is validated by the project's task type; any invalid
row (unknown task, canceled task, an annotator answering a task twice, a bad answer) is
listed with its row number and the caller rolls back: nothing is written.

Outside annotators become pseudonymous users of the organization (role ``external``, no
password, never signed in), so their answers count in aggregation and reliability like
anyone's. Imported answers are not limited by ``redundancy.max``: a task's ``required``
grows to hold them (invariant 1 stays true). A pending task that reaches its required answers
this way is decided over all of its answers, exactly as after a submit; a refit
(``POST /projects/{id}/quality/refit``) then re-scores it with the fitted annotator models.
Answers to gold tasks are scored against the gold answer like any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qistas.db.enums import LeaseStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, Project, Task, User
from qistas.domain import annotations as answering
from qistas.domain import gold as gold_rules
from qistas.domain.imports import RowError
from qistas.domain.jsonsafe import check_storable
from qistas.domain.tasktypes import Spec, parse_spec, validate_answer
from qistas.errors import Invalid, QistasError

CHUNK = 1000
ROW_KEYS = {"task", "annotator", "answer", "seconds"}


@dataclass
class _Row:
    number: int
    task: str
    annotator: str
    answer: Any
    seconds: float | None


def _text_id(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise Invalid(f"{name} must be a string of 1 to 255 characters")
    check_storable(value, name)
    return value


def _parse(number: int, raw: Any) -> _Row:
    if isinstance(raw, RowError):
        raise Invalid(raw.message)
    if not isinstance(raw, dict):
        raise Invalid("a row must be a JSON object")
    unknown = raw.keys() - ROW_KEYS
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}")
    for key in ("task", "annotator", "answer"):
        if key not in raw:
            raise Invalid(f"{key} is missing")
    seconds = raw.get("seconds")
    if seconds is not None and (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                                or not 0 <= seconds <= answering.MAX_SECONDS):
        raise Invalid(f"seconds must be between 0 and {answering.MAX_SECONDS}")
    check_storable(raw["answer"], "answer")
    return _Row(number, _text_id(raw["task"], "task"), _text_id(raw["annotator"], "annotator"), raw["answer"],
                None if seconds is None else float(seconds))


def external_email(org_id: int, external_id: str) -> str:
    """A unique, never-deliverable address for an outside annotator (``.invalid`` is reserved)."""
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:32]
    return f"{digest}@org-{org_id}.external.invalid"


def _externals(session: Session, *, org_id: int, external_ids: set[str], now: datetime) -> dict[str, int]:
    """The user id of each outside annotator, made on first sight."""
    found = dict(session.execute(
        select(User.external_id, User.id).where(User.org_id == org_id, User.role == Role.EXTERNAL,
                                                User.external_id.in_(external_ids))
    ).all())
    for external_id in sorted(external_ids - found.keys()):
        user = User(email=external_email(org_id, external_id), role=Role.EXTERNAL, org_id=org_id,
                    password_hash=None, is_reviewer=False, is_active=False, external_id=external_id,
                    created_at=now)
        session.add(user)
        session.flush()
        found[external_id] = user.id
    return {k: v for k, v in found.items() if k is not None}


@dataclass
class _Import:
    session: Session
    project: Project
    spec: Spec
    now: datetime
    seen: set[tuple[str, str]]
    counts: dict[int, int]  # task id -> answers imported
    created: int = 0

    def check(self, rows: list[_Row]) -> tuple[list[tuple[_Row, Task, dict[str, Any]]], list[dict[str, Any]]]:
        """Validate a chunk against the database; return the good rows and the errors."""
        tasks = {t.unique_id: t for t in self.session.scalars(
            select(Task).where(Task.project_id == self.project.id, Task.unique_id.in_({r.task for r in rows}))
            .with_for_update()
        )}
        externals = dict(self.session.execute(
            select(User.external_id, User.id).where(User.org_id == self.project.org_id, User.role == Role.EXTERNAL,
                                                    User.external_id.in_({r.annotator for r in rows}))
        ).all())
        answered = set(self.session.execute(
            select(Annotation.task_id, Annotation.annotator_id).where(
                Annotation.task_id.in_([t.id for t in tasks.values()]),
                Annotation.annotator_id.in_(list(externals.values())))
        ).all()) if externals and tasks else set()
        good, errors = [], []
        for row in rows:
            try:
                task = tasks.get(row.task)
                if task is None:
                    raise Invalid(f"unknown task {row.task!r}")
                if task.status == TaskStatus.CANCELED:
                    raise Invalid(f"task {row.task!r} is canceled")
                if (row.task, row.annotator) in self.seen or (task.id, externals.get(row.annotator)) in answered:
                    raise Invalid(f"annotator {row.annotator!r} already answered task {row.task!r}")
                self.seen.add((row.task, row.annotator))
                good.append((row, task, validate_answer(self.spec, task.data, row.answer)))
            except QistasError as exc:
                errors.append({"row": row.number, "message": exc.message})
        return good, errors

    def store(self, good: list[tuple[_Row, Task, dict[str, Any]]]) -> None:
        people = _externals(self.session, org_id=self.project.org_id, external_ids={r.annotator for r, _, _ in good},
                            now=self.now)
        leases = [{"task_id": task.id, "project_id": self.project.id, "annotator_id": people[row.annotator],
                   "status": LeaseStatus.IMPORTED, "created_at": self.now, "expires_at": self.now, "ended_at": self.now}
                  for row, task, _ in good]
        ids = self.session.scalars(insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True),
                                   leases).all()
        values = []
        for lease_id, (row, task, answer) in zip(ids, good, strict=True):
            correct = gold_rules.matches(self.spec, answer, task.gold) if task.is_gold else None
            values.append({"assignment_id": lease_id, "task_id": task.id, "project_id": self.project.id,
                           "annotator_id": people[row.annotator], "answer": answer, "seconds": row.seconds,
                           "gold_correct": correct, "created_at": self.now})
            gold_rules.record_answer(self.session, project=self.project, annotator_id=people[row.annotator],
                                     seconds=row.seconds, gold_correct=correct)
            self.counts[task.id] = self.counts.get(task.id, 0) + 1
        self.session.execute(insert(Annotation), values)
        self.created += len(values)

    def settle(self) -> None:
        """Count the answers on their tasks; decide the pending ones that have enough."""
        ids = sorted(self.counts)
        for start in range(0, len(ids), CHUNK):
            for task in self.session.scalars(select(Task).where(Task.id.in_(ids[start:start + CHUNK]))):
                n = self.counts[task.id]
                task.n_annotations += n
                task.n_claimed += n
                task.required = max(task.required, task.n_claimed)
                self.session.flush()
                if task.status == TaskStatus.PENDING and not task.is_gold:
                    answering.settle(self.session, task=task, project=self.project, spec=self.spec, now=self.now)


def import_annotations(session: Session, *, project: Project, rows: Iterable[tuple[int, Any]], now: datetime,
                       max_errors: int = 100) -> int:
    """Store every row's answer or none; return how many were stored."""
    spec = parse_spec(project.task_spec)
    job = _Import(session, project, spec, now, seen=set(), counts={})
    errors: list[dict[str, Any]] = []
    n_errors = total = 0
    chunk: list[_Row] = []

    def flush() -> None:
        nonlocal n_errors
        if chunk:
            good, bad = job.check(chunk)
            n_errors += len(bad)
            errors.extend(bad[:max(0, max_errors - len(errors))])
            if not n_errors:
                job.store(good)
        chunk.clear()

    for number, raw in rows:
        total += 1
        try:
            chunk.append(_parse(number, raw))
        except QistasError as exc:
            n_errors += 1
            if len(errors) < max_errors:
                errors.append({"row": number, "message": exc.message})
        if len(chunk) >= CHUNK:
            flush()
    flush()
    if n_errors:
        errors.sort(key=lambda e: e["row"])
        raise Invalid(f"{n_errors} invalid row(s); nothing was imported",
                      details={"rows": errors, "invalid": n_errors, "total": total})
    if total == 0:
        raise Invalid("no annotations to import", details={"field": "file"})
    job.settle()
    return job.created
