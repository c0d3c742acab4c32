"""Exams through the domain functions: a question left to expire counts as wrong, and the
attempt ends at the take that finds it expired; attempts_of lists an annotator's attempts."""

from __future__ import annotations

from datetime import timedelta

from qistas.db.engine import Database
from qistas.db.models import Project, User
from qistas.db.types import utcnow
from qistas.domain import annotations, exams, imports, projects, users
from tests.factories import CLASSIFICATION

LEASE = 60


def test_an_expired_question_counts_as_wrong_and_ends_the_attempt(database: Database) -> None:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Exam Co", slug="examco")
        owner = users.create_user(session, email="owner@examco.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="exam", task=CLASSIFICATION)
        rows = [(n, {"data": {"text": f"q{n}"}, "gold": {"label": "mixed"}}) for n in range(3)]
        imports.import_tasks(session, project=project, rows=rows)
        exams.set_exam(session, project=project, actor=owner, raw={"pass_mark": 50, "questions": 2})
        worker = users.create_user(session, email="sitter@crowd.test", role="annotator")
        project_id, worker_id = project.id, worker.id
    now = utcnow()
    with database.writer.begin() as session:
        project, worker = session.get(Project, project_id), session.get(User, worker_id)
        assert project is not None and worker is not None
        exams.start_attempt(session, project=project, annotator=worker, now=now)
        first, done = exams.take_question(session, project=project, annotator=worker, now=now, lease_seconds=LEASE)
        assert first is not None and done is None
        again, _ = exams.take_question(session, project=project, annotator=worker, now=now, lease_seconds=LEASE)
        assert again is not None and again[0].id == first[0].id  # the question in hand
        submitted = annotations.submit(session, assignment_id=first[0].id, annotator=worker,
                                       answer={"label": "mixed"}, seconds=3, now=now)
        assert submitted.feedback is None and submitted.attempt is None
        second, _ = exams.take_question(session, project=project, annotator=worker, now=now, lease_seconds=LEASE)
        assert second is not None
    later = now + timedelta(seconds=LEASE + 1)  # the second question's lease ran out
    with database.writer.begin() as session:
        project, worker = session.get(Project, project_id), session.get(User, worker_id)
        assert project is not None and worker is not None
        nothing, finished = exams.take_question(session, project=project, annotator=worker, now=later,
                                                lease_seconds=LEASE)
        assert nothing is None and finished is not None
        assert (finished.status, finished.score, finished.n_answered) == (exams.PASSED, 50.0, 1)
        assert exams.take_question(session, project=project, annotator=worker, now=later,
                                   lease_seconds=LEASE) == (None, None)
        assert [a.status for a in exams.attempts_of(session, user_id=worker_id)] == [exams.PASSED]
        assert session.get(User, worker_id).work_profile["exams"] == [project_id]  # type: ignore[union-attr]
