"""Qualification exams: a project of gold tasks, taken in attempts, scored against its gold.

A project becomes an exam when its ``exam`` settings are set (``set_exam``): a pass mark (a
percentage), the number of questions an attempt asks, and a retake policy (a cool-down after a
failed attempt, a most number of attempts). Its gold tasks are the questions.

An annotator starts an attempt (``start_attempt``), then takes the exam's questions through the
assignment engine like any task (``take_question``: leases, never the same task twice, so a
retake asks other questions). Each answer is scored by the task type's gold rule at its submit
(``count_answer``); a question skipped or left to expire counts as answered wrong. Once every
question of the attempt was served and none is in hand, the attempt is finished (``finish``):
its score is the share of the questions answered right, and it passes at the pass mark.
Passing grants the exam's skill, if it names one, and admits to the projects whose routing
requires the exam (``routing.exams``): both reach routing through the annotator's work profile
(``workforce.refresh_profile``), so the take path reads nothing more.

The annotator sees an attempt's score and whether it passed, once it is finished: never the
gold answers, nor, while it is open, which answers were right.

Starting is serialised per annotator and exam (the claim's own lock on PostgreSQL, SQLite's
writer otherwise), so two parallel starts never make more attempts than the policy allows;
a unique (exam, annotator, number) constraint backs it up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.enums import TaskStatus
from qistas.db.models import Assignment, ExamAttempt, Project, Task, User, UserSkill
from qistas.db.queries.assignments import Lease, WorkTask
from qistas.domain import assignments, audit, workforce
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import ensure_may_grant_skill

OPEN, PASSED, FAILED = "open", "passed", "failed"
ATTEMPT_STATUSES = (OPEN, PASSED, FAILED)
MAX_QUESTIONS = 1000
MAX_COOLDOWN_SECONDS = 365 * 24 * 3600
MAX_ATTEMPTS = 100
FIELDS = ("pass_mark", "questions", "cooldown_seconds", "max_attempts", "grants")


@dataclass(frozen=True)
class ExamSettings:
    pass_mark: float  # percent of the questions answered right, 0 to 100
    questions: int  # asked per attempt
    cooldown_seconds: int = 0  # after a failed attempt, before the next
    max_attempts: int | None = None  # None: as many as the gold tasks allow
    grants: str | None = None  # "kind:tag", granted at ``grant_level`` on a pass
    grant_level: int = 0

    def stored(self) -> dict[str, Any]:
        return {"pass_mark": self.pass_mark, "questions": self.questions, "cooldown_seconds": self.cooldown_seconds,
                "max_attempts": self.max_attempts, "grants": self.grants, "grant_level": self.grant_level}

    def view(self) -> dict[str, Any]:
        """As the API shows it (the input's shape)."""
        grants = None
        if self.grants is not None:
            kind, _, tag = self.grants.partition(":")
            grants = {"kind": kind, "tag": tag, "level": self.grant_level}
        return {"pass_mark": self.pass_mark, "questions": self.questions, "cooldown_seconds": self.cooldown_seconds,
                "max_attempts": self.max_attempts, "grants": grants}


def _int(raw: Any) -> TypeGuard[int]:
    return isinstance(raw, int) and not isinstance(raw, bool)


def parse_settings(raw: Any) -> ExamSettings:
    """An exam's settings, checked: ``Invalid`` naming the first bad field."""
    if not isinstance(raw, dict) or set(raw) - set(FIELDS):
        raise Invalid(f"an exam is {{{', '.join(FIELDS)}}}", details={"field": "exam"})
    mark = raw.get("pass_mark")
    if not isinstance(mark, int | float) or isinstance(mark, bool) or not math.isfinite(mark) or not 0 <= mark <= 100:
        raise Invalid("pass_mark is a percentage from 0 to 100", details={"field": "pass_mark"})
    questions = raw.get("questions")
    if not _int(questions) or not 1 <= questions <= MAX_QUESTIONS:
        raise Invalid(f"questions is an integer from 1 to {MAX_QUESTIONS}", details={"field": "questions"})
    cooldown = raw.get("cooldown_seconds", 0)
    if not _int(cooldown) or not 0 <= cooldown <= MAX_COOLDOWN_SECONDS:
        raise Invalid(f"cooldown_seconds is an integer from 0 to {MAX_COOLDOWN_SECONDS}",
                      details={"field": "cooldown_seconds"})
    attempts = raw.get("max_attempts")
    if attempts is not None and (not _int(attempts) or not 1 <= attempts <= MAX_ATTEMPTS):
        raise Invalid(f"max_attempts is an integer from 1 to {MAX_ATTEMPTS}, or null for no limit",
                      details={"field": "max_attempts"})
    grants, level = None, 0
    granted = raw.get("grants")
    if granted is not None:
        if not isinstance(granted, dict) or set(granted) - {"kind", "tag", "level"}:
            raise Invalid('grants is {"kind", "tag", "level"} or null', details={"field": "grants"})
        grants = workforce.skill_key(granted.get("kind"), granted.get("tag"), field="grants")
        level = workforce.level_of(granted.get("level"), field="grants.level")
    return ExamSettings(float(mark), questions, cooldown, attempts, grants, level)


def settings_of(project: Project) -> ExamSettings | None:
    """The project's exam settings (stored checked), or None when it is not an exam."""
    if not project.exam:
        return None
    return ExamSettings(**project.exam)


def exam_of(project: Project) -> ExamSettings:
    found = settings_of(project)
    if found is None:
        raise NotFound("exam not found")
    return found


def gold_tasks(session: Session, *, project_id: int) -> int:
    """The exam's questions: its gold tasks that may be served (not canceled)."""
    return session.scalar(select(func.count()).select_from(Task).where(
        Task.project_id == project_id, Task.is_gold.is_(True), Task.status == TaskStatus.PENDING)) or 0


def set_exam(session: Session, *, project: Project, actor: User, raw: Any) -> ExamSettings:
    """Make the project an exam, or change its settings (attempts already begun keep theirs).
    Refused, with nothing written, when it has fewer gold tasks than an attempt asks."""
    if project.archived_at is not None:
        raise Conflict("the project is archived: unarchive it first (archived: false)", details={"field": "archived"})
    settings = parse_settings(raw)
    if settings.grants is not None:
        ensure_may_grant_skill(actor, project)
    available = gold_tasks(session, project_id=project.id)
    if available == 0:
        raise Invalid("the project has no gold tasks: import tasks with a gold answer, they are the exam's questions",
                      details={"field": "project"})
    if available < settings.questions:
        raise Invalid(f"an attempt asks {settings.questions} questions but the project has {available} gold tasks",
                      details={"field": "questions"})
    project.exam = settings.stored()
    session.flush()
    audit.record(session, actor=actor, action="exam.put", object_type="project", object_id=project.id,
                 org_id=project.org_id, details=settings.view())
    return settings


# --- attempts -------------------------------------------------------------------------------


def attempts_of(session: Session, *, user_id: int, project_id: int | None = None) -> list[ExamAttempt]:
    """An annotator's attempts, oldest first: at one exam, or at every exam."""
    query = select(ExamAttempt).where(ExamAttempt.annotator_id == user_id)
    if project_id is not None:
        query = query.where(ExamAttempt.project_id == project_id)
    return list(session.scalars(query.order_by(ExamAttempt.project_id, ExamAttempt.number)))


def attempts_at(session: Session, *, project_id: int, after: int | None = None, limit: int | None = None,
                annotator_id: int | None = None) -> list[ExamAttempt]:
    """The attempts at an exam, oldest first: up to ``limit`` after attempt ``after``; everyone's
    (its organization's view), or ``annotator_id``'s."""
    query = select(ExamAttempt).where(ExamAttempt.project_id == project_id).order_by(ExamAttempt.id).limit(limit)
    if annotator_id is not None:
        query = query.where(ExamAttempt.annotator_id == annotator_id)
    if after is not None:
        query = query.where(ExamAttempt.id > after)
    return list(session.scalars(query))


def open_attempt(session: Session, *, project_id: int, annotator_id: int, lock: bool = False) -> ExamAttempt | None:
    query = select(ExamAttempt).where(ExamAttempt.project_id == project_id, ExamAttempt.annotator_id == annotator_id,
                                      ExamAttempt.status == OPEN)
    return session.scalar(query.with_for_update() if lock else query)


def next_attempt_at(attempts: list[ExamAttempt], settings: ExamSettings) -> datetime | None:
    """When the annotator may start another attempt after a failed one (None: now, or never)."""
    if not attempts or attempts[-1].status != FAILED or attempts[-1].finished_at is None:
        return None
    return attempts[-1].finished_at + timedelta(seconds=settings.cooldown_seconds)


def start_attempt(session: Session, *, project: Project, annotator: User, now: datetime) -> tuple[ExamAttempt, bool]:
    """Begin an attempt at the exam: ``(attempt, True)``; the annotator's open attempt when they
    have one: ``(it, False)``. A passed exam, no attempts left, a cool-down running, or too few
    questions the annotator has not seen yet: ``Conflict``, nothing written."""
    settings = exam_of(project)
    assignments.lock_claims(session, project_id=project.id, annotator_id=annotator.id)
    mine = attempts_of(session, user_id=annotator.id, project_id=project.id)
    for attempt in mine:
        if attempt.status == OPEN:
            return attempt, False
        if attempt.status == PASSED:
            raise Conflict("you passed this exam", code="retake_limit", details={"passed": attempt.id})
    if settings.max_attempts is not None and len(mine) >= settings.max_attempts:
        raise Conflict(f"no attempt left: this exam allows {settings.max_attempts}", code="retake_limit",
                       details={"max_attempts": settings.max_attempts})
    ready = next_attempt_at(mine, settings)
    if ready is not None and now < ready:
        wait = math.ceil((ready - now).total_seconds())
        raise Conflict(f"another attempt may begin in {wait} seconds", code="retake_cooldown",
                       details={"retry_at": ready.isoformat(), "retry_after": wait})
    if _unseen_questions(session, project_id=project.id, annotator_id=annotator.id) < settings.questions:
        raise Conflict("this exam has no more questions you have not seen: ask its organization for more gold tasks",
                       details={"field": "questions"})
    attempt = ExamAttempt(project_id=project.id, annotator_id=annotator.id, number=len(mine) + 1, status=OPEN,
                          questions=settings.questions, pass_mark=settings.pass_mark, n_served=0, n_answered=0,
                          n_correct=0, started_at=now)
    session.add(attempt)
    session.flush()
    return attempt, True


def _unseen_questions(session: Session, *, project_id: int, annotator_id: int) -> int:
    seen = select(Assignment.id).where(Assignment.task_id == Task.id, Assignment.annotator_id == annotator_id).exists()
    return session.scalar(select(func.count()).select_from(Task).where(
        Task.project_id == project_id, Task.is_gold.is_(True), Task.status == TaskStatus.PENDING, ~seen)) or 0


def take_question(
    session: Session, *, project: Project, annotator: User, now: datetime, lease_seconds: int
) -> tuple[tuple[Lease, WorkTask] | None, ExamAttempt | None]:
    """The next question of the annotator's open attempt: ``(lease and task, None)``; the one in
    hand if they hold one. ``(None, attempt)`` when the attempt is over (its last question's lease
    ran out): the attempt, finished here; ``(None, None)`` after it (nothing is left). No attempt
    ever begun: ``Conflict``."""
    held = assignments.lease_in_hand(session, project=project, annotator=annotator, now=now)
    if held is not None:
        return held, None
    attempt = open_attempt(session, project_id=project.id, annotator_id=annotator.id, lock=True)
    if attempt is None:
        if _sat(session, project_id=project.id, annotator_id=annotator.id):
            return None, None  # the attempt is over: nothing is left until another begins
        raise Conflict("this project is an exam: start an attempt first (POST /projects/{id}/exam/attempts)",
                       code="no_open_attempt")
    if attempt.n_served < attempt.questions:
        claimed = assignments.claim_gold(session, project=project, annotator=annotator, now=now,
                                         lease_seconds=lease_seconds)
        if claimed is not None:
            attempt.n_served += 1
            session.flush()
            return claimed, None
    # Every question was served and none is in hand (or a canceled gold task left too few).
    return None, finish(session, project=project, attempt=attempt, now=now)


def _sat(session: Session, *, project_id: int, annotator_id: int) -> bool:
    return session.scalar(select(ExamAttempt.id).where(ExamAttempt.project_id == project_id,
                                                       ExamAttempt.annotator_id == annotator_id).limit(1)) is not None


def count_answer(session: Session, *, project: Project, annotator_id: int, correct: bool,
                 now: datetime) -> ExamAttempt | None:
    """Count a submitted answer to a question in the annotator's open attempt; the attempt,
    finished, when it was the last question (else None)."""
    attempt = open_attempt(session, project_id=project.id, annotator_id=annotator_id, lock=True)
    if attempt is None:
        return None  # a lease taken before the project became an exam
    attempt.n_answered += 1
    attempt.n_correct += int(correct)
    session.flush()
    if attempt.n_served < attempt.questions:
        return None
    return finish(session, project=project, attempt=attempt, now=now)


def question_ended(session: Session, *, project: Project, annotator_id: int, now: datetime) -> ExamAttempt | None:
    """After a question is skipped (it counts as answered wrong): the attempt, finished, when that
    was its last question."""
    attempt = open_attempt(session, project_id=project.id, annotator_id=annotator_id, lock=True)
    if attempt is None or attempt.n_served < attempt.questions:
        return None
    return finish(session, project=project, attempt=attempt, now=now)


def finish(session: Session, *, project: Project, attempt: ExamAttempt, now: datetime) -> ExamAttempt:
    """Score the attempt against its questions (one not answered counts as wrong); a pass grants
    the exam's skill and admits to the projects that require the exam."""
    passed = attempt.n_correct * 100 >= attempt.pass_mark * attempt.questions
    attempt.score = round(100 * attempt.n_correct / attempt.questions, 2)
    attempt.status = PASSED if passed else FAILED
    attempt.finished_at = now
    session.flush()
    if passed:
        annotator = session.get(User, attempt.annotator_id)
        assert annotator is not None
        settings = settings_of(project)
        if settings is not None and settings.grants is not None:
            _grant(session, user_id=annotator.id, skill=settings.grants, level=settings.grant_level)
        workforce.refresh_profile(session, user=annotator)
    return attempt


def _grant(session: Session, *, user_id: int, skill: str, level: int) -> None:
    """The skill at least at ``level``: a higher level the annotator has stays."""
    kind, _, tag = skill.partition(":")
    found = session.get(UserSkill, (user_id, kind, tag))
    if found is None:
        session.add(UserSkill(user_id=user_id, kind=kind, tag=tag, level=level))
    elif found.level < level:
        found.level = level
    session.flush()


def record_result(session: Session, events: audit.LoopEvents, *, project: Project, attempt: ExamAttempt) -> None:
    """The audit event of a finished attempt: ``exam.pass`` (with the skill it granted) or
    ``exam.fail``."""
    events.record(session, project=project, action=f"exam.{'pass' if attempt.status == PASSED else 'fail'}",
                  object_type="exam_attempt", object_id=attempt.id, details=result_details(attempt, project))


def result_details(attempt: ExamAttempt, project: Project) -> dict[str, Any]:
    """What the audit event of a finished attempt records."""
    settings = settings_of(project)
    details: dict[str, Any] = {"exam": attempt.project_id, "attempt": attempt.number, "score": attempt.score,
                               "pass_mark": attempt.pass_mark}
    if attempt.status == PASSED and settings is not None and settings.grants is not None:
        details["granted"] = {"skill": settings.grants, "level": settings.grant_level}
    return details
