"""Writing a checked import in short transactions, all or nothing even across a crash.

Inserting every row of a large import in one transaction held SQLite's write lock for as
long as the inserts took (a 150,000-row file: 10 s), and every other tenant's answers waited
behind it. Here each transaction is one chunk:

1. ``begin``: a ``task_imports`` row in state ``staging``.
2. ``stage``: each chunk of checked rows goes into ``staged_tasks``, invisible to everyone.
3. ``commit``: one short transaction re-checks the batches and moves the import to
   ``committed``. From here it will complete: every row was checked and is stored.
4. ``move``: chunks move from ``staged_tasks`` into ``tasks`` (``INSERT ... SELECT``, a
   ``unique_id`` already there counting as a duplicate) until none is left; the last one
   deletes the import's row and says how many tasks were created.

A process that dies leaves its import's row behind with a heartbeat that stops moving.
``recover`` (run by the background workers) finishes it the way the crash point decides:
still ``staging`` — its staged rows are deleted, nothing was imported; ``committed`` — the
rest is moved, as the client's request would have done. While a committed import is being
moved, the tasks it has moved so far are already served: a committed import is as good as
done, it is only not yet all visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Dialect, case, delete, false, literal, select, update
from sqlalchemy.orm import Session

from qistas.db.dialect import insert_skipping_conflicts, locks_claimed_rows, prepared_insert
from qistas.db.engine import Database
from qistas.db.enums import BatchStatus, TaskStatus
from qistas.db.models import Batch, Project, StagedTask, Task, TaskImport, User, table
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, write
from qistas.domain import audit
from qistas.domain.imports import BatchRef, CheckedRows, ImportResult, closed_batch_conflict
from qistas.domain.projects import FINAL_BATCH_STATUSES, complete_batch_if_done
from qistas.errors import Conflict

MOVE_CHUNK = 2000
# An import whose heartbeat is this old was left by a process that died: each of its
# transactions takes well under a second, so this is generous.
STALE_AFTER = timedelta(minutes=2)
STAGED_COLUMNS = ("batch_id", "unique_id", "data", "metadata", "gold", "is_gold", "required", "callback_url",
                  "predictions")


@dataclass(frozen=True)
class StagedRows:
    count: int
    insert: Callable[[Session], None]


@dataclass(frozen=True)
class Moved:
    done: bool
    result: ImportResult


def begin(session: Session, *, project_id: int, actor_id: int | None, now: datetime) -> int:
    job = TaskImport(project_id=project_id, actor_id=actor_id, state="staging", rows=0, created=0, duplicates=0,
                     heartbeat_at=now, created_at=now)
    session.add(job)
    session.flush()
    return job.id


def _mine(session: Session, import_id: int, state: str) -> TaskImport:
    query = select(TaskImport).where(TaskImport.id == import_id)
    if locks_claimed_rows(session):
        query = query.with_for_update()
    job = session.scalar(query)
    if job is None or job.state != state:
        # Only a process given up for dead loses its import: the recovery undid it (staging) or
        # finished it (committed).
        if state == "staging":
            raise Conflict("the import was abandoned before it completed; nothing was imported, send it again")
        raise Conflict("the import was finished by another server's recovery; list the tasks to see them")
    return job


def staged_rows(dialect: Dialect, *, import_id: int, first_seq: int, rows: Iterable[dict[str, Any]]) -> StagedRows:
    """A chunk of checked rows (``imports.check_rows``) made ready for ``stage``, outside any
    transaction."""
    values = [{"import_id": import_id, "seq": first_seq + n, **{c: row[c] for c in STAGED_COLUMNS}}
              for n, row in enumerate(rows)]
    return StagedRows(len(values), prepared_insert(dialect, table(StagedTask), values))


def stage(session: Session, *, import_id: int, rows: StagedRows, now: datetime) -> int:
    """Store a chunk of rows made ready by ``staged_rows``; returns how many."""
    job = _mine(session, import_id, "staging")
    rows.insert(session)
    job.rows += rows.count
    job.heartbeat_at = now
    return rows.count


def commit(session: Session, *, import_id: int, batch_ids: set[int], now: datetime) -> None:
    """Every row is staged: the import will complete. A batch closed meanwhile refuses it
    (409) as it would have when the rows were checked; the caller then calls ``abandon``."""
    job = _mine(session, import_id, "staging")
    if batch_ids:
        for batch in session.scalars(select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id)):
            if batch.status in FINAL_BATCH_STATUSES:
                raise closed_batch_conflict(BatchRef(batch.id, batch.name, batch.status), details={"total": job.rows})
    job.state = "committed"
    job.heartbeat_at = now


def move(session: Session, *, import_id: int, now: datetime, limit: int = MOVE_CHUNK) -> Moved:
    """Move the next chunk of a committed import into ``tasks``; the last one ends the import."""
    job = _mine(session, import_id, "committed")
    staged = table(StagedTask).c
    seqs = select(staged.seq).where(staged.import_id == import_id).order_by(staged.seq).limit(limit)
    chunk = [row[0] for row in session.execute(seqs)]
    if chunk:
        batches = table(Batch).c
        # A batch canceled since the commit: its tasks arrive canceled, as its others went.
        status = case((batches.status == BatchStatus.CANCELED, literal(TaskStatus.CANCELED)),
                      else_=literal(TaskStatus.PENDING))
        source = select(
            literal(job.project_id).label("project_id"), *(staged[c] for c in STAGED_COLUMNS),
            status.label("status"), literal(0).label("n_claimed"),
            literal(0).label("n_annotations"), false().label("below_target"), false().label("needs_review"),
            literal(now, type_=table(Task).c.created_at.type).label("created_at"),
        ).select_from(
            table(StagedTask).outerjoin(table(Batch), batches.id == staged.batch_id)
        ).where(staged.import_id == import_id, staged.seq.between(chunk[0], chunk[-1])).order_by(staged.seq)
        names = ["project_id", *STAGED_COLUMNS, "status", "n_claimed", "n_annotations", "below_target",
                 "needs_review", "created_at"]
        statement = insert_skipping_conflicts(session, table(Task), ["project_id", "unique_id"])
        tasks = table(Task)
        inserted = len(session.execute(statement.from_select(names, source).returning(tasks.c.id)).all())
        session.execute(table(StagedTask).delete().where(staged.import_id == import_id,
                                                         staged.seq.between(chunk[0], chunk[-1])))
        job.created += inserted
        job.duplicates += len(chunk) - inserted
        job.heartbeat_at = now
    result = ImportResult(created=job.created, duplicates=job.duplicates)
    if len(chunk) < limit:
        session.delete(job)
        session.flush()
        # Batches do not complete while a committed import moves (``projects.complete_batch_if_done``):
        # those whose tasks are all done complete now.
        for batch in session.scalars(select(Batch).where(Batch.project_id == job.project_id,
                                                         Batch.status == BatchStatus.IN_PROGRESS)):
            complete_batch_if_done(session, batch=batch)
        return Moved(True, result)
    return Moved(False, result)



def abandon(session: Session, *, import_id: int, limit: int = 50_000) -> bool:
    """Delete an import that will not complete, a chunk of its staged rows at a time;
    returns True once it is gone."""
    staged = table(StagedTask).c
    last = session.scalar(select(staged.seq).where(staged.import_id == import_id).order_by(staged.seq)
                          .offset(limit - 1).limit(1))
    if last is not None:
        session.execute(delete(StagedTask).where(StagedTask.import_id == import_id, StagedTask.seq <= last))
        return False
    session.execute(delete(StagedTask).where(StagedTask.import_id == import_id))
    session.execute(delete(TaskImport).where(TaskImport.id == import_id))
    return True


def stale(session: Session, *, now: datetime) -> list[tuple[int, str]]:
    """Imports left by processes that died: (id, state)."""
    rows = session.execute(select(TaskImport.id, TaskImport.state)
                           .where(TaskImport.heartbeat_at < now - STALE_AFTER).order_by(TaskImport.id))
    return [(row.id, row.state) for row in rows]


def take_over(session: Session, *, import_id: int, now: datetime) -> str | None:
    """Claim a stale import for recovery (its heartbeat is reset); None if another process
    took it first or it moved again."""
    claimed = session.execute(update(TaskImport).where(
        TaskImport.id == import_id, TaskImport.heartbeat_at < now - STALE_AFTER,
    ).values(heartbeat_at=now).returning(TaskImport.state)).first()
    return None if claimed is None else str(claimed[0])


# --- one transaction per step: for the import route and the recovery ----------------------


def write_checked(db: Database, *, project_id: int, actor_id: int, checked: CheckedRows,
                  before_commit: Callable[[Session], None]) -> ImportResult:
    """Write checked rows as one import in short transactions: stage them, commit (after
    ``before_commit``, which re-checks what the caller must, in that transaction) and move them
    into ``tasks``. Anything that fails before the commit leaves nothing behind."""
    import_id = write(db, partial(begin, project_id=project_id, actor_id=actor_id, now=utcnow()))
    try:
        stage_all(db, import_id=import_id, checked=checked)

        def commit_checked(session: Session) -> None:
            before_commit(session)
            commit(session, import_id=import_id, batch_ids=checked.batch_ids, now=utcnow())

        write(db, commit_checked)
    except BaseException:
        abandon_all(db, import_id=import_id)
        raise
    return move_all(db, import_id=import_id)


def stage_all(db: Database, *, import_id: int, checked: CheckedRows) -> None:
    seq = 0
    for chunk in checked.chunks():
        rows = staged_rows(db.engine.dialect, import_id=import_id, first_seq=seq, rows=chunk)
        seq += write(db, partial(stage, import_id=import_id, rows=rows, now=utcnow()), bulk=True)


def move_all(db: Database, *, import_id: int) -> ImportResult:
    """Move every staged row of a committed import; the last transaction records it done."""
    while True:
        moved = write(db, partial(_move_and_record, import_id=import_id), bulk=True)
        if moved.done:
            return moved.result


def _move_and_record(session: Session, *, import_id: int) -> Moved:
    job = _mine(session, import_id, "committed")
    project_id, actor_id = job.project_id, job.actor_id
    moved = move(session, import_id=import_id, now=utcnow())
    if moved.done:
        project = session.get(Project, project_id)
        audit.record(session, actor=session.get(User, actor_id) if actor_id else None, action="tasks.import",
                     object_type="project", object_id=project_id, org_id=project.org_id if project else None,
                     details={"created": moved.result.created, "duplicates": moved.result.duplicates})
    return moved


def abandon_all(db: Database, *, import_id: int) -> None:
    while not write(db, partial(abandon, import_id=import_id), bulk=True):
        pass


def recover(db: Database) -> int:
    """Finish the imports of processes that died; returns how many were finished."""
    finished = 0
    for import_id, _state in read(db, partial(stale, now=utcnow())):
        state = write(db, partial(take_over, import_id=import_id, now=utcnow()))
        if state == "staging":
            abandon_all(db, import_id=import_id)
        elif state == "committed":
            move_all(db, import_id=import_id)
        else:
            continue
        finished += 1
    return finished
