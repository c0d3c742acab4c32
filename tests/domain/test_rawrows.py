"""Raw reads (db/rawrows.py) give exactly the values the ORM gives, on either database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Task
from qistas.db.rawrows import RawValues, raw
from qistas.domain import projects, users

DATA = {"text": "وصل محمّد \u202e👩\u200d👧", "n": 0.1 + 0.2, "tiny": 1e-07, "big": 10**20, "nested": [{"a": None}],
        "escapes": "tab\t\"quote\" back\\slash \x01"}


def test_raw_values_are_the_orm_values(database: Database) -> None:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
        pid = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                      task={"type": "classification", "labels": ["x"]}).id
        for at, meta in ((datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None),
                         (datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC), {"k": "v"}),
                         (None, {})):
            session.add(Task(project_id=pid, data=DATA, meta=meta, required=1, completed_at=at))
    columns = (Task.data, Task.meta, Task.completed_at, Task.created_at)
    with database.reader() as session:
        orm = session.execute(select(*columns).order_by(Task.id)).all()
        found = session.connection().execute(select(*(raw(c) for c in columns)).order_by(Task.id)).all()
        values = RawValues(session)
    assert len(found) == 3
    for (data, meta, completed_at, created_at), row in zip(orm, found, strict=True):
        assert [values.json(row[0]), values.json(row[1])] == [data, meta]
        assert values.iso(row[2]) == (completed_at.isoformat() if completed_at else None)
        assert values.iso(row[3]) == created_at.isoformat()
    if values.text_values:
        assert values.json(" [1] ") == [1]  # text the C scanner does not take: json.loads decides
