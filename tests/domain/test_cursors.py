"""Cursors over completion order: consecutive ``since`` exports neither skip nor repeat, and a
completion that commits late (stamped before the cursor was handed out) is still picked up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qistas.db.engine import Database
from qistas.db.models import Project, Task
from qistas.domain import projects, results, users

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _ids(database: Database, project_id: int, since: str | None, settled: datetime) -> tuple[list[str], str | None]:
    with database.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        selection = results.select_export(session, project=project, options=results.ExportOptions(since=since),
                                          settled_before=settled)
        records = results.iter_export_records(session, selection=selection, pseudonym=str)
        return [r["unique_id"] for r in records], selection.cursor


def _complete(database: Database, project_id: int, name: str, at: datetime) -> None:
    with database.writer.begin() as session:
        session.add(Task(project_id=project_id, data={}, required=1, unique_id=name, status="completed",
                         response={"label": "x"}, confidence=1.0, completed_at=at))


def test_a_late_commit_is_not_skipped(database: Database) -> None:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org.id)
        pid = projects.create_project(session, org_id=org.id, actor=owner, name="p",
                                      task={"type": "classification", "labels": ["x"]}).id
    _complete(database, pid, "a", T0)
    _complete(database, pid, "b", T0 + timedelta(seconds=50))
    # At T0+60 with a 30 s settle window, "b" is too young for the cursor to cover.
    first, cursor = _ids(database, pid, "0.0", T0 + timedelta(seconds=30))
    assert first == ["a"]
    # A transaction stamped at T0+20 commits only now: it is after the cursor, so not lost.
    _complete(database, pid, "late", T0 + timedelta(seconds=20))
    second, cursor2 = _ids(database, pid, cursor, T0 + timedelta(seconds=90))
    assert second == ["late", "b"]
    third, cursor3 = _ids(database, pid, cursor2, T0 + timedelta(seconds=120))
    assert third == [] and cursor3 == cursor2  # nothing new: the cursor stays
    # A full export holds everything, and its cursor only covers the settled part.
    _complete(database, pid, "fresh", T0 + timedelta(seconds=119))
    everything, full_cursor = _ids(database, pid, None, T0 + timedelta(seconds=100))
    assert everything == ["a", "b", "late", "fresh"] and full_cursor == cursor2
    assert _ids(database, pid, full_cursor, T0 + timedelta(seconds=200))[0] == ["fresh"]
