"""The bulk insert under imports: duplicates skipped, every value stored as given, both databases."""

from __future__ import annotations

from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Task
from qistas.db.types import utcnow
from qistas.domain import imports, projects, users
from tests.factories import CLASSIFICATION


def test_bulk_insert_keeps_values_and_skips_duplicates(database: Database) -> None:
    rows = [
        {"data": {"text": "مرحبا بالعالم 👋", "n": 1.5, "tags": ["a", None]}, "unique_id": "a",
         "metadata": {"source": "web", "nested": {"x": [1, 2]}}, "gold": {"label": "positive"}},
        {"data": {"text": "no id, no metadata"}},
        {"data": {"text": "repeat in the same file"}, "unique_id": "a"},
        {"data": {"text": "b"}, "unique_id": "b"},
    ]
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="owner@acme.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p", task=CLASSIFICATION,
                                          redundancy={"min": 2, "max": 3})
        first = imports.import_tasks(session, project=project, rows=list(enumerate(rows, start=1)))
        again = imports.import_tasks(session, project=project,
                                     rows=[(1, {"data": {"text": "b again"}, "unique_id": "b"}),
                                           (2, {"data": {"text": "c"}, "unique_id": "c"})])
        project_id = project.id
    assert (first.created, first.duplicates) == (3, 1)
    assert (again.created, again.duplicates) == (1, 1)
    with database.reader() as session:
        tasks = list(session.scalars(select(Task).where(Task.project_id == project_id).order_by(Task.id)))
    assert [t.unique_id for t in tasks] == ["a", None, "b", "c"]
    a = tasks[0]
    assert a.data == rows[0]["data"] and a.meta == rows[0]["metadata"] and a.gold == {"label": "positive"}
    assert a.is_gold and not tasks[1].is_gold and tasks[1].meta is None and tasks[1].gold is None
    assert tasks[2].data == {"text": "b"}  # the first "b" stays
    for task in tasks:
        assert (task.status, task.required, task.n_claimed, task.n_annotations, task.batch_id) == (
            "pending", 2, 0, 0, None)
        assert abs((task.created_at - utcnow()).total_seconds()) < 60  # stored as UTC, read back as UTC
