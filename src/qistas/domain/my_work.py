"""An annotator's own record: what they did on each project (under its work name, never the
customer's), how much time it took, how their gold answers and reviewed answers fared, where
they stand (working, on probation, blocked), and their skills and pools. What the annotator's
own page and ``GET /users/me/work`` show; nothing here names a customer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.models import Annotation, Pool, PoolMember, Project, WorkerStats
from qistas.domain import gold
from qistas.domain.workforce import skills_list, skills_of

STANDINGS = ("working", "probation", "blocked")


@dataclass(frozen=True)
class ProjectWork:
    project_id: int
    work_name: str
    task_type: str
    answers: int
    seconds: float
    gold: int
    gold_correct: int
    reviewed: int
    rejected: int  # reviewed answers found wrong (sent back or corrected)
    sent_back: int  # answers a reviewer or the customer sent back to be done again
    standing: str  # working | probation | blocked

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold if self.gold else None

    @property
    def review_pass_rate(self) -> float | None:
        return (self.reviewed - self.rejected) / self.reviewed if self.reviewed else None


@dataclass(frozen=True)
class MyWork:
    projects: list[ProjectWork]
    skills: list[dict[str, Any]]
    pools: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        gold = sum(p.gold for p in self.projects)
        reviewed = sum(p.reviewed for p in self.projects)
        return {
            "answers": sum(p.answers for p in self.projects),
            "seconds": sum(p.seconds for p in self.projects),
            "gold": gold,
            "gold_accuracy": sum(p.gold_correct for p in self.projects) / gold if gold else None,
            "reviewed": reviewed,
            "review_pass_rate": (reviewed - sum(p.rejected for p in self.projects)) / reviewed if reviewed else None,
            "sent_back": sum(p.sent_back for p in self.projects),
        }


def _standing(stats: WorkerStats) -> str:
    """Paused (by gold, review or a fraud action), on probation (after an unblock, or a fraud
    flag), or working; never why a fraud flag was raised."""
    if stats.blocked:
        return "blocked"
    return "probation" if stats.probation or stats.fraud_status == gold.PROBATION else "working"


def my_work(session: Session, *, user_id: int) -> MyWork:
    """The annotator's record, projects with the most answers first (three queries)."""
    sent_back: dict[int, int] = {project_id: n for project_id, n in session.execute(
        select(Annotation.project_id, func.count()).where(Annotation.annotator_id == user_id,
                                                          Annotation.rejected_at.is_not(None))
        .group_by(Annotation.project_id))}
    rows = session.execute(
        select(WorkerStats, Project.work_name, Project.task_spec).join(Project, Project.id == WorkerStats.project_id)
        .where(WorkerStats.annotator_id == user_id)
        .order_by(WorkerStats.n_annotations.desc(), WorkerStats.project_id)).all()
    projects = [ProjectWork(project_id=stats.project_id, work_name=work_name, task_type=str(spec.get("type")),
                            answers=stats.n_annotations, seconds=float(stats.seconds_total or 0.0), gold=stats.n_gold,
                            gold_correct=stats.n_gold_correct, reviewed=stats.n_reviewed, rejected=stats.n_rejected,
                            sent_back=sent_back.get(stats.project_id, 0), standing=_standing(stats))
                for stats, work_name, spec in rows]
    pools = session.execute(
        select(Pool.id, Pool.name, Pool.kind, PoolMember.is_manager).join(PoolMember, PoolMember.pool_id == Pool.id)
        .where(PoolMember.user_id == user_id).order_by(Pool.name)).all()
    return MyWork(projects=projects, skills=skills_list(skills_of(session, user_id=user_id)),
                  pools=[{"id": i, "name": n, "kind": k, "manager": bool(m)} for i, n, k, m in pools])
