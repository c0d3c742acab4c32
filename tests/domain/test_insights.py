"""What the owner console shows: agreement, the confusion matrix, throughput."""

from __future__ import annotations

from datetime import timedelta

from qistas.db.engine import Database
from qistas.db.models import Annotation, Assignment, Project, Task
from qistas.db.types import utcnow
from qistas.domain import insights, projects, users


def test_agreement_confusion_and_throughput(database: Database) -> None:
    now = utcnow()
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
        workers = [users.create_user(session, email=f"w{i}@crowd.test", role="annotator") for i in range(3)]
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                          task={"type": "classification", "labels": ["x", "y"]})
        # Task 1: x, x, y -> x.  Task 2: y, y (no response yet).
        plan = [("x", ["x", "x", "y"]), (None, ["y", "y"])]
        for response, given in plan:
            task = Task(project_id=project.id, data={}, required=3, status="completed" if response else "pending",
                        response={"label": response} if response else None)
            session.add(task)
            session.flush()
            for worker, label in zip(workers, given, strict=False):
                a = Assignment(task_id=task.id, project_id=project.id, annotator_id=worker.id, status="submitted",
                               expires_at=now)
                session.add(a)
                session.flush()
                session.add(Annotation(assignment_id=a.id, task_id=task.id, project_id=project.id,
                                       annotator_id=worker.id, answer={"label": label}, seconds=3.0,
                                       created_at=now - timedelta(hours=2)))
        project_id = project.id
    with database.reader() as session:
        found = insights.project_insights(session, project=session.get_one(Project, project_id))
        # Pairs: task 1 has 3 pairs (1 agreeing), task 2 has 1 pair (agreeing).
        assert found.pairs == 4 and found.pair_agreement == 0.5
        assert found.categories == ["x", "y"]
        assert found.confusion == [[2, 0], [1, 0]]
        by_worker = {r.annotator_id: r for r in found.annotators}
        assert by_worker[workers[0].id].agreement == 1.0 and by_worker[workers[2].id].agreement == 0.0
        hourly = insights.hourly_throughput(session, project_id=project_id, now=now)
        assert len(hourly) == 24 and sum(n for _, n in hourly) == 5 and hourly[-3][1] == 5
        counts = insights.status_counts(session, project_ids=[project_id])
        assert counts[project_id] == {"completed": 1, "pending": 1}
